package dispatch

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd-dev/hookd"
)

// Metrics are the dispatcher's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	deliveries *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	duration   prometheus.Histogram
}

// NewMetrics registers the dispatcher's metrics with reg:
//
//	hookd_deliveries_total{outcome="delivered|retry_scheduled|failed"}
//	hookd_attempts_total{result="success|http_error|network_error"}
//	hookd_attempt_duration_seconds (histogram)
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookd_deliveries_total",
			Help: "Delivery outcomes after each attempt: delivered, retry_scheduled or failed (every retry used).",
		}, []string{"outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookd_attempts_total",
			Help: "HTTP attempts by result: success (2xx), http_error (another status) or network_error (no HTTP answer: timeout, refused, policy, TLS).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookd_attempt_duration_seconds",
			Help:    "Duration of HTTP attempts, from dial to the end of the captured response.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, o := range []string{"delivered", "retry_scheduled", "failed"} {
		m.deliveries.WithLabelValues(o)
	}
	for _, r := range []string{"success", "http_error", "network_error"} {
		m.attempts.WithLabelValues(r)
	}
	reg.MustRegister(m.deliveries, m.attempts, m.duration)
	return m
}

func (m *Metrics) observe(r *hookd.AttemptResult) {
	if m == nil {
		return
	}
	switch r.Status {
	case hookd.DeliveryDelivered:
		m.deliveries.WithLabelValues("delivered").Inc()
	case hookd.DeliveryPending:
		m.deliveries.WithLabelValues("retry_scheduled").Inc()
	case hookd.DeliveryFailed:
		m.deliveries.WithLabelValues("failed").Inc()
	}
	switch {
	case r.Attempt.Error == "":
		m.attempts.WithLabelValues("success").Inc()
	case r.Attempt.StatusCode != 0:
		m.attempts.WithLabelValues("http_error").Inc()
	default:
		m.attempts.WithLabelValues("network_error").Inc()
	}
	m.duration.Observe(r.Attempt.Duration.Seconds())
}

// Counter is what the pending-deliveries gauge reads from the store.
type Counter interface {
	CountDeliveries(ctx context.Context) (map[hookd.DeliveryStatus]int, error)
}

// NewDeliveriesCollector registers hookd_deliveries{status=…}: how many
// deliveries the store holds in each status, read at scrape time.
func NewDeliveriesCollector(reg prometheus.Registerer, store Counter) {
	reg.MustRegister(&deliveriesCollector{store: store, desc: prometheus.NewDesc(
		"hookd_deliveries", "Deliveries in the store by status (pending = waiting to be sent or retried).", []string{"status"}, nil)})
}

type deliveriesCollector struct {
	store Counter
	desc  *prometheus.Desc
}

func (c *deliveriesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *deliveriesCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.store.CountDeliveries(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range []hookd.DeliveryStatus{hookd.DeliveryPending, hookd.DeliveryDelivered, hookd.DeliveryFailed} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
