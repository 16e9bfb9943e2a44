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
	Warmup        time.Duration // with Rate: events published this early are left out of the steady latency

	Fanout  int // fan-out mode: webhooks receiving one event
	Pending int // pending mode: deliveries to pile up behind a receiver that is down
	Samples int // pending mode: listings timed per kind
}

// benchReport is what `hookd bench` measures; --json prints it as is.
type benchReport struct {
	Mode              string       `json:"mode"` // "throughput"
	Events            int          `json:"events"`
	WebhooksPerEvent  int          `json:"webhooks_per_event"`
	Batch             int          `json:"batch"`
	Publishers        int          `json:"publishers"`
	Nodes             int          `json:"nodes"`
	Store             string       `json:"store"`
	CeilingPerSec     float64      `json:"raw_ceiling_requests_per_sec"`
	IngestPerSec      float64      `json:"ingest_events_per_sec"`
	DeliveriesPerSec  float64      `json:"deliveries_per_sec"`
	CeilingShare      float64      `json:"deliveries_share_of_ceiling"`
	LatencyP50Ms      float64      `json:"latency_p50_ms"`
	LatencyP99Ms      float64      `json:"latency_p99_ms"`
	LatencyMaxMs      float64      `json:"latency_max_ms"`
	Delivered         int          `json:"delivered"`
	Expected          int          `json:"expected"`
	Duplicates        int          `json:"duplicates"`
	PeakRSSMB         float64      `json:"hookd_peak_rss_mb"` // the largest node's
	PublishSeconds    float64      `json:"publish_seconds"`
	EndToEndSeconds   float64      `json:"end_to_end_seconds"`
	ReceiverFailRate  float64      `json:"receiver_fail_rate"`
	ReceiverDelayMs   float64      `json:"receiver_delay_ms"`
	RateLimitPerSec   int          `json:"publish_rate_limit"`
	Steady            *benchSteady `json:"steady,omitempty"` // with --rate
	CompletedInTime   bool         `json:"completed"`
	HookdCommandShown string       `json:"hookd_command"`
}

