package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hookd-dev/hookd/tracing/tracingtest"
)

// With OTEL_EXPORTER_OTLP_ENDPOINT set, one published event makes one
// trace that continues the publisher's: its request (server span), the
// fan-out, and the delivery attempt, exported over OTLP to a collector.
func TestServe_TracesPublishToAttempt(t *testing.T) {
	c := tracingtest.NewCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20") // ms: export at once, not every 5 s
	m := testServer(t, nil)

	delivered := make(chan string, 1)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		delivered <- r.Header.Get("X-CG-Hook-Delivery")
	}))
	defer rc.Close()
	orgID, _ := setupTenant(t, m.URL(), m.Config.AdminToken, rc.URL+"/hook", "s3cret")

	// The platform publishes from inside its own trace.
	const platformTrace, platformSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	body, _ := json.Marshal(map[string]any{"organization_id": orgID, "type": "scan_completed", "data": map[string]any{"scan_id": "scn_1"}})
	req, _ := http.NewRequest("POST", m.URL()+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+m.Config.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+platformTrace+"-"+platformSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish: status %d", resp.StatusCode)
	}
	var deliveryID string
	select {
	case deliveryID = <-delivered:
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
	}

	find := func(spans []tracingtest.Span, name string) *tracingtest.Span {
		for i := range spans {
			if spans[i].Name == name && spans[i].TraceID == platformTrace {
				return &spans[i]
			}
		}
		return nil
	}
	spans := c.WaitFor(t, 10*time.Second, func(s []tracingtest.Span) bool {
		return find(s, "POST /v1/events") != nil && find(s, "hookd.fanout") != nil && find(s, "hookd.attempt") != nil
	})
	publish, fanout, attempt := find(spans, "POST /v1/events"), find(spans, "hookd.fanout"), find(spans, "hookd.attempt")
	for _, check := range []struct {
		span         *tracingtest.Span
		parent, kind string
	}{
		{publish, platformSpan, "SPAN_KIND_SERVER"},
		{fanout, publish.SpanID, "SPAN_KIND_INTERNAL"},
		{attempt, fanout.SpanID, "SPAN_KIND_CLIENT"},
	} {
		if check.span.ParentSpanID != check.parent || check.span.Kind != check.kind {
			t.Errorf("span %s: parent %s, kind %s; want parent %s, kind %s",
				check.span.Name, check.span.ParentSpanID, check.span.Kind, check.parent, check.kind)
		}
	}
	for span, want := range map[*tracingtest.Span]map[string]string{
		publish: {"http.route": "/v1/events", "http.response.status_code": "202"},
		fanout:  {"hookd.events": "1", "hookd.deliveries": "1", "hookd.event.type": "scan_completed"},
		attempt: {"hookd.delivery_id": deliveryID, "hookd.attempt": "1", "http.response.status_code": "200", "hookd.delivery.status": "delivered"},
	} {
		for k, v := range want {
			if span.Attributes[k] != v {
				t.Errorf("span %s: %s = %q, want %q", span.Name, k, span.Attributes[k], v)
			}
		}
	}
	if publish.Service != "hookd" {
		t.Errorf("service.name = %q, want hookd", publish.Service)
	}
}
