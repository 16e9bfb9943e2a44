package hookd_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// The body of every attempt is built from the event and the webhook id.
func BenchmarkEventPayload1KiB(b *testing.B) {
	ev := hookd.Event{ID: "evt_01", Type: "scan_completed", OrganizationID: "org_01", CreatedAt: time.Now(),
		Data: json.RawMessage(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)}
	for b.Loop() {
		ev.Payload("wh_01")
	}
}

// Subscription matching runs for every webhook of an organization on
// every publish.
func BenchmarkWebhookSubscribes(b *testing.B) {
	w := hookd.Webhook{Events: []string{"scan_started", "scan_completed", "scan_stopped", "scan_failed", "report_generated"}}
	for b.Loop() {
		w.Subscribes("report_generated")
	}
}
