package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// fixture is an organization with webhooks on one store.
type fixture struct {
	t        testing.TB
	db       *DB
	org      *hookd.Organization
	webhooks []*hookd.Webhook
}

// newFixture creates an organization with n active webhooks subscribed to
// scan_completed.
func newFixture(t testing.TB, db *DB, n int) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, db: db, org: &hookd.Organization{Name: "Fixture"}}
	if err := db.CreateOrganization(ctx, f.org); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		w := &hookd.Webhook{OrganizationID: f.org.ID, Name: fmt.Sprint("hook ", i), URL: "https://receiver.example.com/" + fmt.Sprint(i),
			Events: []string{hookd.EventScanCompleted}, Secret: "s3cret", Active: true}
		if err := db.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
		f.webhooks = append(f.webhooks, w)
	}
	return f
}

// publish publishes events scan_completed events in batches of up to 500:
// events × webhooks deliveries.
func (f *fixture) publish(events int) {
	f.t.Helper()
	for events > 0 {
		n := min(events, 500)
		batch := make([]*hookd.Event, n)
		for i := range batch {
			batch[i] = &hookd.Event{OrganizationID: f.org.ID, Type: hookd.EventScanCompleted, Data: json.RawMessage(`{"scan_id":"scn_1"}`)}
		}
		if _, err := f.db.PublishEvents(context.Background(), batch); err != nil {
			f.t.Fatal(err)
		}
		events -= n
	}
}

