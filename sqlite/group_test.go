package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

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

// TestPublishCalls_OneFails commits the calls of a group that did not
// fail, and nothing of the one that did, each call keeping its own
// results, as separate calls would.
func TestPublishCalls_OneFails(t *testing.T) {
	db, orgID := groupStore(t)
	ev := func(org, id string) *hookd.Event {
		return &hookd.Event{ID: id, OrganizationID: org, Type: hookd.EventScanCompleted, Data: []byte(`{}`)}
	}
	calls := []*publishCall{
		{events: []*hookd.Event{ev(orgID, "a"), ev(orgID, "b")}},
		{events: []*hookd.Event{ev(orgID, "c"), ev("org_missing", "d")}}, // all or nothing: c is not kept
		{events: []*hookd.Event{ev(orgID, "a"), ev(orgID, "e")}},         // a repeats the first call's
	}
	if err := db.publishCalls(t.Context(), calls); err != nil {
		t.Fatal(err)
	}
	if calls[0].err != nil || len(calls[0].results) != 2 || !calls[0].results[0].Created || calls[0].deliveries != 4 {
		t.Fatalf("first call: %+v", calls[0])
	}
	if hookd.ErrorCode(calls[1].err) != hookd.ENOTFOUND || calls[1].results != nil {
		t.Fatalf("second call: err %v, results %v; want ENOTFOUND and none", calls[1].err, calls[1].results)
	}
	r := calls[2].results
	if calls[2].err != nil || len(r) != 2 || r[0].Created || r[0].Event.ID != "a" || !r[1].Created || calls[2].deliveries != 2 {
		t.Fatalf("third call: %+v", calls[2])
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
