package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// benchData is a realistic event data object of about 300 bytes.
var benchData = json.RawMessage(`{"scan_id":"scn_01hx4","target":"https://shop.example.com","scan_type":"web","started_at":"2026-11-26T10:00:00Z","completed_at":"2026-11-26T10:42:00Z","findings":{"critical":0,"high":2,"medium":5,"low":11,"info":30},"report_url":"https://portal.example.com/reports/rep_01hx4"}`)

// benchStore opens a store with one organization and webhooks of it
// subscribed to scan_completed.
func benchStore(b *testing.B, synchronous string, webhooks int) (*DB, string) {
	b.Helper()
	ctx := context.Background()
	db, err := Open(ctx, Config{Path: filepath.Join(b.TempDir(), "hookd.db"), Key: testKey(b), Synchronous: synchronous})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	o := &hookd.Organization{Name: "bench"}
	if err := db.CreateOrganization(ctx, o); err != nil {
		b.Fatal(err)
	}
	for i := range webhooks {
		w := &hookd.Webhook{OrganizationID: o.ID, Name: fmt.Sprint("w", i), URL: "https://receiver.example.com/" + fmt.Sprint(i),
			Events: []string{hookd.EventScanCompleted}, Secret: "whsec_bench", Active: true}
		if err := db.CreateWebhook(ctx, w); err != nil {
			b.Fatal(err)
		}
	}
	return db, o.ID
}

func benchBatch(orgID string, n int) []*hookd.Event {
	events := make([]*hookd.Event, n)
	for i := range events {
		events[i] = &hookd.Event{OrganizationID: orgID, Type: hookd.EventScanCompleted, Data: benchData}
	}
	return events
}

// BenchmarkPublish publishes batches of 100 events, each fanned out to 4
// webhooks: 100 event rows and 400 delivery rows per commit.
func BenchmarkPublish(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run(sync, func(b *testing.B) {
			const batch, webhooks = 100, 4
			db, orgID := benchStore(b, sync, webhooks)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if _, err := db.PublishEvents(ctx, benchBatch(orgID, batch)); err != nil {
					b.Fatal(err)
				}
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*batch)/s, "events/s")
			b.ReportMetric(float64(b.N*batch*webhooks)/s, "deliveries/s")
		})
	}
}

// BenchmarkPublishConcurrent publishes batches of 100 events (4 webhooks
// each) from 4 goroutines at once, as 4 API clients would: concurrent calls
// share commits (publishGroup).
func BenchmarkPublishConcurrent(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run(sync, func(b *testing.B) {
			const batch, webhooks, publishers = 100, 4, 4
			db, orgID := benchStore(b, sync, webhooks)
			ctx := context.Background()
			b.SetParallelism(publishers / max(1, runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := db.PublishEvents(ctx, benchBatch(orgID, batch)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*batch)/s, "events/s")
			b.ReportMetric(float64(b.N*batch*webhooks)/s, "deliveries/s")
		})
	}
}

