package web

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/hookd-dev/hookd"
)

// failAll makes every due delivery's attempt fail for good, through the
// store, as the dispatcher would record it.
func (ts *testServer) failAll() {
	ts.t.Helper()
	ts.attempt(func(*hookd.Job) (int, string, hookd.DeliveryStatus) {
		return 500, "receiver answered Internal Server Error", hookd.DeliveryFailed
	})
}

// disableByFailures publishes as many events to w as the default policy
// tolerates failed deliveries and fails them all.
func (ts *testServer) disableByFailures(orgID string) {
	ts.t.Helper()
	for range hookd.DefaultMaxConsecutiveFailures {
		ts.publish(orgID, "scan_started", nil)
	}
	ts.failAll()
}

type enabledObj struct {
	Webhook     webhookObj `json:"webhook"`
	Redelivered int        `json:"redelivered"`
}

func TestWebhooks_Health(t *testing.T) {
	ts := newTestServer(t, nil)
	a, b := ts.createOrg("Acme", ""), ts.createOrg("Other", "")
	w := ts.createWebhook(a.key, validWebhook())

	// Both members are there, null, on a healthy webhook.
	var raw map[string]json.RawMessage
	ts.do("GET", "/v1/webhooks/"+w.ID, a.key, nil).want(t, http.StatusOK, &raw)
	if string(raw["disabled_reason"]) != "null" || string(raw["disabled_at"]) != "null" {
		t.Fatalf("healthy webhook: disabled_reason %s, disabled_at %s; want null, null", raw["disabled_reason"], raw["disabled_at"])
	}

	ts.disableByFailures(a.org.ID)
	got := ts.getWebhook(a.key, w.ID)
	want := "disabled automatically after 20 consecutive failed deliveries; last attempt: HTTP 500"
	if got.Active || got.DisabledReason == nil || *got.DisabledReason != want || got.DisabledAt == nil {
		t.Fatalf("after 20 failed deliveries: %+v; want inactive, disabled_reason %q, disabled_at set", got, want)
	}
	var list listObj[webhookObj]
	ts.do("GET", "/v1/webhooks", a.key, nil).want(t, http.StatusOK, &list)
	if len(list.Data) != 1 || list.Data[0].DisabledReason == nil {
		t.Fatalf("list = %+v, want the disabled webhook with its reason", list.Data)
	}

	t.Run("Errors", func(t *testing.T) {
		for _, c := range []struct {
			name, key, id string
			body          any
			status        int
			code, field   string
		}{
			{"ErrAnotherOrganization", b.key, w.ID, map[string]any{"redeliver_failed": true}, 404, "not_found", ""},
			{"ErrUnknownID", a.key, "wh_00000000000000000000000000", nil, 404, "not_found", ""},
			{"ErrRedeliverFailedType", a.key, w.ID, `{"redeliver_failed":"yes"}`, 400, "invalid_argument", "redeliver_failed"},
			{"ErrUnknownField", a.key, w.ID, `{"redeliver":true}`, 400, "invalid_argument", "redeliver"},
			{"ErrNotAnObject", a.key, w.ID, `[true]`, 400, "invalid_argument", ""},
			{"ErrMalformedJSON", a.key, w.ID, `{"redeliver_failed":`, 400, "invalid_argument", ""},
			{"ErrAdminToken", testAdminToken, w.ID, nil, 403, "permission_denied", ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				ts.do("POST", "/v1/webhooks/"+c.id+"/enable", c.key, c.body).wantError(t, c.status, c.code, c.field)
				if after := ts.getWebhook(a.key, w.ID); after.Active || after.DisabledReason == nil {
					t.Fatalf("a refused enable changed the webhook: %+v", after)
				}
			})
		}
		for _, d := range ts.listDeliveries(a.key, w.ID) {
			if d.Status != "failed" {
				t.Fatalf("a refused enable changed delivery %s to %s", d.ID, d.Status)
			}
		}
	})

	t.Run("EnableAndRedeliver", func(t *testing.T) {
		notified := ts.notify.Load()
		var out enabledObj
		ts.do("POST", "/v1/webhooks/"+w.ID+"/enable", a.key, map[string]any{"redeliver_failed": true}).want(t, http.StatusOK, &out)
		if !out.Webhook.Active || out.Webhook.DisabledReason != nil || out.Webhook.DisabledAt != nil || out.Redelivered != hookd.DefaultMaxConsecutiveFailures {
			t.Fatalf("enable = %+v; want active, no reason, %d redelivered", out, hookd.DefaultMaxConsecutiveFailures)
		}
		if ts.notify.Load() != notified+1 {
			t.Fatal("the dispatcher was not notified")
		}
		for _, d := range ts.listDeliveries(a.key, w.ID) {
			if d.Status != "pending" || d.Attempts != 1 {
				t.Fatalf("delivery %+v, want pending again after 1 attempt", d)
			}
		}
		// Enabling an enabled webhook, without a body, is fine.
		ts.do("POST", "/v1/webhooks/"+w.ID+"/enable", a.key, nil).want(t, http.StatusOK, &out)
		if !out.Webhook.Active || out.Redelivered != 0 {
			t.Fatalf("enabling an enabled webhook = %+v", out)
		}
	})

	t.Run("PatchActiveEnables", func(t *testing.T) {
		ts.failAll() // the redelivered ones fail again: 20 in a row
		if got := ts.getWebhook(a.key, w.ID); got.Active || got.DisabledReason == nil {
			t.Fatalf("not disabled again: %+v", got)
		}
		var got webhookObj
		ts.do("PATCH", "/v1/webhooks/"+w.ID, a.key, map[string]any{"active": true}).want(t, http.StatusOK, &got)
		if !got.Active || got.DisabledReason != nil || got.DisabledAt != nil {
			t.Fatalf("PATCH active true = %+v; want enabled, no reason", got)
		}
		for _, d := range ts.listDeliveries(a.key, w.ID) {
			if d.Status != "failed" {
				t.Fatalf("PATCH redelivered %s", d.ID)
			}
		}
	})
}
