package postgres

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// TestListen follows one store's Listen while another store, as another
// hookd process, writes: every write that makes a delivery due wakes it,
// also after its connection was cut.
func TestListen(t *testing.T) {
	u, key := testURL(t), testKey(t)
	schema := freshSchema(t, u)
	// The listener's connections carry a name of their own, so that the
	// test can find and cut its LISTEN connection.
	app := "hookd_test_" + strings.ToLower(rand.Text()[:12])
	listener := openSchema(t, withParam(t, u, "application_name", app), schema, key)
	writer := openSchema(t, u, schema, key)
	f := newFixture(t, writer, 1)
	ctx := t.Context()

	wakes := make(chan struct{}, 1)
	listenCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() {
		stopped <- listener.Listen(listenCtx, func() {
			select {
			case wakes <- struct{}{}:
			default:
			}
		})
	}()
	drain := func() {
		select {
		case <-wakes:
		default:
		}
	}
	wantWake := func(after string) {
		t.Helper()
		select {
		case <-wakes:
		case <-time.After(5 * time.Second):
			t.Fatalf("no wake-up within 5s of %s", after)
		}
	}
	wantWake("Listen started") // it wakes on connecting: it may have missed notifications before

	publish := func() {
		t.Helper()
		if _, err := writer.PublishEvents(ctx, []*hookd.Event{{OrganizationID: f.org.ID, Type: hookd.EventScanCompleted, Data: json.RawMessage(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	wantWake("a publish by another store")

	w := f.webhooks[0]
	d, err := writer.CreatePing(ctx, f.org.ID, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantWake("a ping")

	now := time.Now()
	jobs, err := writer.ClaimDeliveries(ctx, now, now.Add(time.Minute), 10, 0)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("claim: %v, %v", jobs, err)
	}
	var results []*hookd.AttemptResult
	for _, j := range jobs {
		results = append(results, &hookd.AttemptResult{Job: j, Attempt: hookd.Attempt{Number: 1, StartedAt: now}, Status: hookd.DeliveryFailed})
	}
	if err := writer.CompleteAttempts(ctx, results); err != nil {
		t.Fatal(err)
	}
	drain()
	if _, err := writer.Redeliver(ctx, f.org.ID, w.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	wantWake("a redelivery")

	// Cut the listening connection, as a restarted server or a network
	// failure would.
	var cut int
	if err := writer.pool.QueryRow(ctx, `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app).Scan(&cut); err != nil || cut != 1 {
		t.Fatalf("cut %d LISTEN connections, %v; want 1", cut, err)
	}
	wantWake("reconnecting")
	publish()
	wantWake("a publish after reconnecting")

	stop()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Listen returned %v when its context ended, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return within 5s of its context ending")
	}
}

// TestListen_Close: closing the store ends Listen, even one waiting to
// reconnect to a database that is not there.
func TestListen_Close(t *testing.T) {
	db := openFresh(t)
	up := make(chan struct{}, 1)
	stopped := make(chan error, 1)
	go func() {
		stopped <- db.Listen(context.Background(), func() {
			select {
			case up <- struct{}{}:
			default:
			}
		})
	}()
	select {
	case <-up:
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not connect within 5s")
	}
	db.Close()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Listen returned %v after Close, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return within 5s of Close")
	}

	// A store whose database cannot be reached: Listen keeps trying until
	// closed.
	down := openFresh(t)
	down.listen.Port = 1 // nothing listens there
	go func() { stopped <- down.Listen(context.Background(), func() {}) }()
	time.Sleep(300 * time.Millisecond) // a few attempts and backoffs
	down.Close()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Listen returned %v after Close, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return within 5s of Close while reconnecting")
	}
}
