package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// TestClaim_Model runs random sequences of every write that changes the
// queue (publishing, pings, claims with leases of different lengths,
// results of every kind, releases, redeliveries, deleted webhooks,
// reopening, failed claims) and checks each claim against one worked out
// by brute force from the table as it was: the claim keeps no state of
// its own that could drift from the rows without one of these failing.
func TestClaim_Model(t *testing.T) {
	seeds := 16
	if testing.Short() {
		seeds = 4
	}
	for seed := range uint64(seeds) {
		// Odd seeds always merge: with no backlog, most claims would walk.
		mergeOnly := seed%2 == 1
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed, mergeOnly) })
	}
}

func runModel(t *testing.T, seed uint64, mergeOnly bool) {
	ctx, key := t.Context(), testKey(t)
	path := filepath.Join(t.TempDir(), "hookd.db")
	open := func() *DB {
		db := openAt(t, path, key)
		db.schedule.mergeOnly = mergeOnly
		return db
	}
	db := open()
	rng := rand.New(rand.NewPCG(seed, 42))
	types := []string{hookd.EventScanStarted, hookd.EventScanCompleted, hookd.EventScanFailed}

	type hook struct{ orgID, id string }
	var (
		orgs  []string
		hooks []hook
	)
	for i := range 2 {
		o := &hookd.Organization{Name: fmt.Sprint("o", i)}
		if err := db.CreateOrganization(ctx, o); err != nil {
			t.Fatal(err)
		}
		orgs = append(orgs, o.ID)
		for j := range 5 {
			w := &hookd.Webhook{OrganizationID: o.ID, Name: fmt.Sprint("w", j), URL: "https://x.example.com",
				Events: []string{types[j%3], types[(j+i)%3]}, Active: true}
			if err := db.CreateWebhook(ctx, w); err != nil {
				t.Fatal(err)
			}
			hooks = append(hooks, hook{o.ID, w.ID})
		}
	}

	var (
		held []*hookd.Job
		skew time.Duration // claims look ahead of the clock, so that retries and leases come due
	)
	at := func() time.Time {
		now := time.Now().Add(skew)
		if rng.IntN(8) == 0 {
			now = now.Add(-time.Duration(rng.IntN(2000)) * time.Millisecond) // a claim may be behind another
		}
		return now
	}
	// some takes a random part of held out of it.
	some := func() []*hookd.Job {
		rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
		n := rng.IntN(len(held) + 1)
		out := slices.Clone(held[:n])
		held = held[n:]
		return out
	}

	for step := range 400 {
		switch op := rng.IntN(100); {
		case op < 20:
			var events []*hookd.Event
			for range 1 + rng.IntN(4) {
				events = append(events, &hookd.Event{OrganizationID: orgs[rng.IntN(len(orgs))], Type: types[rng.IntN(len(types))], Data: []byte(`{}`)})
			}
			if _, err := db.PublishEvents(ctx, events); err != nil {
				t.Fatal(err)
			}
		case op < 25 && len(hooks) > 0:
			h := hooks[rng.IntN(len(hooks))]
			if _, err := db.CreatePing(ctx, h.orgID, h.id); err != nil {
				t.Fatal(err)
			}
		case op < 60:
			now := at()
			lease := []time.Duration{20 * time.Millisecond, 300 * time.Millisecond, 3 * time.Second, time.Minute}[rng.IntN(4)]
			limit, perWebhook := 1+rng.IntN(12), rng.IntN(4)
			want := modelClaim(t, db, now, limit, perWebhook)
			jobs, err := db.ClaimDeliveries(ctx, now, now.Add(lease), limit, perWebhook)
			if err != nil {
				t.Fatal(err)
			}
			want.check(t, step, jobs)
			held = append(held, jobs...)
		case op < 80:
			now := at()
			var results []*hookd.AttemptResult
			for _, j := range some() {
				r := &hookd.AttemptResult{Job: j, Attempt: hookd.Attempt{Number: j.Attempt, StartedAt: now, StatusCode: 200}}
				switch rng.IntN(3) {
				case 0:
					r.Status = hookd.DeliveryDelivered
				case 1:
					r.Status = hookd.DeliveryFailed
				default:
					r.Status, r.Attempt.StatusCode = hookd.DeliveryPending, 503
					r.NextAttemptAt = now.Add(time.Duration(rng.IntN(5000)-500) * time.Millisecond)
				}
				results = append(results, r)
			}
			if err := db.CompleteAttempts(ctx, results); err != nil {
				t.Fatal(err)
			}
		case op < 85:
			if err := db.ReleaseJobs(ctx, some()); err != nil {
				t.Fatal(err)
			}
		case op < 90 && len(hooks) > 0:
			h := hooks[rng.IntN(len(hooks))]
			list, _, err := db.ListDeliveries(ctx, h.orgID, h.id, "", hookd.Page{Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			if len(list) > 0 {
				if _, err := db.Redeliver(ctx, h.orgID, h.id, list[rng.IntN(len(list))].ID); err != nil {
					t.Fatal(err)
				}
			}
		case op < 91 && len(hooks) > 4:
			i := rng.IntN(len(hooks))
			if err := db.DeleteWebhook(ctx, hooks[i].orgID, hooks[i].id); err != nil {
				t.Fatal(err)
			}
			hooks = slices.Delete(hooks, i, i+1)
		case op < 93:
			// As after a crash: leases cleared, schedule read anew.
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db, held = open(), nil
		case op < 95:
			// A claim that fails after choosing its rows: nothing is
			// leased, and the next claim must know it.
			if _, err := db.w.ExecContext(ctx, `CREATE TEMP TRIGGER fail_lease BEFORE UPDATE OF lease_until ON deliveries
				WHEN NEW.lease_until IS NOT NULL BEGIN SELECT RAISE(ABORT, 'injected'); END`); err != nil {
				t.Fatal(err)
			}
			now := at()
			limit, perWebhook := 1+rng.IntN(12), rng.IntN(4)
			want := modelClaim(t, db, now, limit, perWebhook)
			_, err := db.ClaimDeliveries(ctx, now, now.Add(time.Minute), limit, perWebhook)
			if _, derr := db.w.ExecContext(ctx, `DROP TRIGGER temp.fail_lease`); derr != nil {
				t.Fatal(derr)
			}
			if (err != nil) != (len(want.seqs) > 0) {
				t.Fatalf("step %d: claim of %d claimable despite the failing lease: %v", step, len(want.seqs), err)
			}
		default:
			skew += time.Duration(rng.IntN(3000)) * time.Millisecond
		}
	}
}

// modelRow is a pending delivery as the model sees it.
type modelRow struct {
	seq        int64
	webhookID  string
	at         int64
	leaseUntil *int64
}

// modelResult is what a claim must return: the claimable rows by id, the
// leases counting against the cap, and the seqs of the rows that a claim
// of the oldest due rows within the caps takes, rows due at the same
// millisecond in the order they were written.
type modelResult struct {
	now        int64
	limit      int
	perWebhook int
	claimable  map[string]modelRow
	byWebhook  map[string][]modelRow // claimable, oldest first
	leased     map[string]int
	seqs       []int64
}

// modelClaim works out by brute force, from the whole table, what
// ClaimDeliveries(now, …, limit, perWebhook) may take.
func modelClaim(t *testing.T, db *DB, now time.Time, limit, perWebhook int) *modelResult {
	t.Helper()
	m := &modelResult{now: now.UnixMilli(), limit: limit, perWebhook: perWebhook,
		claimable: map[string]modelRow{}, byWebhook: map[string][]modelRow{}, leased: map[string]int{}}
	rows, err := db.r.QueryContext(context.Background(), `SELECT seq, id, webhook_id, next_attempt_at, lease_until FROM deliveries WHERE status = 'pending'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var all []modelRow
	for rows.Next() {
		var (
			r  modelRow
			id string
		)
		if err := rows.Scan(&r.seq, &id, &r.webhookID, &r.at, &r.leaseUntil); err != nil {
			t.Fatal(err)
		}
		switch {
		case r.leaseUntil != nil && *r.leaseUntil > m.now:
			m.leased[r.webhookID]++
		case r.at <= m.now:
			m.claimable[id] = r
			all = append(all, r)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b modelRow) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq)) })
	taken := map[string]int{}
	for _, r := range all {
		m.byWebhook[r.webhookID] = append(m.byWebhook[r.webhookID], r)
		if len(m.seqs) == limit || perWebhook > 0 && m.leased[r.webhookID]+taken[r.webhookID] >= perWebhook {
			continue
		}
		taken[r.webhookID]++
		m.seqs = append(m.seqs, r.seq)
	}
	slices.Sort(m.seqs)
	return m
}

// check fails unless jobs is a claim the model allows.
func (m *modelResult) check(t *testing.T, step int, jobs []*hookd.Job) {
	t.Helper()
	var times, seqs []int64
	perWebhook := map[string][]int64{}
	for i, j := range jobs {
		r, ok := m.claimable[j.DeliveryID]
		if !ok {
			t.Fatalf("step %d: claimed %s, which was not claimable at %d", step, j.DeliveryID, m.now)
		}
		delete(m.claimable, j.DeliveryID) // a second job of it fails above
		if i > 0 && r.at < times[i-1] {
			t.Fatalf("step %d: jobs not in due order", step)
		}
		times, seqs = append(times, r.at), append(seqs, r.seq)
		perWebhook[r.webhookID] = append(perWebhook[r.webhookID], r.seq)
	}
	for id, seqs := range perWebhook {
		if m.perWebhook > 0 && m.leased[id]+len(seqs) > m.perWebhook {
			t.Fatalf("step %d: webhook %s: %d taken with %d leased, over the cap %d", step, id, len(seqs), m.leased[id], m.perWebhook)
		}
		// A webhook's oldest claimable rows, none skipped.
		slices.Sort(seqs)
		var oldest []int64
		for _, r := range m.byWebhook[id][:len(seqs)] {
			oldest = append(oldest, r.seq)
		}
		slices.Sort(oldest)
		if !slices.Equal(seqs, oldest) {
			t.Fatalf("step %d: webhook %s: took rows %v, want its oldest %v", step, id, seqs, oldest)
		}
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, m.seqs) {
		t.Fatalf("step %d: claim (limit %d, cap %d) took rows %v, want %v", step, m.limit, m.perWebhook, seqs, m.seqs)
	}
}

// TestQueryPlans_Queue pins the plans of the queue's statements: each
// reaches the rows it needs through an index, so none costs in
// proportion to the backlog (an unindexed "SCAN deliveries" would).
func TestQueryPlans_Queue(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "hookd.db"), testKey(t))
	for _, tc := range []struct {
		name, query string
		params      int
		want        []string // in the plan, in this order
	}{
		{"leased", leasedQuery, 1, []string{"SEARCH deliveries USING INDEX deliveries_leased (lease_until>?)"}},
		{"walk", walkQuery, 1, []string{"SEARCH deliveries USING INDEX deliveries_due (next_attempt_at<?)"}},
		{"schedule", scheduleQuery, 0, []string{
			"SEARCH deliveries USING COVERING INDEX deliveries_webhook_due",
			"SEARCH deliveries USING COVERING INDEX deliveries_webhook_due (webhook_id>?)",
			"SEARCH deliveries USING COVERING INDEX deliveries_webhook_due (webhook_id=?)",
		}},
		{"first read", firstReadQueries[1], 2, []string{
			"SEARCH d USING INTEGER PRIMARY KEY (rowid=?)",
			"SEARCH deliveries USING INDEX deliveries_webhook_due (webhook_id=?)",
		}},
		{"read on", readOnQuery, 4, []string{
			"SEARCH deliveries USING INDEX deliveries_webhook_due (webhook_id=? AND next_attempt_at=? AND rowid>?)",
			"SEARCH deliveries USING INDEX deliveries_webhook_due (webhook_id=? AND next_attempt_at>?)",
		}},
		{"lease", leaseQuery, 3, []string{"SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)"}},
		{"next due", nextDueQuery, 0, []string{
			"SCAN deliveries USING INDEX deliveries_due",
			"SEARCH deliveries USING INDEX deliveries_leased (lease_until>?)",
		}},
		{"settle", settleQueries[len(rowSizes)-1], settleParams, []string{"SEARCH deliveries USING INDEX sqlite_autoindex_deliveries_1 (id=?)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := make([]any, tc.params)
			for i := range args {
				args[i] = 1
			}
			rows, err := db.w.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tc.query, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rest := plan
			for _, w := range tc.want {
				i := slices.Index(rest, w)
				if i < 0 {
					t.Fatalf("plan %q lacks %q", plan, w)
				}
				rest = rest[i+1:]
			}
			for _, step := range plan {
				if strings.HasPrefix(step, "SCAN deliveries") && !strings.Contains(step, "USING") {
					t.Fatalf("plan %q reads the whole table", plan)
				}
			}
		})
	}
}