// BenchmarkPublishOne is the API's common case: one event per commit.
func BenchmarkPublishOne(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run(sync, func(b *testing.B) {
			db, orgID := benchStore(b, sync, 4)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if _, err := db.PublishEvents(ctx, benchBatch(orgID, 1)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkClaimComplete runs the dispatcher's store loop: claim 100 due
// deliveries (at most 25 per webhook, 8 webhooks), then record an attempt
// for each in one CompleteAttempts, a third of them retries. The backlog
// is published before the clock starts.
func BenchmarkClaimComplete(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run(sync, func(b *testing.B) {
			const batch, webhooks = 100, 8
			db, orgID := benchStore(b, sync, webhooks)
			ctx := context.Background()
			for left := b.N * batch / webhooks; left > 0; left -= 500 {
				if _, err := db.PublishEvents(ctx, benchBatch(orgID, min(left, 500))); err != nil {
					b.Fatal(err)
				}
			}
			results := make([]*hookd.AttemptResult, 0, batch)
			b.ResetTimer()
			rows := 0
			for range b.N {
				now := time.Now()
				jobs, err := db.ClaimDeliveries(ctx, now, now.Add(time.Minute), batch, batch/4)
				if err != nil {
					b.Fatal(err)
				}
				results = results[:0]
				for i, j := range jobs {
					r := &hookd.AttemptResult{Job: j, Status: hookd.DeliveryDelivered, Attempt: hookd.Attempt{
						Number: j.Attempt, StartedAt: now, Duration: 3 * time.Millisecond, StatusCode: 200, ResponseBody: `{"ok":true}`,
					}}
					if i%3 == 0 {
						r.Status, r.NextAttemptAt = hookd.DeliveryPending, now.Add(time.Hour)
						r.Attempt.StatusCode, r.Attempt.Error = 503, "receiver answered 503"
					}
					results = append(results, r)
				}
				if err := db.CompleteAttempts(ctx, results); err != nil {
					b.Fatal(err)
				}
				rows += len(jobs)
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkNextDue asks when the next delivery is due with 64 of a
// backlog of 2 000 leased, as the dispatcher does after every claim that
// left it idle while its webhooks are at their cap.
func BenchmarkNextDue(b *testing.B) {
	db, orgID := benchStore(b, "NORMAL", 4)
	ctx := context.Background()
	for range 5 {
		if _, err := db.PublishEvents(ctx, benchBatch(orgID, 100)); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now()
	if _, err := db.ClaimDeliveries(ctx, now, now.Add(time.Minute), 64, 16); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok, err := db.NextDue(ctx); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkClaimBacklog is the dispatcher's store loop against a backlog
// that never shrinks below 50 000 pending deliveries, spread over 4
// webhooks that are at their cap of 16 in flight nearly all the time:
// claim up to 200, record a random half of the leased deliveries as
// delivered, claim again. Every claim frees only a few places, so a claim
// that costs in proportion to the backlog makes the whole run quadratic.
func BenchmarkClaimBacklog(b *testing.B) {
	const webhooks, backlog, limit, perWebhook = 4, 50_000, 200, 16
	db, orgID := benchStore(b, "NORMAL", webhooks)
	ctx := context.Background()
	// Each turn completes at most webhooks*perWebhook deliveries; publish
	// enough that the backlog stays at its size until the end.
	for left := (backlog + b.N*webhooks*perWebhook) / webhooks; left > 0; left -= 500 {
		if _, err := db.PublishEvents(ctx, benchBatch(orgID, min(left, 500))); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		inflight  []*hookd.Job
		results   []*hookd.AttemptResult
		delivered int
	)
	b.ResetTimer()
	for range b.N {
		now := time.Now()
		jobs, err := db.ClaimDeliveries(ctx, now, now.Add(time.Minute), limit, perWebhook)
		if err != nil {
			b.Fatal(err)
		}
		inflight = append(inflight, jobs...)
		rng.Shuffle(len(inflight), func(i, j int) { inflight[i], inflight[j] = inflight[j], inflight[i] })
		half := (len(inflight) + 1) / 2
		results = results[:0]
		for _, j := range inflight[:half] {
			results = append(results, benchDelivered(j, now))
		}
		if err := db.CompleteAttempts(ctx, results); err != nil {
			b.Fatal(err)
		}
		delivered += half
		inflight = append(inflight[:0], inflight[half:]...)
	}
	b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkClaimManyWebhooks is one burst fanned out to 10 000 webhooks,
// one delivery each (100 organizations of 100 webhooks, one event each):
// claim 200 at a time, at most 16 per webhook, and record each batch as
// delivered, until nothing is left. A claim must take its 200 without
// looking at all 10 000 webhooks.
func BenchmarkClaimManyWebhooks(b *testing.B) {
	const orgs, perOrg, limit, perWebhook = 100, hookd.MaxWebhooksPerOrganization, 200, 16
	db, orgID := benchStore(b, "NORMAL", perOrg)
	ctx := context.Background()
	orgIDs := []string{orgID}
	for i := 1; i < orgs; i++ {
		o := &hookd.Organization{Name: fmt.Sprint("bench ", i)}
		if err := db.CreateOrganization(ctx, o); err != nil {
			b.Fatal(err)
		}
		for j := range perOrg {
			w := &hookd.Webhook{OrganizationID: o.ID, Name: fmt.Sprint("w", j), URL: "https://receiver.example.com/" + fmt.Sprint(j),
				Events: []string{hookd.EventScanCompleted}, Secret: "whsec_bench", Active: true}
			if err := db.CreateWebhook(ctx, w); err != nil {
				b.Fatal(err)
			}
		}
		orgIDs = append(orgIDs, o.ID)
	}
	var events []*hookd.Event
	for _, id := range orgIDs {
		events = append(events, benchBatch(id, 1)...)
	}
	results := make([]*hookd.AttemptResult, 0, limit)
	delivered := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if _, err := db.PublishEvents(ctx, events); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for {
			now := time.Now()
			jobs, err := db.ClaimDeliveries(ctx, now, now.Add(time.Minute), limit, perWebhook)
			if err != nil {
				b.Fatal(err)
			}
			if len(jobs) == 0 {
				break
			}
			results = results[:0]
			for _, j := range jobs {
				results = append(results, benchDelivered(j, now))
			}
			if err := db.CompleteAttempts(ctx, results); err != nil {
				b.Fatal(err)
			}
			delivered += len(jobs)
		}
	}
	if delivered != b.N*orgs*perOrg {
		b.Fatalf("delivered %d, want %d", delivered, b.N*orgs*perOrg)
	}
	b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "deliveries/s")
}

// benchDelivered is a successful attempt of j.
func benchDelivered(j *hookd.Job, at time.Time) *hookd.AttemptResult {
	return &hookd.AttemptResult{Job: j, Status: hookd.DeliveryDelivered, Attempt: hookd.Attempt{
		Number: j.Attempt, StartedAt: at, Duration: 3 * time.Millisecond, StatusCode: 200, ResponseBody: `{"ok":true}`,
	}}
}

// BenchmarkQueueMillion measures the queue's reads with 1 000 000 pending
// deliveries, all due, over 100 webhooks: none of them may cost in
// proportion to the backlog. The rows are written straight into the table,
// which takes a while before the clock starts.
func BenchmarkQueueMillion(b *testing.B) {
	const pending, webhooks = 1_000_000, 100
	db, orgID := benchStore(b, "NORMAL", webhooks)
	ctx := context.Background()
	if _, err := db.PublishEvents(ctx, benchBatch(orgID, 1)); err != nil { // the event all rows point at
		b.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).UnixMilli()
	if _, err := db.w.ExecContext(ctx, `
		WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1),
		hooks (id, k) AS (SELECT id, ROW_NUMBER() OVER (ORDER BY id) - 1 FROM webhooks)
		INSERT INTO deliveries (id, event_seq, webhook_id, status, created_at, next_attempt_at)
		SELECT printf('dlv_bench_%07d', n.i), (SELECT MIN(seq) FROM events), hooks.id, 'pending', ?2, ?2 + n.i / 1000
		FROM n JOIN hooks ON hooks.k = n.i % ?3`, pending, start, webhooks); err != nil {
		b.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, `UPDATE delivery_counts SET n = n + ? WHERE status = 'pending'`, pending); err != nil {
		b.Fatal(err)
	}
	db.schedule.invalidate() // the rows above were written behind its back

	b.Run("ScheduleBuild", func(b *testing.B) {
		for b.Loop() {
			db.schedule.invalidate()
			now := time.Now()
			if _, err := db.ClaimDeliveries(ctx, now, now, 1, 16); err != nil { // a lease that expires at once
				b.Fatal(err)
			}
		}
	})
	b.Run("ClaimComplete", func(b *testing.B) {
		results := make([]*hookd.AttemptResult, 0, 100)
		rows := 0
		for b.Loop() {
			now := time.Now()
			jobs, err := db.ClaimDeliveries(ctx, now, now.Add(time.Minute), 100, 16)
			if err != nil {
				b.Fatal(err)
			}
			results = results[:0]
			for _, j := range jobs {
				results = append(results, benchDelivered(j, now))
			}
			if err := db.CompleteAttempts(ctx, results); err != nil {
				b.Fatal(err)
			}
			rows += len(jobs)
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "deliveries/s")
	})
	// Some deliveries in flight, as NextDue usually finds them.
	now := time.Now()
	if _, err := db.ClaimDeliveries(ctx, now, now.Add(time.Hour), 256, 16); err != nil {
		b.Fatal(err)
	}
	b.Run("NextDue", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := db.NextDue(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CountDeliveries", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.CountDeliveries(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
