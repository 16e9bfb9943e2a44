package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/client"
)

// fanoutReport is what `hookd bench --fanout N` measures: one event
// published to an organization with N webhooks.
type fanoutReport struct {
	Mode              string  `json:"mode"` // "fanout"
	Webhooks          int     `json:"webhooks"`
	Store             string  `json:"store"`
	CeilingPerSec     float64 `json:"raw_ceiling_requests_per_sec"`
	SetupSeconds      float64 `json:"setup_seconds"` // creating the webhooks; not part of the target
	AcceptedMs        float64 `json:"accepted_ms"`   // POST /v1/events until its 202
	DeliveriesCreated int     `json:"deliveries_created"`
	FirstArrivalMs    float64 `json:"first_arrival_ms"` // from the same start as AcceptedMs
	ArrivalP50Ms      float64 `json:"arrival_p50_ms"`
	AllDeliveredMs    float64 `json:"all_delivered_ms"` // until the last delivery arrived
	Delivered         int     `json:"delivered"`
	Expected          int     `json:"expected"`
	Duplicates        int     `json:"duplicates"`
	PeakRSSMB         float64 `json:"hookd_peak_rss_mb"`
	CompletedInTime   bool    `json:"completed"`
	HookdCommandShown string  `json:"hookd_command"`
}

// benchFanout creates o.Fanout webhooks for one organization (their cap
// raised to fit), publishes one event to them through POST /v1/events, and
// times its acknowledgement and the arrival of every delivery.
func benchFanout(ctx context.Context, o benchOptions, progress io.Writer) (*fanoutReport, error) {
	rcv, err := startBenchReceiver(o.FailRate, o.ReceiverDelay)
	if err != nil {
		return nil, err
	}
	defer rcv.srv.Close()
	ceiling := measureCeiling(rcv, o.CeilingTime, progress)

	limit := max(o.Fanout, hookd.MaxWebhooksPerOrganization)
	h, err := startBenchHookd(ctx, o, []string{"HOOKD_MAX_WEBHOOKS_PER_ORGANIZATION=" + strconv.Itoa(limit)})
	if err != nil {
		return nil, err
	}
	defer h.stop()
	orgID, orgC, err := h.tenant(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "creating %d webhooks (set-up, not timed)…\n", o.Fanout)
	setup := time.Now()
	if _, err := createBenchWebhooks(ctx, orgC, o.Fanout, rcv.url+"/hook"); err != nil {
		return nil, err
	}
	setupDur := time.Since(setup)

	fmt.Fprintf(progress, "publishing one event to %d webhooks…\n", o.Fanout)
	pub := client.New(h.base(), h.admin)
	start := time.Now()
	ev, _, err := pub.Publish(ctx, client.EventInput{ID: "bench-0", OrganizationID: orgID, Type: "scan_completed",
		Data: map[string]any{"scan_id": "scn_0", "target": "bench.example", "completed_at": "2026-11-26T10:00:00Z"}})
	accepted := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("publishing: %v", err)
	}
	rcv.waitFor(ctx, o.Fanout, o.Timeout, progress)

	rep := &fanoutReport{
		Mode: "fanout", Webhooks: o.Fanout, Store: h.store(), CeilingPerSec: ceiling,
		SetupSeconds: setupDur.Seconds(), AcceptedMs: float64(accepted) / 1e6, DeliveriesCreated: ev.Deliveries,
		Expected: o.Fanout, HookdCommandShown: h.command(), PeakRSSMB: h.peakRSSMB(),
	}
	rcv.mu.Lock()
	arrivals := make([]time.Duration, 0, len(rcv.arrivals))
	for _, at := range rcv.arrivals {
		arrivals = append(arrivals, at.Sub(start))
	}
	rep.Delivered, rep.Duplicates = len(rcv.arrivals), rcv.dups
	rcv.mu.Unlock()
	rep.CompletedInTime = rep.Delivered == rep.Expected
	if len(arrivals) > 0 {
		rep.ArrivalP50Ms, _, rep.AllDeliveredMs = percentilesMs(arrivals)
		rep.FirstArrivalMs = float64(arrivals[0]) / 1e6 // sorted by percentilesMs
	}
	return rep, nil
}

func printFanout(w io.Writer, r *fanoutReport) {
	fmt.Fprintf(w, "\nhookd bench --fanout: one event to %d webhooks of one organization, %s store\n\n", r.Webhooks, r.Store)
	row := func(k, v string) { fmt.Fprintf(w, "  %-36s %s\n", k, v) }
	if r.CeilingPerSec > 0 {
		row("raw ceiling (plain Go client)", fmt.Sprintf("%.0f requests/s", r.CeilingPerSec))
	}
	row("set-up (webhooks created, not timed)", fmt.Sprintf("%.1f s", r.SetupSeconds))
	row("accepted (POST /v1/events → 202)", fmt.Sprintf("%.1f ms, %d deliveries created", r.AcceptedMs, r.DeliveriesCreated))
	row("arrivals first / p50 / last", fmt.Sprintf("%.1f / %.1f / %.1f ms after the publish", r.FirstArrivalMs, r.ArrivalP50Ms, r.AllDeliveredMs))
	row("delivered", fmt.Sprintf("%d of %d (%d duplicates)", r.Delivered, r.Expected, r.Duplicates))
	row("hookd peak RSS", fmt.Sprintf("%.1f MB", r.PeakRSSMB))
	if !r.CompletedInTime {
		row("WARNING", "not every delivery arrived before --timeout")
	}
	fmt.Fprintln(w)
}