// TestClaim_TwoStoresNeverShare has two stores on one schema, as two hookd
// processes on one database, claim and complete concurrently until every
// delivery is delivered. No delivery may be handed out while another
// holder's lease on it stands: that would show as a claim of a delivery
// some goroutine holds, or as an attempt whose result found its lease
// gone (a logged attempt the delivery does not count).
func TestClaim_TwoStoresNeverShare(t *testing.T) {
	for _, tc := range []struct {
		name       string
		perWebhook int
	}{{"Capped", 4}, {"NoCap", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			u, key := testURL(t), testKey(t)
			schema := freshSchema(t, u)
			stores := []*DB{openSchema(t, u, schema, key), openSchema(t, u, schema, key)}
			f := newFixture(t, stores[0], 20)
			const events = 150 // 3000 deliveries
			f.publish(events)
			total := events * len(f.webhooks)

			var (
				mu      sync.Mutex
				held    = map[string]string{} // delivery → lease of the goroutine holding it
				claims  int
				settled int
				wg      sync.WaitGroup
				errs    = make(chan error, 8)
			)
			// The first error stops every goroutine; so does a lack of
			// progress, rather than the test's timeout.
			ctx, stop := context.WithTimeout(t.Context(), time.Minute)
			defer stop()
			fail := func(err error) {
				errs <- err
				stop()
			}
			for g := range 8 {
				db := stores[g%2]
				wg.Go(func() {
					for round := 0; ; round++ {
						if ctx.Err() != nil {
							return
						}
						now := time.Now()
						jobs, err := db.ClaimDeliveries(ctx, now, now.Add(time.Minute), 25, tc.perWebhook)
						if err != nil {
							fail(err)
							return
						}
						mu.Lock()
						for _, j := range jobs {
							if other, ok := held[j.DeliveryID]; ok {
								mu.Unlock()
								fail(fmt.Errorf("delivery %s claimed with lease %s while lease %s holds it", j.DeliveryID, j.Lease, other))
								return
							}
							held[j.DeliveryID] = j.Lease
						}
						claims += len(jobs)
						done := settled == total
						mu.Unlock()
						if len(jobs) == 0 {
							if done {
								return
							}
							time.Sleep(time.Millisecond) // the rest is leased by others
							continue
						}
						// One in three attempts fails and is due again at once,
						// so deliveries go round several times.
						var results []*hookd.AttemptResult
						delivered := 0
						for i, j := range jobs {
							r := &hookd.AttemptResult{Job: j, Attempt: hookd.Attempt{Number: j.Attempt, StartedAt: now, StatusCode: 200}, Status: hookd.DeliveryDelivered}
							if (i+round)%3 == 0 && j.Attempt < 3 {
								r.Status, r.NextAttemptAt, r.Attempt.StatusCode = hookd.DeliveryPending, now, 503
							} else {
								delivered++
							}
							results = append(results, r)
						}
						// Let go before completing: once the results commit,
						// another goroutine may rightly claim the retries.
						mu.Lock()
						for _, j := range jobs {
							delete(held, j.DeliveryID)
						}
						mu.Unlock()
						if err := db.CompleteAttempts(ctx, results); err != nil {
							fail(err)
							return
						}
						mu.Lock()
						settled += delivered
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Fatalf("%d of %d deliveries delivered after a minute", settled, total)
			}
			if claims <= total {
				t.Fatalf("%d claims for %d deliveries: the retries did not go round", claims, total)
			}
			var (
				deliveries, attemptRows, counted int
				mismatched                       int
			)
			err := stores[0].pool.QueryRow(t.Context(), `
				SELECT count(*), sum(d.attempts), sum(a.n), count(*) FILTER (WHERE a.n <> d.attempts OR d.status <> 'delivered')
				FROM deliveries d JOIN (SELECT delivery_id, count(*) AS n FROM attempts GROUP BY delivery_id) a ON a.delivery_id = d.id`).
				Scan(&deliveries, &counted, &attemptRows, &mismatched)
			if err != nil {
				t.Fatal(err)
			}
			if deliveries != total || mismatched != 0 || attemptRows != claims || counted != claims {
				t.Fatalf("%d deliveries (want %d), %d not delivered or with a stale attempt; %d attempts logged, %d counted, %d claims",
					deliveries, total, mismatched, attemptRows, counted, claims)
			}
			c, err := stores[1].CountDeliveries(t.Context())
			if err != nil || c[hookd.DeliveryDelivered] != total || c[hookd.DeliveryPending] != 0 {
				t.Fatalf("CountDeliveries = %v, %v; want %d delivered", c, err, total)
			}
		})
	}
}

// TestClaim_CapAcrossStores claims one webhook's backlog from two stores at
// once: the cap counts every store's leases, so no more than perWebhook
// deliveries of a webhook are ever leased, however the claims interleave.
// A claim may leave a webhook to another claim holding it at that moment,
// so the places left are filled by the next claim.
func TestClaim_CapAcrossStores(t *testing.T) {
	u, key := testURL(t), testKey(t)
	schema := freshSchema(t, u)
	stores := []*DB{openSchema(t, u, schema, key), openSchema(t, u, schema, key)}
	f := newFixture(t, stores[0], 2)
	f.publish(200)
	const perWebhook = 5

	leased := func(at time.Time) map[string]int {
		t.Helper()
		n := map[string]int{}
		for _, w := range f.webhooks {
			var c int
			if err := stores[0].pool.QueryRow(t.Context(), `SELECT count(*) FROM deliveries WHERE webhook_id = $1 AND lease_until > $2`, w.ID, at).Scan(&c); err != nil {
				t.Fatal(err)
			}
			n[w.ID] = c
		}
		return n
	}
	for round := range 10 {
		var (
			mu   sync.Mutex
			jobs []*hookd.Job
			wg   sync.WaitGroup
			errs = make(chan error, 16)
		)
		now := time.Now()
		start := make(chan struct{})
		for g := range 16 {
			db := stores[g%2]
			wg.Go(func() {
				<-start
				got, err := db.ClaimDeliveries(context.Background(), now, now.Add(time.Minute), 3, perWebhook)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				jobs = append(jobs, got...)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// The 16 claims ask for 48 and the backlog has 200 a webhook, but
		// each webhook has its cap of places, some held since the last round.
		for id, n := range leased(now) {
			if n > perWebhook {
				t.Fatalf("round %d: webhook %s has %d unexpired leases, over the cap of %d", round, id, n, perWebhook)
			}
		}
		more, err := stores[round%2].ClaimDeliveries(t.Context(), now, now.Add(time.Minute), 2*perWebhook, perWebhook)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, more...)
		for id, n := range leased(now) {
			if n != perWebhook {
				t.Fatalf("round %d: after a claim alone, webhook %s has %d unexpired leases, want the cap, %d", round, id, n, perWebhook)
			}
		}

		// Free two places of each webhook for the next round.
		var results []*hookd.AttemptResult
		done := map[string]int{}
		for _, j := range jobs {
			if done[j.WebhookID] < 2 {
				done[j.WebhookID]++
				results = append(results, &hookd.AttemptResult{Job: j, Attempt: hookd.Attempt{Number: j.Attempt, StartedAt: now, StatusCode: 200}, Status: hookd.DeliveryDelivered})
			}
		}
		if err := stores[round%2].CompleteAttempts(t.Context(), results); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClaim_CapSkipsBacklog: a capped webhook with a long backlog due first
// costs a claim neither its limit nor the other webhooks' turn, whichever
// store claims.
func TestClaim_CapSkipsBacklog(t *testing.T) {
	u, key := testURL(t), testKey(t)
	schema := freshSchema(t, u)
	a, b := openSchema(t, u, schema, key), openSchema(t, u, schema, key)
	busy := newFixture(t, a, 1)
	busy.publish(2000)
	time.Sleep(2 * time.Millisecond)
	quiet := newFixture(t, a, 30)
	var published []time.Time // quiet's four publishes, due one after the other
	for range 4 {
		time.Sleep(2 * time.Millisecond)
		res, err := a.PublishEvents(t.Context(), []*hookd.Event{{OrganizationID: quiet.org.ID, Type: hookd.EventScanCompleted, Data: json.RawMessage(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
		published = append(published, res[0].Event.CreatedAt)
	}

	now := time.Now()
	first, err := a.ClaimDeliveries(t.Context(), now, now.Add(time.Minute), 100, 8)
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.ClaimDeliveries(t.Context(), now, now.Add(time.Minute), 100, 8)
	if err != nil {
		t.Fatal(err)
	}
	// count returns how many jobs are the backlogged webhook's, and how
	// many of the others' come from each of quiet's publishes.
	count := func(jobs []*hookd.Job) (busyN int, quietN [4]int) {
		for _, j := range jobs {
			if j.WebhookID == busy.webhooks[0].ID {
				busyN++
				continue
			}
			quietN[slices.IndexFunc(published, j.Event.CreatedAt.Equal)]++
		}
		return busyN, quietN
	}
	// The limit of 100 leaves 92 places after the backlogged webhook's cap
	// of 8: the oldest 92 of the others' 120, three whole publishes and 2.
	if bn, qn := count(first); bn != 8 || qn != [4]int{30, 30, 30, 2} {
		t.Fatalf("first claim: %d of the backlogged webhook and %v of each publish of the others, want 8 and [30 30 30 2]", bn, qn)
	}
	if !slices.IsSortedFunc(first, func(x, y *hookd.Job) int { return x.Event.CreatedAt.Compare(y.Event.CreatedAt) }) {
		t.Fatal("jobs are not in due order")
	}
	if bn, qn := count(second); bn != 0 || qn != [4]int{0, 0, 0, 28} {
		t.Fatalf("second claim: %d of the backlogged webhook and %v of the others, want 0 and [0 0 0 28]", bn, qn)
	}
}

// TestPublish_ConcurrentSameIDs publishes batches that share event ids,
// in different orders, from two stores at once: each id is created once,
// every other result answers with that first event, and no batch fails
// (on a deadlock, say).
func TestPublish_ConcurrentSameIDs(t *testing.T) {
	u, key := testURL(t), testKey(t)
	schema := freshSchema(t, u)
	stores := []*DB{openSchema(t, u, schema, key), openSchema(t, u, schema, key)}
	f := newFixture(t, stores[0], 3)

	const ids = 40
	var (
		mu      sync.Mutex
		created = map[string]int{}
		first   = map[string]*hookd.Event{}
		results [][]hookd.PublishResult
		wg      sync.WaitGroup
		errs    = make(chan error, 8)
	)
	for g := range 8 {
		wg.Go(func() {
			batch := make([]*hookd.Event, ids)
			for i := range batch {
				n := i
				if g%2 == 1 {
					n = ids - 1 - i // the other order
				}
				batch[i] = &hookd.Event{ID: fmt.Sprint("scan-", n), OrganizationID: f.org.ID, Type: hookd.EventScanCompleted,
					Data: json.RawMessage(fmt.Sprintf(`{"publisher":%d}`, g))}
			}
			res, err := stores[g%2].PublishEvents(context.Background(), batch)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			results = append(results, res)
			for _, r := range res {
				if r.Created {
					created[r.Event.ID]++
					first[r.Event.ID] = r.Event
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range ids {
		if id := fmt.Sprint("scan-", i); created[id] != 1 {
			t.Fatalf("event %s created %d times, want once", id, created[id])
		}
	}
	for _, res := range results {
		for _, r := range res {
			want := first[r.Event.ID]
			if !r.Event.CreatedAt.Equal(want.CreatedAt) || string(r.Event.Data) != string(want.Data) || r.Event.Deliveries != 3 {
				t.Fatalf("result %+v, want the first event %+v", r.Event, want)
			}
		}
	}
	c, err := stores[1].CountDeliveries(t.Context())
	if err != nil || c[hookd.DeliveryPending] != ids*3 {
		t.Fatalf("CountDeliveries = %v, %v; want %d pending", c, err, ids*3)
	}
}

// TestCreateWebhook_LimitRace creates webhooks of one organization from
// two stores at once: exactly the limit is created.
func TestCreateWebhook_LimitRace(t *testing.T) {
	u, key := testURL(t), testKey(t)
	schema := freshSchema(t, u)
	stores := []*DB{openSchema(t, u, schema, key), openSchema(t, u, schema, key)}
	f := newFixture(t, stores[0], 90)

	var (
		mu        sync.Mutex
		ok, limit int
		wg        sync.WaitGroup
	)
	for g := range 30 {
		wg.Go(func() {
			w := &hookd.Webhook{OrganizationID: f.org.ID, Name: "racer", URL: "https://x.example.com", Events: []string{hookd.EventScanStarted}, Active: true}
			err := stores[g%2].CreateWebhook(context.Background(), w)
			mu.Lock()
			defer mu.Unlock()
			switch hookd.ErrorCode(err) {
			case "":
				ok++
			case hookd.EINVALID:
				limit++
			default:
				t.Errorf("CreateWebhook: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 10 || limit != 20 {
		t.Fatalf("%d created and %d refused, want 10 and 20", ok, limit)
	}
}

// TestCounts_FollowConcurrentWrites checks the running totals against the
// table after many connections published, claimed, completed and deleted
// at once.
func TestCounts_FollowConcurrentWrites(t *testing.T) {
	u, key := testURL(t), testKey(t)
	schema := freshSchema(t, u)
	stores := []*DB{openSchema(t, u, schema, key), openSchema(t, u, schema, key)}
	f := newFixture(t, stores[0], 10)

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 6 {
		db := stores[g%2]
		wg.Go(func() {
			ctx := context.Background()
			for range 20 {
				batch := []*hookd.Event{{OrganizationID: f.org.ID, Type: hookd.EventScanCompleted, Data: json.RawMessage(`{}`)}}
				if _, err := db.PublishEvents(ctx, batch); err != nil {
					errs <- err
					return
				}
				now := time.Now()
				jobs, err := db.ClaimDeliveries(ctx, now, now.Add(time.Minute), 7, 3)
				if err != nil {
					errs <- err
					return
				}
				var results []*hookd.AttemptResult
				for i, j := range jobs {
					status := []hookd.DeliveryStatus{hookd.DeliveryDelivered, hookd.DeliveryFailed}[i%2]
					results = append(results, &hookd.AttemptResult{Job: j, Attempt: hookd.Attempt{Number: j.Attempt, StartedAt: now}, Status: status})
				}
				if err := db.CompleteAttempts(ctx, results); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// Webhooks go while all that happens.
	wg.Go(func() {
		for _, w := range f.webhooks[:4] {
			time.Sleep(20 * time.Millisecond)
			if err := stores[1].DeleteWebhook(context.Background(), f.org.ID, w.ID); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := map[hookd.DeliveryStatus]int{hookd.DeliveryPending: 0, hookd.DeliveryDelivered: 0, hookd.DeliveryFailed: 0}
	rows, err := stores[0].pool.Query(t.Context(), `SELECT status, count(*) FROM deliveries GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			s string
			n int
		)
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		want[hookd.DeliveryStatus(s)] = n
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	got, err := stores[1].CountDeliveries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("CountDeliveries = %v, the table has %v", got, want)
	}
	if want[hookd.DeliveryDelivered] == 0 || want[hookd.DeliveryFailed] == 0 {
		t.Fatalf("the test did too little: %v", want)
	}
}
