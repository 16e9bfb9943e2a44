package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// groupStore opens a store with one organization and two webhooks of it
// subscribed to scan_completed.
func groupStore(t *testing.T) (*DB, string) {
	t.Helper()
	ctx := t.Context()
	db := openAt(t, filepath.Join(t.TempDir(), "hookd.db"), testKey(t))
	o := &hookd.Organization{Name: "group"}
	if err := db.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		w := &hookd.Webhook{OrganizationID: o.ID, Name: fmt.Sprint("w", i), URL: fmt.Sprint("https://receiver.example.com/", i),
			Events: []string{hookd.EventScanCompleted}, Active: true}
		if err := db.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	return db, o.ID
}

func countRows(t *testing.T, db *DB, table string) int {
	t.Helper()
	var n int
	if err := db.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWriteGroup_OneFails commits the writes of a group that did not
// fail, and nothing of the one that did, each keeping its own results, as
// separate transactions would; a claim later in the group sees what the
// publishes before it wrote.
func TestWriteGroup_OneFails(t *testing.T) {
	db, orgID := groupStore(t)
	ev := func(org, id string) *hookd.Event {
		return &hookd.Event{ID: id, OrganizationID: org, Type: hookd.EventScanCompleted, Data: []byte(`{}`)}
	}
	batches := [][]*hookd.Event{
		{ev(orgID, "a"), ev(orgID, "b")},
		{ev(orgID, "c"), ev("org_missing", "d")}, // all or nothing: c is not kept
		{ev(orgID, "a"), ev(orgID, "e")},         // a repeats the first batch's
	}
	results := make([][]hookd.PublishResult, len(batches))
	var ops []*groupOp
	for i, b := range batches {
		ops = append(ops, &groupOp{ctx: t.Context(), name: "publish events", fn: db.publishTx(b, &results[i])})
	}
	var jobs []*hookd.Job
	ops = append(ops, &groupOp{ctx: t.Context(), name: "claim", fn: func(ctx context.Context, tx *sql.Tx) error {
		now := time.Now()
		picked, err := db.pick(ctx, tx, now.UnixMilli(), now.Add(time.Minute).UnixMilli(), 100, 0, nil)
		if err != nil {
			return err
		}
		jobs, err = db.lease(ctx, tx, picked, now.Add(time.Minute))
		return err
	}})
	db.commitGroup(ops)

	if r := results[0]; ops[0].err != nil || len(r) != 2 || !r[0].Created || r[0].Event.Deliveries != 2 {
		t.Fatalf("first batch: %+v, %v", r, ops[0].err)
	}
	if hookd.ErrorCode(ops[1].err) != hookd.ENOTFOUND {
		t.Fatalf("second batch: err %v, want ENOTFOUND", ops[1].err)
	}
	if r := results[2]; ops[2].err != nil || len(r) != 2 || r[0].Created || r[0].Event.ID != "a" || !r[1].Created {
		t.Fatalf("third batch: %+v, %v", r, ops[2].err)
	}
	if ops[3].err != nil || len(jobs) != 6 {
		t.Fatalf("claim in the group: %d jobs, %v; want the 6 deliveries published before it", len(jobs), ops[3].err)
	}
	if n := countRows(t, db, "events"); n != 3 {
		t.Fatalf("%d events stored, want 3 (a, b, e)", n)
	}
	if n := countRows(t, db, "deliveries"); n != 6 {
		t.Fatalf("%d deliveries stored, want 6", n)
	}
	counts, err := db.CountDeliveries(t.Context())
	if err != nil || counts[hookd.DeliveryPending] != 6 {
		t.Fatalf("CountDeliveries = %v, %v; want 6 pending", counts, err)
	}
}

// TestPublishEvents_Concurrent publishes from many goroutines at once:
// every call gets its own results, the failing ones alone fail, and what
// succeeded is stored exactly once.
func TestPublishEvents_Concurrent(t *testing.T) {
	db, orgID := groupStore(t)
	const callers, perCall = 16, 25
	var wg sync.WaitGroup
	errs := make([]error, callers)
	results := make([][]hookd.PublishResult, callers)
	for i := range callers {
		wg.Go(func() {
			org := orgID
			if i%4 == 3 {
				org = "org_missing"
			}
			events := make([]*hookd.Event, perCall)
			for j := range events {
				events[j] = &hookd.Event{ID: fmt.Sprintf("c%d-%d", i, j), OrganizationID: orgID, Type: hookd.EventScanCompleted, Data: []byte(`{"n":1}`)}
			}
			events[perCall-1].OrganizationID = org
			results[i], errs[i] = db.PublishEvents(context.Background(), events)
		})
	}
	wg.Wait()
	ok := 0
	for i := range callers {
		if i%4 == 3 {
			if hookd.ErrorCode(errs[i]) != hookd.ENOTFOUND {
				t.Errorf("call %d: err %v, want ENOTFOUND", i, errs[i])
			}
			continue
		}
		if errs[i] != nil || len(results[i]) != perCall {
			t.Fatalf("call %d: %d results, %v", i, len(results[i]), errs[i])
		}
		for j, r := range results[i] {
			if want := fmt.Sprintf("c%d-%d", i, j); !r.Created || r.Event.ID != want || r.Event.Deliveries != 2 {
				t.Fatalf("call %d result %d: %+v, want %s created with 2 deliveries", i, j, r, want)
			}
		}
		ok++
	}
	if n := countRows(t, db, "events"); n != ok*perCall {
		t.Fatalf("%d events stored, want %d", n, ok*perCall)
	}
	if n := countRows(t, db, "deliveries"); n != ok*perCall*2 {
		t.Fatalf("%d deliveries stored, want %d", n, ok*perCall*2)
	}
}

// TestWriteGroup_PublishWhileDispatching publishes from several goroutines
// while another claims and completes, as the API and the dispatcher do:
// every delivery is claimed once and delivered, and the running counts
// agree with the rows.
func TestWriteGroup_PublishWhileDispatching(t *testing.T) {
	db, orgID := groupStore(t)
	ctx := context.Background()
	const publishers, batches, perBatch = 4, 5, 20
	want := publishers * batches * perBatch * 2 // two webhooks
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for range batches {
				events := make([]*hookd.Event, perBatch)
				for j := range events {
					events[j] = &hookd.Event{OrganizationID: orgID, Type: hookd.EventScanCompleted, Data: []byte(`{}`)}
				}
				if _, err := db.PublishEvents(ctx, events); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[string]bool{}
	published := make(chan struct{})
	go func() { wg.Wait(); close(published) }()
	for done := false; !done; {
		select {
		case <-published:
			done = true
		default:
		}
		for {
			now := time.Now()
			jobs, err := db.ClaimDeliveries(ctx, now, now.Add(time.Minute), 50, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(jobs) == 0 {
				break
			}
			var results []*hookd.AttemptResult
			for _, j := range jobs {
				if seen[j.DeliveryID] {
					t.Fatalf("delivery %s claimed twice", j.DeliveryID)
				}
				seen[j.DeliveryID] = true
				results = append(results, &hookd.AttemptResult{Job: j, Status: hookd.DeliveryDelivered,
					Attempt: hookd.Attempt{Number: j.Attempt, StartedAt: now, StatusCode: 200}})
			}
			if err := db.CompleteAttempts(ctx, results); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(seen) != want {
		t.Fatalf("%d deliveries claimed, want %d", len(seen), want)
	}
	counts, err := db.CountDeliveries(ctx)
	if err != nil || counts[hookd.DeliveryDelivered] != want || counts[hookd.DeliveryPending] != 0 {
		t.Fatalf("CountDeliveries = %v, %v; want %d delivered, none pending", counts, err, want)
	}
}
