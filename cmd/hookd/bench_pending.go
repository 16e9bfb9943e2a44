package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookd-dev/hookd/client"
)

// pendingReport is what `hookd bench --pending N` measures: N deliveries
// pending behind a receiver that is down, and listing them meanwhile.
type pendingReport struct {
	Mode              string  `json:"mode"`               // "pending"
	Pending           int     `json:"pending_deliveries"` // deliveries created
	Events            int     `json:"events"`
	Webhooks          int     `json:"webhooks"`
	Batch             int     `json:"batch"`
	Publishers        int     `json:"publishers"`
	Nodes             int     `json:"nodes"`
	Store             string  `json:"store"`
	Receiver          string  `json:"receiver"` // the closed port every attempt is refused by
	PublishSeconds    float64 `json:"publish_seconds"`
	IngestEventsPerS  float64 `json:"ingest_events_per_sec"`
	IngestDeliveriesS float64 `json:"ingest_deliveries_per_sec"`
	// Listings of GET /v1/webhooks/{id}/deliveries timed after the backlog
	// was published, one at a time, each kind Samples times, the kinds
	// taking turns and the webhooks too.
	Samples   int                     `json:"samples_per_kind"`
	Listing   benchLatency            `json:"listing"` // every kind together
	ListKinds map[string]benchLatency `json:"listing_by_kind"`
	// First attempts made (and refused) when sampling began and ended, from
	// hookd_attempts_total: that they grow shows the dispatcher was at work.
	AttemptsBefore float64 `json:"attempts_before_sampling"`
	AttemptsAfter  float64 `json:"attempts_after_sampling"`
	Delivered      float64 `json:"delivered"` // must stay 0: nothing can arrive
	PeakRSSMB      float64 `json:"hookd_peak_rss_mb"`

	HookdCommandShown string `json:"hookd_command"`
}

// benchLatency summarises timed requests.
type benchLatency struct {
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// The kinds of listing pendingReport times: what a user browsing a
// webhook's backlog asks for.
var pendingListKinds = []string{
	"newest",         // the first page, default limit
	"status=pending", // the first page of a filter every delivery matches
	"status=failed",  // a filter no delivery matches: the whole backlog to rule out
	"deep cursor",    // a page from the middle of the list
}

// benchPending points o.Webhooks webhooks at a port that refuses
// connections, publishes until o.Pending deliveries exist, and times
// listings while the dispatcher works through their first attempts.
//
// The receiver is down as a closed port rather than a server answering
// 503: a refused connection costs the kernel a reset and no process any
// CPU, so the bench does not compete with hookd for the machine's cores;
// and every attempt still goes through hookd's whole failure path
// (attempt, record, reschedule). The retry schedule is set to hours so
// that each delivery stays pending after its one refused attempt, and the
// run is about the backlog, not about retries.
func benchPending(ctx context.Context, o benchOptions, progress io.Writer) (*pendingReport, error) {
	down, err := closedPort()
	if err != nil {
		return nil, err
	}
	h, err := startBenchHookd(ctx, o, []string{"HOOKD_RETRY_SCHEDULE=1h,2h,4h"})
	if err != nil {
		return nil, err
	}
	defer h.stop()
	orgID, orgC, err := h.tenant(ctx)
	if err != nil {
		return nil, err
	}
	url := "http://" + down + "/hook"
	hooks, err := createBenchWebhooks(ctx, orgC, o.Webhooks, url)
	if err != nil {
		return nil, err
	}

	// Halfway through publishing, the newest delivery of each webhook marks
	// the middle of its final list: the cursor after it (ids grow with
	// time, lists are newest first) opens a page deep in the list, taken
	// through the API as a user paging that far would get it.
	events := (o.Pending + o.Webhooks - 1) / o.Webhooks
	deep := make([]string, len(hooks))
	var midway sync.Once
	var midErr error
	fmt.Fprintf(progress, "publishing %d events to %d webhooks whose receiver (%s) is down (batches of %d, %d publishers)…\n", events, o.Webhooks, down, o.Batch, o.Publishers)
	pub, err := h.publish(ctx, o, orgID, events, func(done int) {
		if done < events/2 {
			return
		}
		midway.Do(func() {
			for i, id := range hooks {
				page, err := orgC.ListDeliveries(ctx, id, "", client.ListOptions{Limit: 1})
				if err != nil {
					midErr = err
					return
				}
				if page.NextCursor != nil {
					deep[i] = *page.NextCursor
				}
			}
		})
	})
	if err != nil {
		return nil, err
	}
	if midErr != nil {
		return nil, fmt.Errorf("listing deliveries midway: %v", midErr)
	}

	rep := &pendingReport{
		Mode: "pending", Pending: pub.deliveries, Events: events, Webhooks: o.Webhooks, Batch: o.Batch,
		Publishers: o.Publishers, Nodes: o.Nodes, Store: h.store(), Receiver: url,
		PublishSeconds: pub.dur.Seconds(), IngestEventsPerS: float64(events) / pub.dur.Seconds(),
		IngestDeliveriesS: float64(pub.deliveries) / pub.dur.Seconds(),
		Samples:           o.Samples, ListKinds: map[string]benchLatency{}, HookdCommandShown: h.command(),
	}
	if rep.AttemptsBefore, _, err = scrapeAttempts(ctx, h.base()); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "%d deliveries pending; timing %d listings of each kind…\n", pub.deliveries, o.Samples)
	byKind := map[string][]time.Duration{}
	var all []time.Duration
	for i := range o.Samples {
		for _, kind := range pendingListKinds {
			w := i % len(hooks)
			status, opts := "", client.ListOptions{}
			switch kind {
			case "status=pending":
				status = "pending"
			case "status=failed":
				status = "failed"
			case "deep cursor":
				opts.Cursor = deep[w]
			}
			start := time.Now()
			page, err := orgC.ListDeliveries(ctx, hooks[w], status, opts)
			d := time.Since(start)
			if err != nil {
				return nil, fmt.Errorf("listing deliveries (%s): %v", kind, err)
			}
			if (len(page.Data) == 0) != (kind == "status=failed") {
				return nil, fmt.Errorf("listing deliveries (%s) of webhook %s: %d on the page", kind, hooks[w], len(page.Data))
			}
			byKind[kind] = append(byKind[kind], d)
			all = append(all, d)
		}
	}
	if rep.AttemptsAfter, rep.Delivered, err = scrapeAttempts(ctx, h.base()); err != nil {
		return nil, err
	}
	for kind, d := range byKind {
		var l benchLatency
		l.P50Ms, l.P99Ms, l.MaxMs = percentilesMs(d)
		rep.ListKinds[kind] = l
	}
	rep.Listing.P50Ms, rep.Listing.P99Ms, rep.Listing.MaxMs = percentilesMs(all)
	rep.PeakRSSMB = h.peakRSSMB()
	return rep, nil
}