// benchSteady is the steady state of a run at a fixed --rate, the one the
// latency target is about: the deliveries of the events published after
// --warmup, and the rate actually achieved over those events (publishers
// that cannot keep up fall behind --rate).
type benchSteady struct {
	WarmupSeconds   float64 `json:"warmup_seconds"`
	Deliveries      int     `json:"deliveries"`
	PublishedPerSec float64 `json:"published_events_per_sec"`
	LatencyP50Ms    float64 `json:"latency_p50_ms"`
	LatencyP99Ms    float64 `json:"latency_p99_ms"`
	LatencyMaxMs    float64 `json:"latency_max_ms"`
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
	fs.DurationVar(&o.Warmup, "warmup", 5*time.Second, "with --rate: leave the events published during this first stretch out of the steady-state latency")
	fs.IntVar(&o.Fanout, "fanout", 0, "fan-out mode: create this many webhooks for one organization, publish ONE event, time its 202 and its last arrival")
	fs.IntVar(&o.Pending, "pending", 0, "pending mode: pile up this many deliveries for --webhooks webhooks whose receiver is down, then time listing them")
	fs.IntVar(&o.Samples, "samples", 200, "pending mode: timed listings of each kind")
	fs.Usage = func() {
		fmt.Fprint(io.err, `Usage: hookd bench [flags]

Starts hookd on a fresh store with a local receiver and measures it through
its public API, like a real publisher. Three modes:

  throughput (default)  measures the raw HTTP ceiling of this machine, then
                        publishes --events events to --webhooks webhooks and
                        reports ingest, deliveries/s, publish → arrival
                        latency and hookd's peak memory. With --rate N it
                        publishes at a steady N events/s and also reports the
                        latency of the events published after --warmup:
                          hookd bench --events 30000 --batch 10 --rate 500
  --fanout N            creates N webhooks for one organization (setup, not
                        timed), publishes ONE event with POST /v1/events and
                        reports the time to its 202, the time until all N
                        deliveries arrived, and peak memory:
                          hookd bench --fanout 10000
  --pending N           points --webhooks webhooks at a receiver that is down
                        (a closed port: every attempt is refused), publishes
                        until N deliveries exist, then, while the dispatcher
                        works through their failing first attempts, times
                        --samples listings of each kind (newest page,
                        ?status=pending, ?status=failed, a page deep in the
                        list) and reports ingest, listing p50/p99/max and
                        peak memory over the whole run:
                          hookd bench --pending 1000000

Flags:
`)
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
	case o.Warmup < 0:
		return fmt.Errorf("--warmup must not be negative")
	case o.Fanout < 0 || o.Fanout > maxWebhooksCeiling:
		return fmt.Errorf("--fanout must be 1–%d (--max-webhooks-per-organization's ceiling)", maxWebhooksCeiling)
	case o.Pending < 0:
		return fmt.Errorf("--pending must not be negative")
	case o.Fanout > 0 && o.Pending > 0:
		return fmt.Errorf("--fanout and --pending are separate modes: give one")
	case o.Samples < 1:
		return fmt.Errorf("--samples must be at least 1")
	}
	// Progress goes to stderr, keeping --json's stdout clean.
	var (
		rep   any
		print func()
		err   error
	)
	switch {
	case o.Fanout > 0:
		var r *fanoutReport
		r, err = benchFanout(ctx, o, io.err)
		rep, print = r, func() { printFanout(io.out, r) }
	case o.Pending > 0:
		var r *pendingReport
		r, err = benchPending(ctx, o, io.err)
		rep, print = r, func() { printPending(io.out, r) }
	default:
		var r *benchReport
		r, err = bench(ctx, o, io.err)
		rep, print = r, func() { printBench(io.out, r) }
	}
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	print()
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
// hookd, in the same run. d = 0 skips it (and returns 0).
func measureCeiling(rcv *benchReceiver, d time.Duration, progress io.Writer) float64 {
	if d <= 0 {
		return 0
	}
	fmt.Fprintf(progress, "measuring the raw HTTP ceiling for %s…\n", d)
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
	ceiling := measureCeiling(rcv, o.CeilingTime, progress)

	h, err := startBenchHookd(ctx, o, nil)
	if err != nil {
		return nil, err
	}
	defer h.stop()
	orgID, orgC, err := h.tenant(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := createBenchWebhooks(ctx, orgC, o.Webhooks, rcv.url+"/hook"); err != nil {
		return nil, err
	}

	fmt.Fprintf(progress, "publishing %d events (%d webhooks each, batches of %d, %d publishers)…\n", o.Events, o.Webhooks, o.Batch, o.Publishers)
	pub, err := h.publish(ctx, o, orgID, o.Events, nil)
	if err != nil {
		return nil, err
	}

	expected := o.Events * o.Webhooks
	rcv.waitFor(ctx, expected, o.Timeout, progress)

	rep := &benchReport{
		Mode:   "throughput",
		Events: o.Events, WebhooksPerEvent: o.Webhooks, Batch: o.Batch, Publishers: o.Publishers, Nodes: o.Nodes,
		Store: h.store(), CeilingPerSec: ceiling, Expected: expected,
		ReceiverFailRate: o.FailRate, ReceiverDelayMs: float64(o.ReceiverDelay) / 1e6, RateLimitPerSec: o.Rate,
		PublishSeconds: pub.dur.Seconds(), IngestPerSec: float64(o.Events) / pub.dur.Seconds(),
		HookdCommandShown: h.command(), PeakRSSMB: h.peakRSSMB(),
	}

	// Latency of each delivery, from just before its event's publish
	// request to its first arrival; steady keeps those of events published
	// after the warm-up, when publishing at a fixed rate.
	warmupEnd := pub.start.Add(o.Warmup)
	rcv.mu.Lock()
	lat := make([]time.Duration, 0, len(rcv.arrivals))
	var steady []time.Duration
	var lastArrival time.Time
	for k, at := range rcv.arrivals {
		n, _ := strconv.Atoi(strings.TrimPrefix(k[:strings.IndexByte(k, '/')], "bench-"))
		lat = append(lat, at.Sub(pub.sent[n]))
		if o.Rate > 0 && !pub.sent[n].Before(warmupEnd) {
			steady = append(steady, at.Sub(pub.sent[n]))
		}
		if at.After(lastArrival) {
			lastArrival = at
		}
	}
	rep.Delivered, rep.Duplicates = len(rcv.arrivals), rcv.dups
	rcv.mu.Unlock()
	rep.CompletedInTime = rep.Delivered == expected
	if len(lat) > 0 {
		rep.LatencyP50Ms, rep.LatencyP99Ms, rep.LatencyMaxMs = percentilesMs(lat)
		e2e := lastArrival.Sub(pub.start)
		rep.EndToEndSeconds = e2e.Seconds()
		rep.DeliveriesPerSec = float64(rep.Delivered) / e2e.Seconds()
		if ceiling > 0 {
			rep.CeilingShare = rep.DeliveriesPerSec / ceiling
		}
	}
	if o.Rate > 0 {
		st := &benchSteady{WarmupSeconds: o.Warmup.Seconds(), Deliveries: len(steady)}
		rep.Steady = st
		var steadyEvents int
		var firstSent, lastSent time.Time
		for _, t := range pub.sent {
			if t.Before(warmupEnd) {
				continue
			}
			steadyEvents++
			if firstSent.IsZero() || t.Before(firstSent) {
				firstSent = t
			}
			if t.After(lastSent) {
				lastSent = t
			}
		}
		if window := lastSent.Sub(firstSent); window > 0 {
			// Events leave in batches, one batch per tick: between the
			// first steady batch and the last, all but the last batch's
			// events were sent.
			st.PublishedPerSec = float64(steadyEvents-min(o.Batch, steadyEvents)) / window.Seconds()
		}
		if len(steady) > 0 {
			st.LatencyP50Ms, st.LatencyP99Ms, st.LatencyMaxMs = percentilesMs(steady)
		}
	}
	return rep, nil
}

// percentilesMs sorts d and returns its p50, p99 and maximum in
// milliseconds.
func percentilesMs(d []time.Duration) (p50, p99, maxMs float64) {
	slices.Sort(d)
	q := func(p float64) float64 { return float64(d[min(len(d)-1, int(p*float64(len(d))))]) / 1e6 }
	return q(0.50), q(0.99), float64(d[len(d)-1]) / 1e6
}

// waitFor waits until n distinct deliveries have arrived, or timeout.
func (r *benchReceiver) waitFor(ctx context.Context, n int, timeout time.Duration, progress io.Writer) {
	deadline := time.Now().Add(timeout)
	lastReport := time.Now()
	for r.count.Load() < int64(n) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond) // arrivals are timed by the receiver, not here
		if time.Since(lastReport) > 2*time.Second {
			fmt.Fprintf(progress, "  %d of %d deliveries arrived\n", r.count.Load(), n)
			lastReport = time.Now()
		}
	}
}

