package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"
)

// Tests in this file run `hookd bench` itself, at tiny sizes, end to end:
// the real binary, its hookd serve child, its receiver. They check that
// every mode completes and reports sane figures, not how fast anything is.

// runBenchJSON runs the built hookd with bench args and --json, and decodes
// its report into out.
func runBenchJSON(t *testing.T, out any, args ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real processes; skipped with -short")
	}
	cmd := exec.Command(hookdBinary(t), append(append([]string{"bench"}, args...), "--json", "--ceiling-time", "0", "--timeout", "60s")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hookd bench %v: %v\n%s", args, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.String())
	}
	t.Logf("%s", stdout.String())
}

// --fanout creates more webhooks than SPEC's default cap for one
// organization and publishes one event to all of them.
func TestBench_Fanout(t *testing.T) {
	var r fanoutReport
	runBenchJSON(t, &r, "--fanout", "150")
	if r.Mode != "fanout" || r.Webhooks != 150 || r.Expected != 150 {
		t.Fatalf("mode %q, webhooks %d, expected %d: want fanout, 150, 150", r.Mode, r.Webhooks, r.Expected)
	}
	if r.DeliveriesCreated != 150 || r.Delivered != 150 || !r.CompletedInTime {
		t.Fatalf("created %d, delivered %d, completed %v: want 150, 150, true", r.DeliveriesCreated, r.Delivered, r.CompletedInTime)
	}
	if !(r.AcceptedMs > 0 && r.FirstArrivalMs > 0 && r.FirstArrivalMs <= r.ArrivalP50Ms && r.ArrivalP50Ms <= r.AllDeliveredMs) {
		t.Fatalf("accepted %v ms, arrivals first %v / p50 %v / last %v ms: want positive and ordered", r.AcceptedMs, r.FirstArrivalMs, r.ArrivalP50Ms, r.AllDeliveredMs)
	}
	if r.PeakRSSMB <= 0 {
		t.Fatalf("peak RSS %v MB: not read", r.PeakRSSMB)
	}
}

// --pending piles deliveries up behind a receiver that is down and times
// each kind of listing.
func TestBench_Pending(t *testing.T) {
	var r pendingReport
	runBenchJSON(t, &r, "--pending", "400", "--webhooks", "2", "--batch", "50", "--samples", "5")
	if r.Mode != "pending" || r.Pending != 400 || r.Events != 200 || r.Samples != 5 {
		t.Fatalf("mode %q, pending %d, events %d, samples %d: want pending, 400, 200, 5", r.Mode, r.Pending, r.Events, r.Samples)
	}
	if r.Delivered != 0 {
		t.Fatalf("%v deliveries delivered to a receiver that is down", r.Delivered)
	}
	if r.IngestDeliveriesS <= 0 || r.PeakRSSMB <= 0 {
		t.Fatalf("ingest %v deliveries/s, peak RSS %v MB: want both positive", r.IngestDeliveriesS, r.PeakRSSMB)
	}
	if len(r.ListKinds) != len(pendingListKinds) {
		t.Fatalf("listing kinds %v, want %v", r.ListKinds, pendingListKinds)
	}
	for kind, l := range r.ListKinds {
		if !(l.P50Ms > 0 && l.P50Ms <= l.P99Ms && l.P99Ms <= l.MaxMs && l.MaxMs <= r.Listing.MaxMs) {
			t.Fatalf("listing %s: %+v (all kinds %+v): want positive and ordered", kind, l, r.Listing)
		}
	}
}

// --rate reports the steady state apart: the deliveries of the events
// published after --warmup. At 100 events/s in batches of 5 (a tick every
// 50 ms), 200 events take at least 2 s to publish, so some come after the
// 0.5 s warm-up, and the first batches come well before it.
func TestBench_RateSteadyState(t *testing.T) {
	var r benchReport
	runBenchJSON(t, &r, "--events", "200", "--batch", "5", "--rate", "100", "--warmup", "500ms")
	if r.Mode != "throughput" || r.Delivered != 800 || r.Expected != 800 || !r.CompletedInTime {
		t.Fatalf("mode %q, delivered %d of %d: want throughput, 800 of 800", r.Mode, r.Delivered, r.Expected)
	}
	if !(r.LatencyP50Ms > 0 && r.LatencyP50Ms <= r.LatencyP99Ms && r.LatencyP99Ms <= r.LatencyMaxMs) {
		t.Fatalf("latency p50 %v / p99 %v / max %v ms: want positive and ordered", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
	}
	st := r.Steady
	if st == nil || st.WarmupSeconds != 0.5 {
		t.Fatalf("steady = %+v, want the state after a 0.5 s warm-up", st)
	}
	if st.Deliveries <= 0 || st.Deliveries >= r.Delivered || st.Deliveries%4 != 0 {
		t.Fatalf("steady deliveries %d of %d: want some, not all, 4 per event", st.Deliveries, r.Delivered)
	}
	if !(st.PublishedPerSec > 0 && st.LatencyP50Ms > 0 && st.LatencyP50Ms <= st.LatencyP99Ms && st.LatencyP99Ms <= st.LatencyMaxMs && st.LatencyMaxMs <= r.LatencyMaxMs) {
		t.Fatalf("steady %+v (all: max %v ms): want positive and ordered", st, r.LatencyMaxMs)
	}
}
