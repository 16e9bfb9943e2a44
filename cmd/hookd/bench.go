package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd-dev/hookd/client"
	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/signature"
)

// benchOptions are `hookd bench`'s flags.
type benchOptions struct {
	Events        int
	Webhooks      int
	Batch         int
	Publishers    int
	Rate          int // events/s over all publishers; 0 = as fast as possible
	FailRate      float64
	ReceiverDelay time.Duration
	Database      string
	CeilingTime   time.Duration
	Timeout       time.Duration
	JSON          bool
	ServeArgs     string
	Nodes         int
}

// benchReport is what `hookd bench` measures; --json prints it as is.
type benchReport struct {
	Events            int     `json:"events"`
	WebhooksPerEvent  int     `json:"webhooks_per_event"`
	Batch             int     `json:"batch"`
	Publishers        int     `json:"publishers"`
	Nodes             int     `json:"nodes"`
	Store             string  `json:"store"`
	CeilingPerSec     float64 `json:"raw_ceiling_requests_per_sec"`
	IngestPerSec      float64 `json:"ingest_events_per_sec"`
	DeliveriesPerSec  float64 `json:"deliveries_per_sec"`
	CeilingShare      float64 `json:"deliveries_share_of_ceiling"`
	LatencyP50Ms      float64 `json:"latency_p50_ms"`
	LatencyP99Ms      float64 `json:"latency_p99_ms"`
	LatencyMaxMs      float64 `json:"latency_max_ms"`
	Delivered         int     `json:"delivered"`
	Expected          int     `json:"expected"`
	Duplicates        int     `json:"duplicates"`
	PeakRSSMB         float64 `json:"hookd_peak_rss_mb"` // the largest node's
	PublishSeconds    float64 `json:"publish_seconds"`
	EndToEndSeconds   float64 `json:"end_to_end_seconds"`
	ReceiverFailRate  float64 `json:"receiver_fail_rate"`
	ReceiverDelayMs   float64 `json:"receiver_delay_ms"`
	RateLimitPerSec   int     `json:"publish_rate_limit"`
	CompletedInTime   bool    `json:"completed"`
	HookdCommandShown string  `json:"hookd_command"`
}

func runBench(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.err)
	o := benchOptions{}
	fs.IntVar(&o.Events, "events", 20000, "events to publish")
	fs.IntVar(&o.Webhooks, "webhooks", 4, "webhooks subscribed to each event (deliveries per event)")
	fs.IntVar(&o.Batch, "batch", 100, "events per POST /v1/events/batch (1 = POST /v1/events)")
	fs.IntVar(&o.Publishers, "publishers", 4, "concurrent publishers")
	fs.IntVar(&o.Rate, "rate", 0, "publish at most this many events/s in all (0 = as fast as possible)")
	fs.Float64Var(&o.FailRate, "fail-rate", 0, "fraction of deliveries the receiver answers with 500")
	fs.DurationVar(&o.ReceiverDelay, "receiver-delay", 0, "how long the receiver takes to answer")
	fs.StringVar(&o.Database, "database", "", "store for hookd (default: a fresh SQLite file in a temporary directory)")
	fs.DurationVar(&o.CeilingTime, "ceiling-time", 3*time.Second, "how long to measure the raw HTTP ceiling")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "give up waiting for deliveries after this long")
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	fs.IntVar(&o.Nodes, "nodes", 1, "hookd serve processes sharing the store (more than 1 needs PostgreSQL); publishers spread over them")
	fs.StringVar(&o.ServeArgs, "serve-args", "", "extra flags for the hookd serve process, space-separated")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: hookd bench [flags]\n\nStarts hookd on a fresh store with a local receiver, measures the raw HTTP ceiling\nof this machine, then publishes events through the public API and measures\ningest, deliveries/s, publish→arrival latency and hookd's peak memory.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	switch {
	case o.Events < 1:
		return fmt.Errorf("--events must be at least 1")
	case o.Webhooks < 1 || o.Webhooks > 100:
		return fmt.Errorf("--webhooks must be 1–100 (the per-organization limit)")
	case o.Batch < 1 || o.Batch > 1000:
		return fmt.Errorf("--batch must be 1–1000")
	case o.Publishers < 1:
		return fmt.Errorf("--publishers must be at least 1")
	case o.Nodes < 1 || o.Nodes > 8:
		return fmt.Errorf("--nodes must be 1–8")
	case o.FailRate < 0 || o.FailRate > 1:
		return fmt.Errorf("--fail-rate must be between 0 and 1")
	}
	rep, err := bench(ctx, o, io.err) // progress on stderr keeps --json's stdout clean
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBench(io.out, rep)
	return nil
}

