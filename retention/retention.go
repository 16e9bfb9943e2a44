// Package retention prunes what hookd no longer needs to keep: delivered
// deliveries, attempts and events older than a configured age, in the
// background, in short batches that let the dispatcher's writes through.
package retention

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd-dev/hookd"
)

// Store is what the pruner needs of a store; see storetest.Store.Prune.
type Store interface {
	Prune(ctx context.Context, before time.Time, after string, limit int) (hookd.PruneResult, error)
}

// Defaults of the Pruner's zero fields.
const (
	DefaultAge      = 30 * 24 * time.Hour
	DefaultInterval = time.Hour
	DefaultBatch    = 500
	DefaultPause    = 50 * time.Millisecond
)

// Pruner deletes, every Interval, what is older than Age (see
// storetest.Store.Prune for exactly what): one sweep is a series of
// batches of at most Batch events, each one short transaction, with a
// Pause between them so that on SQLite, which has one writer, the
// dispatcher's claims and completions wait for one batch at most.
type Pruner struct {
	Store    Store
	Age      time.Duration // 0: DefaultAge
	Interval time.Duration // 0: DefaultInterval
	Batch    int           // events looked at per transaction; 0: DefaultBatch
	Pause    time.Duration // between batches; 0: DefaultPause
	Logger   *slog.Logger  // nil: discarded
	Metrics  *Metrics      // nil: none
}

// Run sweeps at once, then every Interval, until ctx ends. A failed sweep
// is logged and tried again at the next interval; what it deleted stays
// deleted.
func (p *Pruner) Run(ctx context.Context) {
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	age := p.Age
	if age <= 0 {
		age = DefaultAge
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		total, batches, err := p.Sweep(ctx, start.Add(-age))
		log := p.logger().With("events", total.Events, "deliveries", total.Deliveries, "attempts", total.Attempts,
			"batches", batches, "duration", time.Since(start).Round(time.Millisecond))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error("retention sweep failed; trying again at the next interval", "err", err, "next", interval)
		case total != (hookd.PruneResult{}):
			log.Info("retention sweep", "older_than", age)
		}
		t.Reset(interval)
	}
}

// Sweep prunes what is older than before, batch after batch, until a
// batch reports nothing more to look at, and returns the totals and the
// number of batches. It stops early when ctx ends or a batch fails.
func (p *Pruner) Sweep(ctx context.Context, before time.Time) (total hookd.PruneResult, batches int, err error) {
	if p.Store == nil {
		return total, 0, errors.New("retention: Pruner.Store is required")
	}
	batch := p.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	pause := p.Pause
	if pause <= 0 {
		pause = DefaultPause
	}
	after := ""
	for {
		r, err := p.Store.Prune(ctx, before, after, batch)
		if err != nil {
			return total, batches, err
		}
		batches++
		total.Events += r.Events
		total.Deliveries += r.Deliveries
		total.Attempts += r.Attempts
		p.Metrics.add(r)
		if r.Next == "" {
			return total, batches, nil
		}
		after = r.Next
		select {
		case <-ctx.Done():
			return total, batches, ctx.Err()
		case <-time.After(pause):
		}
	}
}

func (p *Pruner) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// Metrics are the pruner's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	pruned *prometheus.CounterVec
}

// NewMetrics registers the pruner's metrics with reg:
//
//	hookd_pruned_rows_total{table="events|deliveries|attempts"}
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_pruned_rows_total",
		Help: "Rows deleted by retention (--retention), by table: events, deliveries and attempts.",
	}, []string{"table"})}
	for _, table := range []string{"events", "deliveries", "attempts"} {
		m.pruned.WithLabelValues(table)
	}
	reg.MustRegister(m.pruned)
	return m
}

func (m *Metrics) add(r hookd.PruneResult) {
	if m == nil {
		return
	}
	m.pruned.WithLabelValues("events").Add(float64(r.Events))
	m.pruned.WithLabelValues("deliveries").Add(float64(r.Deliveries))
	m.pruned.WithLabelValues("attempts").Add(float64(r.Attempts))
}
