package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
