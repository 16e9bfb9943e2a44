package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// BenchmarkClaimComplete measures the dispatcher's store loop: claim 100
// due deliveries, record 100 attempts (delivered), again, until b.N
// deliveries went through. The backlog is published before the clock
// starts, across 50 webhooks. rows/s is deliveries claimed and completed
// per second, by all claimers together.
//
//	HOOKD_TEST_POSTGRES_URL=… go test -run '^$' -bench ClaimComplete -count 3 ./postgres/
func BenchmarkClaimComplete(b *testing.B) {
	for _, bc := range []struct {
		name       string
		perWebhook int
		stores     int // each with one claiming goroutine, as that many hookd processes
	}{
		{"Cap16", 16, 1},
		{"NoCap", 0, 1},
		{"Cap16/TwoStores", 16, 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			u, key := testURL(b), testKey(b)
			schema := freshSchema(b, u)
			stores := make([]*DB, bc.stores)
			for i := range stores {
				stores[i] = openSchema(b, u, schema, key)
			}
			f := newFixture(b, stores[0], 50)
			f.publish((b.N + 49) / 50)

			var (
				mu   sync.Mutex
				done int
				wg   sync.WaitGroup
			)
			b.ResetTimer()
			start := time.Now()
			for _, db := range stores {
				wg.Go(func() {
					ctx := context.Background()
					for {
						now := time.Now()
						jobs, err := db.ClaimDeliveries(ctx, now, now.Add(time.Minute), 100, bc.perWebhook)
						if err != nil {
							b.Error(err)
							return
						}
						if len(jobs) == 0 {
							return // the backlog is gone (or held by the other claimer, finishing it)
						}
						results := make([]*hookd.AttemptResult, len(jobs))
						for i, j := range jobs {
							results[i] = &hookd.AttemptResult{Job: j, Status: hookd.DeliveryDelivered,
								Attempt: hookd.Attempt{Number: j.Attempt, StartedAt: now, Duration: time.Millisecond, StatusCode: 200, ResponseBody: "ok"}}
						}
						if err := db.CompleteAttempts(ctx, results); err != nil {
							b.Error(err)
							return
						}
						mu.Lock()
						done += len(jobs)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if done < b.N {
				b.Fatalf("%d of %d deliveries went through", done, b.N)
			}
			b.ReportMetric(float64(done)/elapsed.Seconds(), "rows/s")
		})
	}
}

// BenchmarkClaimBehindBacklog measures a claim while one webhook, at its
// cap, has a backlog of 50 000 due deliveries ahead of everyone else's (an
// endpoint that hangs): a claim should cost what the other webhooks need,
// not what the backlog holds. Each op claims 100 deliveries of the other
// 50 webhooks and completes them.
//
//	HOOKD_TEST_POSTGRES_URL=… go test -run '^$' -bench ClaimBehindBacklog ./postgres/
func BenchmarkClaimBehindBacklog(b *testing.B) {
	db := openFresh(b)
	ctx := context.Background()
	hung := newFixture(b, db, 1)
	hung.publish(50_000)
	now := time.Now()
	if jobs, err := db.ClaimDeliveries(ctx, now, now.Add(time.Hour), 100, 16); err != nil || len(jobs) != 16 {
		b.Fatalf("claim of the hung webhook: %d jobs, %v", len(jobs), err)
	}
	others := newFixture(b, db, 50)
	others.publish(2 * b.N) // 100 deliveries an op

	b.ResetTimer()
	start := time.Now()
	for range b.N {
		now := time.Now()
		jobs, err := db.ClaimDeliveries(ctx, now, now.Add(time.Minute), 100, 16)
		if err != nil || len(jobs) != 100 {
			b.Fatalf("claim: %d jobs, %v", len(jobs), err)
		}
		results := make([]*hookd.AttemptResult, len(jobs))
		for i, j := range jobs {
			if j.WebhookID == hung.webhooks[0].ID {
				b.Fatal("claimed over the hung webhook's cap")
			}
			results[i] = &hookd.AttemptResult{Job: j, Status: hookd.DeliveryDelivered, Attempt: hookd.Attempt{Number: j.Attempt, StartedAt: now, StatusCode: 200}}
		}
		if err := db.CompleteAttempts(ctx, results); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(100*b.N)/time.Since(start).Seconds(), "rows/s")
}