// benchHookd is the hookd under test: its serve processes on one fresh
// store, and the admin token they were started with.
type benchHookd struct {
	nodes     []*benchNode
	database  string
	admin     string
	serveArgs []string
	cleanup   []func()
}

// startBenchHookd starts o.Nodes `hookd serve` processes on a fresh store.
// env adds to (and, for the same variable, overrides) the bench's own
// serve settings; --serve-args win over both.
func startBenchHookd(ctx context.Context, o benchOptions, env []string) (*benchHookd, error) {
	h := &benchHookd{database: o.Database, admin: "bench-admin-" + randomToken(12)}
	dir, err := os.MkdirTemp("", "hookd-bench-")
	if err != nil {
		return nil, err
	}
	h.cleanup = append(h.cleanup, func() { os.RemoveAll(dir) })
	if h.database == "" {
		h.database = "sqlite:" + filepath.Join(dir, "hookd.db")
	}
	if o.Nodes > 1 && !strings.HasPrefix(h.database, "postgres") {
		h.stop()
		return nil, fmt.Errorf("--nodes %d needs --database postgres://…: the embedded store belongs to one process", o.Nodes)
	}
	if strings.HasPrefix(h.database, "postgres") {
		var drop func()
		if h.database, drop, err = freshSchema(ctx, h.database); err != nil {
			h.stop()
			return nil, fmt.Errorf("--database: %v", err)
		}
		h.cleanup = append(h.cleanup, drop)
	}
	secretKey := seal.GenerateKey()
	h.serveArgs = append([]string{"serve"}, strings.Fields(o.ServeArgs)...)
	for range o.Nodes {
		n, err := startBenchNode(ctx, h.serveArgs, h.database, h.admin, secretKey, env)
		if n != nil {
			h.nodes = append(h.nodes, n)
		}
		if err != nil {
			h.stop()
			return nil, err
		}
	}
	return h, nil
}