// benchReceiver records when each (event, webhook) delivery arrives.
type benchReceiver struct {
	srv      *http.Server
	url      string
	failRate float64
	delay    time.Duration
	ceiling  atomic.Int64

	mu       sync.Mutex
	arrivals map[string]time.Time // event id + webhook id → first arrival
	dups     int
	count    atomic.Int64
}

func startBenchReceiver(failRate float64, delay time.Duration) (*benchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &benchReceiver{url: "http://" + ln.Addr().String(), failRate: failRate, delay: delay, arrivals: map[string]time.Time{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ceiling", func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		r.ceiling.Add(1)
	})
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		now := time.Now()
		if r.delay > 0 {
			time.Sleep(r.delay)
		}
		if r.failRate > 0 && mrand.Float64() < r.failRate {
			w.WriteHeader(500)
			return
		}
		var ev struct {
			ID        string `json:"id"`
			WebhookID string `json:"webhook_id"`
		}
		json.Unmarshal(body, &ev)
		key := ev.ID + "/" + ev.WebhookID
		r.mu.Lock()
		if _, seen := r.arrivals[key]; seen {
			r.dups++
		} else {
			r.arrivals[key] = now
			r.count.Add(1)
		}
		r.mu.Unlock()
	})
	r.srv = &http.Server{Handler: mux}
	go r.srv.Serve(ln)
	return r, nil
}

