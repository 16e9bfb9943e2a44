package retention_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/retention"
	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/sqlite"
)

// fixture is a real SQLite store with one webhook and old deliveries, all
// delivered.
type fixture struct {
	t     *testing.T
	db    *sqlite.DB
	orgID string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	o := &hookd.Organization{Name: "Acme"}
	if err := db.CreateOrganization(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	w := &hookd.Webhook{OrganizationID: o.ID, Name: "r", URL: "https://receiver.example.com/", Events: []string{hookd.EventScanCompleted}, Active: true}
	if err := db.CreateWebhook(t.Context(), w); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, db: db, orgID: o.ID}
}

// publish publishes n events in one batch.
func (f *fixture) publish(ctx context.Context, n int) error {
	events := make([]*hookd.Event, n)
	for i := range events {
		events[i] = &hookd.Event{OrganizationID: f.orgID, Type: hookd.EventScanCompleted, Data: json.RawMessage(`{"scan_id":"scn_1"}`)}
	}
	_, err := f.db.PublishEvents(ctx, events)
	return err
}

// deliverAll records a successful attempt of every due delivery.
func (f *fixture) deliverAll() {
	f.t.Helper()
	jobs, err := f.db.ClaimDeliveries(f.t.Context(), time.Now(), time.Now().Add(time.Minute), 10000, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	results := make([]*hookd.AttemptResult, len(jobs))
	for i, j := range jobs {
		results[i] = &hookd.AttemptResult{Job: j, Status: hookd.DeliveryDelivered,
			Attempt: hookd.Attempt{Number: j.Attempt, StartedAt: time.Now().UTC().Truncate(time.Millisecond), StatusCode: 200}}
	}
	if err := f.db.CompleteAttempts(f.t.Context(), results); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) counts() map[hookd.DeliveryStatus]int {
	f.t.Helper()
	c, err := f.db.CountDeliveries(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// batchLog passes Prune through to the real store and keeps each batch's
// result.
type batchLog struct {
	retention.Store
	mu      sync.Mutex
	batches []hookd.PruneResult
}

func (b *batchLog) Prune(ctx context.Context, before time.Time, after string, limit int) (hookd.PruneResult, error) {
	r, err := b.Store.Prune(ctx, before, after, limit)
	b.mu.Lock()
	b.batches = append(b.batches, r)
	b.mu.Unlock()
	return r, err
}

func TestPruner_SweepInBatchesWhilePublishing(t *testing.T) {
	f := newFixture(t)
	const old, batch = 95, 10
	for range old / 5 {
		if err := f.publish(t.Context(), 5); err != nil {
			t.Fatal(err)
		}
	}
	f.deliverAll()
	// What is published from now on is newer than the cutoff.
	cutoff := time.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	for !time.Now().After(cutoff) {
		time.Sleep(time.Millisecond)
	}

	// A publisher keeps writing to the same file for the whole sweep.
	ctx, stop := context.WithCancel(t.Context())
	published := make(chan int)
	go func() {
		n := 0
		defer func() { published <- n }()
		for ctx.Err() == nil {
			if err := f.publish(ctx, 1); err != nil {
				if ctx.Err() == nil {
					t.Errorf("publishing during the sweep: %v", err)
				}
				return
			}
			n++
		}
	}()

	log := &batchLog{Store: f.db}
	reg := prometheus.NewRegistry()
	p := &retention.Pruner{Store: log, Batch: batch, Pause: time.Millisecond, Metrics: retention.NewMetrics(reg)}
	total, batches, err := p.Sweep(t.Context(), cutoff)
	stop()
	young := <-published
	if err != nil {
		t.Fatal(err)
	}

	if want := (hookd.PruneResult{Events: old, Deliveries: old, Attempts: old}); total != want {
		t.Fatalf("swept %+v, want %+v", total, want)
	}
	if batches != len(log.batches) || batches < old/batch {
		t.Fatalf("%d batches (%d logged), want at least %d", batches, len(log.batches), old/batch)
	}
	for i, b := range log.batches {
		if b.Events > batch {
			t.Fatalf("batch %d pruned %d events, more than its limit %d", i, b.Events, batch)
		}
	}
	if young == 0 {
		t.Fatal("the publisher published nothing during the sweep")
	}
	if c := f.counts(); c[hookd.DeliveryPending] != young || c[hookd.DeliveryDelivered] != 0 {
		t.Fatalf("deliveries after the sweep = %v, want the %d published during it pending and no delivered one", c, young)
	}
	if got := counter(t, reg, "hookd_pruned_rows_total", "table", "deliveries"); got != old {
		t.Fatalf("hookd_pruned_rows_total{table=\"deliveries\"} = %v, want %d", got, old)
	}
}

func TestPruner_RunSweepsEveryIntervalAndStops(t *testing.T) {
	f := newFixture(t)
	if err := f.publish(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	f.deliverAll()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	// The deliveries may be younger than a millisecond at the first sweep;
	// a later one takes them.
	p := &retention.Pruner{Store: f.db, Age: time.Millisecond, Interval: 5 * time.Millisecond}
	go func() { p.Run(ctx); close(done) }()
	// The deadline only bounds the test of a broken pruner.
	deadline := time.Now().Add(30 * time.Second)
	for f.counts()[hookd.DeliveryDelivered] != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still there after 30 s: %v", f.counts())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// counter reads the value of a counter with one label from reg.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if f.GetName() == name && l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q} in the registry", name, label, value)
	return 0
}
