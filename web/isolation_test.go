package web

import (
	"net/http"
	"strings"
	"testing"
)

// TestTenantIsolation: an organization's key answers 404 for another
// organization's objects on every route that takes an id, exactly as for
// ids that do not exist, and changes nothing.
func TestTenantIsolation(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Victim", "")
	b := ts.createOrg("Attacker", "")
	wa := ts.createWebhook(a.key, validWebhook())
	wb := ts.createWebhook(b.key, validWebhook())
	ts.publish(a.org.ID, "scan_started", nil)
	ts.publish(b.org.ID, "scan_started", nil)
	da := ts.listDeliveries(a.key, wa.ID)[0]

	beforeWebhooks := ts.listWebhooks(a.key)
	beforeDeliveries := ts.listDeliveries(a.key, wa.ID)
	beforeDelivery := ts.getDelivery(a.key, wa.ID, da.ID)
	notified := ts.notify.Load()

	const (
		noWebhook  = "wh_00000000000000000000000000"
		noDelivery = "dlv_00000000000000000000000000"
	)
	for _, tc := range []struct {
		name         string
		method, path string
		missing      string // the same route with ids that do not exist
		body         any
	}{
		{"GetWebhook", "GET", "/v1/webhooks/" + wa.ID, "/v1/webhooks/" + noWebhook, nil},
		{"UpdateWebhook", "PATCH", "/v1/webhooks/" + wa.ID, "/v1/webhooks/" + noWebhook, map[string]any{"name": "pwned", "url": "https://attacker.example/"}},
		{"DeleteWebhook", "DELETE", "/v1/webhooks/" + wa.ID, "/v1/webhooks/" + noWebhook, nil},
		{"Ping", "POST", "/v1/webhooks/" + wa.ID + "/ping", "/v1/webhooks/" + noWebhook + "/ping", nil},
		{"ListDeliveries", "GET", "/v1/webhooks/" + wa.ID + "/deliveries", "/v1/webhooks/" + noWebhook + "/deliveries", nil},
		{"GetDelivery", "GET", "/v1/webhooks/" + wa.ID + "/deliveries/" + da.ID, "/v1/webhooks/" + noWebhook + "/deliveries/" + noDelivery, nil},
		{"Redeliver", "POST", "/v1/webhooks/" + wa.ID + "/deliveries/" + da.ID + "/redeliver", "/v1/webhooks/" + noWebhook + "/deliveries/" + noDelivery + "/redeliver", nil},
		// B's own webhook with A's delivery.
		{"GetDeliveryThroughOwnWebhook", "GET", "/v1/webhooks/" + wb.ID + "/deliveries/" + da.ID, "/v1/webhooks/" + wb.ID + "/deliveries/" + noDelivery, nil},
		{"RedeliverThroughOwnWebhook", "POST", "/v1/webhooks/" + wb.ID + "/deliveries/" + da.ID + "/redeliver", "/v1/webhooks/" + wb.ID + "/deliveries/" + noDelivery + "/redeliver", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(tc.method, tc.path, b.key, tc.body)
			r.wantError(t, 404, "not_found", "")
			missing := ts.do(tc.method, tc.missing, b.key, tc.body)
			if r.errorMessage(t) != missing.errorMessage(t) {
				t.Fatalf("answer %s differs from a missing object's %s", r.Body, missing.Body)
			}
		})
	}
	t.Run("ListShowsOnlyOwn", func(t *testing.T) {
		got := ts.listWebhooks(b.key)
		if len(got) != 1 || got[0].ID != wb.ID {
			t.Fatalf("B sees %+v", got)
		}
	})
	t.Run("NothingChanged", func(t *testing.T) {
		equalJSON(t, "A's webhooks", ts.listWebhooks(a.key), beforeWebhooks)
		equalJSON(t, "A's deliveries", ts.listDeliveries(a.key, wa.ID), beforeDeliveries)
		equalJSON(t, "A's delivery", ts.getDelivery(a.key, wa.ID, da.ID), beforeDelivery)
		if ts.notify.Load() != notified {
			t.Fatal("the dispatcher was notified")
		}
	})
	t.Run("AdminRoutesNameTheOrganization", func(t *testing.T) {
		// An API key of A cannot be deleted through B's path.
		var k struct{ ID string }
		ts.do("POST", "/v1/organizations/"+a.org.ID+"/api-keys", testAdminToken, map[string]any{"name": "k"}).want(t, http.StatusCreated, &k)
		ts.do("DELETE", "/v1/organizations/"+b.org.ID+"/api-keys/"+k.ID, testAdminToken, nil).wantError(t, 404, "not_found", "")
	})
	t.Run("ErrorsDoNotLeakIDs", func(t *testing.T) {
		r := ts.do("GET", "/v1/webhooks/"+wa.ID, b.key, nil)
		if strings.Contains(string(r.Body), a.org.ID) || strings.Contains(string(r.Body), wa.ID) {
			t.Fatalf("answer %s", r.Body)
		}
	})
}