// closedPort returns a 127.0.0.1 address that refuses connections: one
// the kernel just gave a listener, closed again.
func closedPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// scrapeAttempts reads from hookd's /metrics the attempts made so far and
// the deliveries delivered.
func scrapeAttempts(ctx context.Context, base string) (attempts, delivered float64, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("reading /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, "hookd_attempts_total{"):
			attempts += v
		case name == `hookd_deliveries_total{outcome="delivered"}`:
			delivered = v
		}
	}
	return attempts, delivered, sc.Err()
}

func printPending(w io.Writer, r *pendingReport) {
	fmt.Fprintf(w, "\nhookd bench --pending: %d deliveries pending (%d events × %d webhooks, receiver down), batches of %d, %d publishers, %s store\n\n", r.Pending, r.Events, r.Webhooks, r.Batch, r.Publishers, r.Store)
	row := func(k, v string) { fmt.Fprintf(w, "  %-36s %s\n", k, v) }
	row("ingest (events acknowledged)", fmt.Sprintf("%.0f events/s, %.0f deliveries/s", r.IngestEventsPerS, r.IngestDeliveriesS))
	row("listing p50 / p99 / max (all kinds)", fmt.Sprintf("%.1f / %.1f / %.1f ms, %d samples of each kind", r.Listing.P50Ms, r.Listing.P99Ms, r.Listing.MaxMs, r.Samples))
	for _, kind := range pendingListKinds {
		l := r.ListKinds[kind]
		row("  "+kind, fmt.Sprintf("%.1f / %.1f / %.1f ms", l.P50Ms, l.P99Ms, l.MaxMs))
	}
	row("attempts made (all refused)", fmt.Sprintf("%.0f when sampling began, %.0f when it ended", r.AttemptsBefore, r.AttemptsAfter))
	row("hookd peak RSS (whole run)", fmt.Sprintf("%.1f MB", r.PeakRSSMB))
	if r.Delivered > 0 {
		row("WARNING", fmt.Sprintf("%.0f deliveries were delivered: something answered on %s", r.Delivered, r.Receiver))
	}
	fmt.Fprintln(w)
}
