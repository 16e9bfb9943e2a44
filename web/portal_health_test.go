package web

import (
	"net/http"
	"net/url"
	"testing"
)

func TestPortal_DisabledWebhook(t *testing.T) {
	ts := newTestServer(t, nil)
	acme, other := ts.createOrg("Acme", ""), ts.createOrg("Other", "")
	wh := ts.createWebhook(acme.key, validWebhook())
	p := ts.signedIn(t, acme.org.ID, "ada@acme.example")
	eve := ts.signedIn(t, other.org.ID, "eve@other.example")
	page := "/settings/webhooks/" + wh.ID
	reason := "disabled automatically after 20 consecutive failed deliveries; last attempt: HTTP 500"

	p.get(page).wantNoText(t, "Disabled", "Re-enable")
	ts.disableByFailures(acme.org.ID)

	p.get("/settings/webhooks").wantText(t, http.StatusOK, "Scans", "Disabled")
	s := p.get(page)
	s.wantText(t, http.StatusOK, "Disabled", "hookd disabled this webhook", reason, "Re-enable",
		"Also redeliver the deliveries that failed while it was disabled")
	if s.checked(t, "redeliver_failed") || !s.hasLabel("redeliver_failed", "Also redeliver the deliveries that failed while it was disabled") {
		t.Fatal("the redeliver checkbox must be there, labelled, and unchecked")
	}
	s.wantNoText(t, "Deactivate")

	t.Run("ErrAnotherOrganization", func(t *testing.T) {
		before := ts.getWebhook(acme.key, wh.ID)
		eve.post(page+"/enable", url.Values{"redeliver_failed": {"1"}}).wantText(t, http.StatusNotFound, "Page not found")
		equalJSON(t, "webhook", ts.getWebhook(acme.key, wh.ID), before)
	})
	t.Run("ErrCrossSite", func(t *testing.T) {
		before := ts.getWebhook(acme.key, wh.ID)
		p.send("POST", page+"/enable", url.Values{"redeliver_failed": {"1"}}, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}).
			wantText(t, http.StatusForbidden, "Cross-site request refused")
		equalJSON(t, "webhook", ts.getWebhook(acme.key, wh.ID), before)
	})
	t.Run("ReEnableAndRedeliver", func(t *testing.T) {
		notified := ts.notify.Load()
		p.post(page+"/enable", url.Values{"redeliver_failed": {"1"}}).
			wantText(t, http.StatusOK, "Webhook enabled again", "20 failed deliveries are being sent again.", "Active", "Deactivate")
		if got := ts.getWebhook(acme.key, wh.ID); !got.Active || got.DisabledReason != nil {
			t.Fatalf("webhook = %+v, want enabled", got)
		}
		if ts.notify.Load() != notified+1 {
			t.Fatal("the dispatcher was not notified")
		}
		p.get(page).wantNoText(t, "Disabled", "Re-enable", reason)
	})
	t.Run("ReEnableWithoutRedelivering", func(t *testing.T) {
		ts.failAll()
		p.get(page).wantText(t, http.StatusOK, "Re-enable")
		p.post(page+"/enable", url.Values{}).wantText(t, http.StatusOK, "Webhook enabled again")
		p.get(page).wantNoText(t, "being sent again")
		for _, d := range ts.listDeliveries(acme.key, wh.ID) {
			if d.Status != "failed" {
				t.Fatalf("delivery %s is %s without asking to redeliver", d.ID, d.Status)
			}
		}
	})
}