// stop stops the nodes, then removes the store.
func (h *benchHookd) stop() {
	for _, n := range h.nodes {
		n.stop()
	}
	h.nodes = nil
	for i := len(h.cleanup) - 1; i >= 0; i-- {
		h.cleanup[i]()
	}
	h.cleanup = nil
}

func (h *benchHookd) base() string  { return h.nodes[0].base }
func (h *benchHookd) store() string { return strings.SplitN(h.database, ":", 2)[0] }
func (h *benchHookd) command() string {
	return "hookd " + strings.Join(h.serveArgs, " ")
}

// peakRSSMB is the largest peak resident set of the nodes so far.
func (h *benchHookd) peakRSSMB() float64 {
	var peak float64
	for _, n := range h.nodes {
		peak = max(peak, peakRSSMB(n.cmd.Process.Pid))
	}
	return peak
}

// tenant creates the organization the bench publishes for and returns its
// id and a client with one of its API keys.
func (h *benchHookd) tenant(ctx context.Context) (string, *client.Client, error) {
	adminC := client.New(h.base(), h.admin)
	org, err := adminC.CreateOrganization(ctx, client.OrganizationInput{Name: "bench"})
	if err != nil {
		return "", nil, err
	}
	key, err := adminC.CreateAPIKey(ctx, org.ID, "bench")
	if err != nil {
		return "", nil, err
	}
	return org.ID, client.New(h.base(), key.Key), nil
}

// createBenchWebhooks creates n webhooks subscribed to scan_completed,
// pointing at url, through the API, a few at a time (set-up, not
// measured), and returns their ids in creation order.
func createBenchWebhooks(ctx context.Context, orgC *client.Client, n int, url string) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range min(n, 8) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				w, err := orgC.CreateWebhook(ctx, client.WebhookInput{
					Name: client.Ptr(fmt.Sprintf("bench-%d", i)), URL: client.Ptr(url),
					Events: []string{"scan_completed"}, Secret: client.Ptr("bench-secret"),
				})
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("creating webhook %d: %v", i+1, err) })
					next.Store(int64(n)) // stop the others
					return
				}
				ids[i] = w.ID
			}
		}()
	}
	wg.Wait()
	return ids, firstErr
}

// benchPublished is what publishing a run's events recorded.
type benchPublished struct {
	sent       []time.Time // when the request carrying event bench-i left
	start      time.Time
	dur        time.Duration
	deliveries int // deliveries created, from the 202s
}

