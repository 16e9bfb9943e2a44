package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
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
