package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// serve prunes delivered deliveries past --retention in the background and
// counts them in /metrics. The retention is a millisecond, so the delivery
// is old as soon as it is made, with its real timestamps.
func TestServe_RetentionPrunesDelivered(t *testing.T) {
	m := testServer(t, func(c *Config) {
		c.Retention = time.Millisecond
		c.RetentionInterval = 20 * time.Millisecond
	})
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer rc.Close()
	orgID, _ := setupTenant(t, m.URL(), m.Config.AdminToken, rc.URL+"/hook", "s3cret")
	api(t, m.URL(), m.Config.AdminToken, "POST", "/v1/events", map[string]any{
		"organization_id": orgID, "type": "scan_completed", "data": map[string]any{"scan_id": "scn_1"}}, 202, nil)

	// The deadline only bounds the test of a broken server.
	deadline := time.Now().Add(30 * time.Second)
	for {
		metrics := scrape(t, m.URL())
		if strings.Contains(metrics, `hookd_deliveries_total{outcome="delivered"} 1`) &&
			strings.Contains(metrics, `hookd_pruned_rows_total{table="deliveries"} 1`) &&
			strings.Contains(metrics, `hookd_pruned_rows_total{table="events"} 1`) &&
			strings.Contains(metrics, `hookd_deliveries{status="delivered"} 0`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivered delivery was not pruned:\n%s", metrics)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --retention 0 keeps everything: no pruner runs and no counter is shown.
func TestServe_RetentionZeroKeepsEverything(t *testing.T) {
	m := testServer(t, func(c *Config) { c.Retention = 0 })
	if metrics := scrape(t, m.URL()); strings.Contains(metrics, "hookd_pruned_rows_total") {
		t.Fatalf("--retention 0 runs a pruner:\n%s", metrics)
	}
}