// publish publishes events bench-0 … bench-(n-1) of orgID, each with ~1 KiB
// of data like the ceiling's bodies, in batches of o.Batch by o.Publishers
// concurrent publishers spread over the nodes, at most o.Rate events/s
// when set. acked, when not nil, is called after each acknowledged batch
// with the number of events acknowledged so far.
func (h *benchHookd) publish(ctx context.Context, o benchOptions, orgID string, n int, acked func(done int)) (*benchPublished, error) {
	pad := strings.Repeat("x", 800)
	p := &benchPublished{sent: make([]time.Time, n)}
	var next, done, deliveries, lastAck atomic.Int64
	var pubErr atomic.Value
	var limiter <-chan time.Time
	if o.Rate > 0 {
		per := time.Second * time.Duration(o.Batch) / time.Duration(o.Rate)
		t := time.NewTicker(max(per, time.Microsecond))
		defer t.Stop()
		limiter = t.C
	}
	p.start = time.Now()
	var wg sync.WaitGroup
	for i := range o.Publishers {
		pub := client.New(h.nodes[i%len(h.nodes)].base, h.admin)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if limiter != nil {
					<-limiter
				}
				first := int(next.Add(int64(o.Batch))) - o.Batch
				if first >= n || ctx.Err() != nil || pubErr.Load() != nil {
					return
				}
				last := min(first+o.Batch, n)
				batch := make([]client.EventInput, 0, last-first)
				for i := first; i < last; i++ {
					batch = append(batch, client.EventInput{ID: "bench-" + strconv.Itoa(i), OrganizationID: orgID, Type: "scan_completed",
						Data: map[string]any{"scan_id": "scn_" + strconv.Itoa(i), "target": "bench.example", "completed_at": "2026-11-26T10:00:00Z", "pad": pad}})
				}
				now := time.Now()
				for i := first; i < last; i++ {
					p.sent[i] = now
				}
				if o.Batch == 1 {
					ev, _, err := pub.Publish(ctx, batch[0])
					if err != nil {
						pubErr.Store(err)
						return
					}
					deliveries.Add(int64(ev.Deliveries))
				} else {
					evs, err := pub.PublishBatch(ctx, batch)
					if err != nil {
						pubErr.Store(err)
						return
					}
					for _, ev := range evs {
						deliveries.Add(int64(ev.Deliveries))
					}
				}
				lastAck.Store(int64(time.Since(p.start)))
				d := done.Add(int64(last - first))
				if acked != nil {
					acked(int(d))
				}
			}
		}()
	}
	wg.Wait()
	// Until the last acknowledgement: with --rate, publishers wait for one
	// more tick before they find nothing left to publish.
	p.dur = time.Duration(lastAck.Load())
	p.deliveries = int(deliveries.Load())
	if err, ok := pubErr.Load().(error); ok {
		return nil, fmt.Errorf("publishing: %v", err)
	}
	return p, ctx.Err()
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
	if r.CeilingPerSec > 0 {
		row("raw ceiling (plain Go client)", fmt.Sprintf("%.0f requests/s", r.CeilingPerSec))
	}
	row("ingest (events acknowledged)", fmt.Sprintf("%.0f events/s", r.IngestPerSec))
	if r.CeilingPerSec > 0 {
		row("end-to-end deliveries", fmt.Sprintf("%.0f deliveries/s (%.0f %% of the ceiling)", r.DeliveriesPerSec, 100*r.CeilingShare))
	} else {
		row("end-to-end deliveries", fmt.Sprintf("%.0f deliveries/s", r.DeliveriesPerSec))
	}
	row("publish → arrival p50 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f ms", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs))
	if st := r.Steady; st != nil {
		row("steady state (after warm-up)", fmt.Sprintf("%.0f events/s published (--rate %d), warm-up %.1f s left out", st.PublishedPerSec, r.RateLimitPerSec, st.WarmupSeconds))
		row("  publish → arrival p50 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f ms over %d deliveries", st.LatencyP50Ms, st.LatencyP99Ms, st.LatencyMaxMs, st.Deliveries))
		switch {
		case st.Deliveries == 0:
			row("WARNING", "nothing was published after --warmup: publish more --events")
		case st.PublishedPerSec < 0.95*float64(r.RateLimitPerSec):
			row("WARNING", "publishing fell behind --rate: the steady figures are at a lower rate")
		}
	}
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

func startBenchNode(ctx context.Context, serveArgs []string, database, admin, secretKey string, env []string) (*benchNode, error) {
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
		"HOOKD_RETRY_SCHEDULE=500ms,1s,2s", "HOOKD_LOG_LEVEL=error",
		// The bench measures hookd's throughput, not its request limits:
		// single-event publishing (--batch 1) passes the admin token's
		// 1000/s, and setting up or listing passes an API key's 100/s.
		"HOOKD_RATE_LIMIT=-1", "HOOKD_ADMIN_RATE_LIMIT=-1")
	n.cmd.Env = append(n.cmd.Env, env...) // later entries win
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