// measureCeiling POSTs signed 1 KiB bodies to the receiver from a plain Go
// client for d and returns requests/s: what this machine can do without
// hookd, in the same run.
func measureCeiling(rcv *benchReceiver, d time.Duration) float64 {
	body := bytes.Repeat([]byte("x"), 1024)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest("POST", rcv.url+"/ceiling", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-CG-Hook-Signature", signature.Sign("bench-secret", body))
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	return float64(rcv.ceiling.Load()) / time.Since(start).Seconds()
}

func bench(ctx context.Context, o benchOptions, progress io.Writer) (*benchReport, error) {
	rcv, err := startBenchReceiver(o.FailRate, o.ReceiverDelay)
	if err != nil {
		return nil, err
	}
	defer rcv.srv.Close()
	fmt.Fprintf(progress, "measuring the raw HTTP ceiling for %s…\n", o.CeilingTime)
	ceiling := measureCeiling(rcv, o.CeilingTime)

	dir, err := os.MkdirTemp("", "hookd-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	database := o.Database
	if database == "" {
		database = "sqlite:" + filepath.Join(dir, "hookd.db")
	}
	if o.Nodes > 1 && !strings.HasPrefix(database, "postgres") {
		return nil, fmt.Errorf("--nodes %d needs --database postgres://…: the embedded store belongs to one process", o.Nodes)
	}
	if strings.HasPrefix(database, "postgres") {
		var drop func()
		if database, drop, err = freshSchema(ctx, database); err != nil {
			return nil, fmt.Errorf("--database: %v", err)
		}
		defer drop()
	}
	admin := "bench-admin-" + randomToken(12)
	secretKey := seal.GenerateKey()
	serveArgs := append([]string{"serve"}, strings.Fields(o.ServeArgs)...)
	var nodes []*benchNode
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	for range o.Nodes {
		n, err := startBenchNode(ctx, serveArgs, database, admin, secretKey)
		if n != nil {
			nodes = append(nodes, n)
		}
		if err != nil {
			return nil, err
		}
	}
	base := nodes[0].base
	adminC := client.New(base, admin)
	org, err := adminC.CreateOrganization(ctx, client.OrganizationInput{Name: "bench"})
	if err != nil {
		return nil, err
	}
	key, err := adminC.CreateAPIKey(ctx, org.ID, "bench")
	if err != nil {
		return nil, err
	}
	orgC := client.New(base, key.Key)
	for i := range o.Webhooks {
		_, err := orgC.CreateWebhook(ctx, client.WebhookInput{
			Name: client.Ptr(fmt.Sprintf("bench-%d", i)), URL: client.Ptr(rcv.url + "/hook"),
			Events: []string{"scan_completed"}, Secret: client.Ptr("bench-secret"),
		})
		if err != nil {
			return nil, err
		}
	}

	// ~1 KiB of data per event, like the ceiling's bodies.
	pad := strings.Repeat("x", 800)
	sent := make([]time.Time, o.Events)
	var next atomic.Int64
	var pubErr atomic.Value
	var limiter <-chan time.Time
	if o.Rate > 0 {
		per := time.Second * time.Duration(o.Batch) / time.Duration(o.Rate)
		t := time.NewTicker(max(per, time.Microsecond))
		defer t.Stop()
		limiter = t.C
	}
	fmt.Fprintf(progress, "publishing %d events (%d webhooks each, batches of %d, %d publishers)…\n", o.Events, o.Webhooks, o.Batch, o.Publishers)
	pubStart := time.Now()
	var wg sync.WaitGroup
	for p := range o.Publishers {
		pub := client.New(nodes[p%len(nodes)].base, admin)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if limiter != nil {
					<-limiter
				}
				first := int(next.Add(int64(o.Batch))) - o.Batch
				if first >= o.Events || ctx.Err() != nil {
					return
				}
				last := min(first+o.Batch, o.Events)
				batch := make([]client.EventInput, 0, last-first)
				for i := first; i < last; i++ {
					batch = append(batch, client.EventInput{ID: "bench-" + strconv.Itoa(i), OrganizationID: org.ID, Type: "scan_completed",
						Data: map[string]any{"scan_id": "scn_" + strconv.Itoa(i), "target": "bench.example", "completed_at": "2026-11-26T10:00:00Z", "pad": pad}})
				}
				now := time.Now()
				for i := first; i < last; i++ {
					sent[i] = now
				}
				var err error
				if o.Batch == 1 {
					_, _, err = pub.Publish(ctx, batch[0])
				} else {
					_, err = pub.PublishBatch(ctx, batch)
				}
				if err != nil {
					pubErr.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	pubDur := time.Since(pubStart)
	if err, ok := pubErr.Load().(error); ok {
		return nil, fmt.Errorf("publishing: %v", err)
	}

	expected := o.Events * o.Webhooks
	deadline := time.Now().Add(o.Timeout)
	lastReport := time.Now()
	for rcv.count.Load() < int64(expected) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
		if time.Since(lastReport) > 2*time.Second {
			fmt.Fprintf(progress, "  %d of %d deliveries arrived\n", rcv.count.Load(), expected)
			lastReport = time.Now()
		}
	}

	rep := &benchReport{
		Events: o.Events, WebhooksPerEvent: o.Webhooks, Batch: o.Batch, Publishers: o.Publishers, Nodes: o.Nodes,
		Store: strings.SplitN(database, ":", 2)[0], CeilingPerSec: ceiling, Expected: expected,
		ReceiverFailRate: o.FailRate, ReceiverDelayMs: float64(o.ReceiverDelay) / 1e6, RateLimitPerSec: o.Rate,
		PublishSeconds: pubDur.Seconds(), IngestPerSec: float64(o.Events) / pubDur.Seconds(),
		HookdCommandShown: "hookd " + strings.Join(serveArgs, " "),
	}
	for _, n := range nodes {
		rep.PeakRSSMB = max(rep.PeakRSSMB, peakRSSMB(n.cmd.Process.Pid))
	}

	rcv.mu.Lock()
	lat := make([]time.Duration, 0, len(rcv.arrivals))
	var lastArrival time.Time
	for k, at := range rcv.arrivals {
		n, _ := strconv.Atoi(strings.TrimPrefix(k[:strings.IndexByte(k, '/')], "bench-"))
		lat = append(lat, at.Sub(sent[n]))
		if at.After(lastArrival) {
			lastArrival = at
		}
	}
	rep.Delivered, rep.Duplicates = len(rcv.arrivals), rcv.dups
	rcv.mu.Unlock()
	rep.CompletedInTime = rep.Delivered == expected
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6 }
		rep.LatencyP50Ms, rep.LatencyP99Ms, rep.LatencyMaxMs = q(0.50), q(0.99), float64(lat[len(lat)-1])/1e6
		e2e := lastArrival.Sub(pubStart)
		rep.EndToEndSeconds = e2e.Seconds()
		rep.DeliveriesPerSec = float64(rep.Delivered) / e2e.Seconds()
		rep.CeilingShare = rep.DeliveriesPerSec / ceiling
	}
	return rep, nil
}

func waitReady(ctx context.Context, base string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not ready after %s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// peakRSSMB reads VmHWM, the peak resident set, of a process (Linux).
func peakRSSMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func printBench(w io.Writer, r *benchReport) {
	fmt.Fprintf(w, "\nhookd bench: %d events × %d webhooks, batches of %d, %d publishers, %d node(s), %s store\n\n", r.Events, r.WebhooksPerEvent, r.Batch, r.Publishers, r.Nodes, r.Store)
	row := func(k, v string) { fmt.Fprintf(w, "  %-36s %s\n", k, v) }
	row("raw ceiling (plain Go client)", fmt.Sprintf("%.0f requests/s", r.CeilingPerSec))
	row("ingest (events acknowledged)", fmt.Sprintf("%.0f events/s", r.IngestPerSec))
	row("end-to-end deliveries", fmt.Sprintf("%.0f deliveries/s (%.0f %% of the ceiling)", r.DeliveriesPerSec, 100*r.CeilingShare))
	row("publish → arrival p50 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f ms", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs))
	row("delivered", fmt.Sprintf("%d of %d (%d duplicates)", r.Delivered, r.Expected, r.Duplicates))
	row("hookd peak RSS (largest node)", fmt.Sprintf("%.1f MB", r.PeakRSSMB))
	if !r.CompletedInTime {
		row("WARNING", "not every delivery arrived before --timeout")
	}
	fmt.Fprintln(w)
}

// benchNode is one `hookd serve` process of a bench run.
type benchNode struct {
	cmd  *exec.Cmd
	base string
	log  bytes.Buffer
}

func startBenchNode(ctx context.Context, serveArgs []string, database, admin, secretKey string) (*benchNode, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	n := &benchNode{cmd: exec.CommandContext(ctx, self, serveArgs...), base: "http://" + addr}
	n.cmd.Env = append(os.Environ(),
		"HOOKD_LISTEN="+addr, "HOOKD_DATABASE="+database, "HOOKD_ADMIN_TOKEN="+admin,
		"HOOKD_SECRET_KEY="+secretKey, "HOOKD_ALLOW_HTTP=true", "HOOKD_ALLOW_PRIVATE_TARGETS=true",
		"HOOKD_RETRY_SCHEDULE=500ms,1s,2s", "HOOKD_LOG_LEVEL=error")
	n.cmd.Stdout, n.cmd.Stderr = &n.log, &n.log
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitReady(ctx, n.base, 30*time.Second); err != nil {
		return n, fmt.Errorf("hookd serve did not start: %v\n%s", err, n.log.String())
	}
	return n, nil
}

// stop ends the node with SIGINT, as an operator would, and kills it if it
// does not stop within 10 s.
func (n *benchNode) stop() {
	n.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
	}
}

// freshSchema creates a schema of its own for a bench run on PostgreSQL and
// returns the URL that uses it and a function that drops it.
func freshSchema(ctx context.Context, url string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	schema := "hookd_bench_" + strings.ToLower(randomHex(6))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	drop := func() {
		c, err := pgx.Connect(context.Background(), url)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema, drop, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
