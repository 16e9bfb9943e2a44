package web

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// addForm is an Add Webhook form that passes every rule; edits change it.
func addForm(edit ...func(url.Values)) url.Values {
	f := url.Values{
		"name":   {"Scans"},
		"url":    {"https://hooks.example.com/hookd"},
		"events": {"scan_started", "scan_completed"},
		"secret": {"s3cret"},
	}
	for _, fn := range edit {
		fn(f)
	}
	return f
}

func TestPortal_AddWebhook(t *testing.T) {
	ts := newTestServer(t, nil)
	acme := ts.createOrg("Acme", "")
	p := ts.signedIn(t, acme.org.ID, "ada@acme.example")

	t.Run("Form", func(t *testing.T) {
		s := p.get("/settings/webhooks/new")
		s.wantText(t, http.StatusOK, "Add Webhook")
		for id, label := range map[string]string{
			"name": "Name", "url": "Target URL", "secret": "Secret (optional)",
			"event-scan_started": "scan_started", "event-scan_completed": "scan_completed",
			"event-scan_stopped": "scan_stopped", "event-scan_failed": "scan_failed",
			"event-report_generated": "report_generated",
		} {
			if !s.hasLabel(id, label) {
				t.Errorf("no <label for=%q>%s</label>", id, label)
			}
		}
		// Each event shows its description from the catalog; ping is not offered.
		s.wantText(t, http.StatusOK, hookd.LookupEventType("scan_completed").Description, "Generate")
		if strings.Contains(s.HTML, `id="event-ping"`) {
			t.Fatal("ping is offered as an event")
		}
		if strings.Contains(s.HTML, `id="include_customers"`) || strings.Contains(s.Text, "Include Customers' Events") {
			t.Fatal("a customer organization is offered Include Customers' Events")
		}
	})

	t.Run("OK", func(t *testing.T) {
		s := p.post("/settings/webhooks/new", addForm())
		s.wantText(t, http.StatusOK, "Webhook “Scans” added.", "Scans", "https://hooks.example.com/hookd", "scan_started", "scan_completed", "Active", "No deliveries yet")
		if s.Path != "/settings/webhooks" {
			t.Fatalf("after adding at %s", s.Path)
		}
		// The flash shows once.
		p.get("/settings/webhooks").wantNoText(t, "added.")
		list := ts.listWebhooks(acme.key)
		if len(list) != 1 || !list[0].HasSecret || !list[0].Active || list[0].IncludeCustomers {
			t.Fatalf("webhooks = %+v", list)
		}
	})

	for _, tc := range []struct {
		name, field, message string
		edit                 func(url.Values)
	}{
		{"ErrName", "name", "Name is required", func(f url.Values) { f.Set("name", "  ") }},
		{"ErrNameLong", "name", "Name must be at most 100 characters", func(f url.Values) { f.Set("name", strings.Repeat("n", 101)) }},
		{"ErrURLScheme", "url", "Target URL must be an absolute https:// URL", func(f url.Values) { f.Set("url", "ftp://hooks.example.com/") }},
		{"ErrURLFragment", "url", "Target URL must not contain a fragment", func(f url.Values) { f.Set("url", "https://hooks.example.com/#x") }},
		{"ErrNoEvents", "events", "Events must list at least one event type", func(f url.Values) { f.Del("events") }},
		{"ErrUnknownEvent", "events", `unknown event type "scan_exploded"`, func(f url.Values) { f.Add("events", "scan_exploded") }},
		{"ErrSecretLong", "secret", "Secret must be at most 256 bytes", func(f url.Values) { f.Set("secret", strings.Repeat("s", 257)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(ts.listWebhooks(acme.key))
			form := addForm(func(f url.Values) { f.Set("name", "Typed name"); f.Set("events", "scan_failed") }, tc.edit)
			s := p.post("/settings/webhooks/new", form)
			s.wantText(t, http.StatusUnprocessableEntity, "Add Webhook", tc.message)
			if got := s.fieldError(tc.field); got != "⚠ "+tc.message && got != tc.message {
				t.Fatalf("error next to %s = %q, want %q", tc.field, got, tc.message)
			}
			// What the person typed is still there.
			for _, id := range []string{"name", "url", "secret"} {
				if got := s.inputValue(t, id); got != strings.TrimSpace(form.Get(id)) {
					t.Errorf("%s shows %q, typed %q", id, got, form.Get(id))
				}
			}
			if form.Has("events") && !s.checked(t, "event-scan_failed") {
				t.Error("the ticked event is not ticked any more")
			}
			if n := len(ts.listWebhooks(acme.key)); n != before {
				t.Fatalf("a webhook was created: %d → %d", before, n)
			}
		})
	}

	t.Run("ErrForgedIncludeCustomers", func(t *testing.T) {
		// The box is not shown to a customer; a forged one meets the API's rule.
		s := p.post("/settings/webhooks/new", addForm(func(f url.Values) { f.Set("include_customers", "1") }))
		s.wantText(t, http.StatusUnprocessableEntity, "Include Customers' Events is only available to partner organizations")
		if n := len(ts.listWebhooks(acme.key)); n != 1 {
			t.Fatalf("%d webhooks", n)
		}
	})
}

func TestPortal_IncludeCustomers(t *testing.T) {
	ts := newTestServer(t, nil)
	partner := ts.createOrg("Partner", "")
	ts.createOrg("Customer", partner.org.ID)
	p := ts.signedIn(t, partner.org.ID, "pat@partner.example")

	s := p.get("/settings/webhooks/new")
	if !s.hasLabel("include_customers", "Include Customers' Events") || s.checked(t, "include_customers") {
		t.Fatal("a partner is not offered Include Customers' Events, unticked")
	}
	s = p.post("/settings/webhooks/new", addForm(func(f url.Values) { f.Set("include_customers", "1") }))
	s.wantText(t, http.StatusOK, "added.", "+ customers")
	wh := ts.listWebhooks(partner.key)[0]
	if !wh.IncludeCustomers {
		t.Fatal("include_customers not set")
	}
	// The edit form keeps it ticked, and unticking it turns it off.
	s = p.get("/settings/webhooks/" + wh.ID)
	if !s.checked(t, "include_customers") {
		t.Fatal("the edit form does not show include_customers ticked")
	}
	p.post("/settings/webhooks/"+wh.ID, addForm()).wantText(t, http.StatusOK, "Changes saved.")
	if ts.getWebhook(partner.key, wh.ID).IncludeCustomers {
		t.Fatal("unticking did not turn include_customers off")
	}
}

func TestPortal_WebhookPage(t *testing.T) {
	ts := newTestServer(t, nil)
	acme := ts.createOrg("Acme", "")
	wh := ts.createWebhook(acme.key, validWebhook())
	p := ts.signedIn(t, acme.org.ID, "ada@acme.example")
	page := "/settings/webhooks/" + wh.ID

	t.Run("Shows", func(t *testing.T) {
		s := p.get(page)
		s.wantText(t, http.StatusOK, "Scans", "Active", "https://hooks.example.com/hookd", "Send test event", "Deactivate", "Delete",
			"Recent deliveries", "No deliveries yet.", "Edit webhook", "This webhook has a secret.")
		if s.inputValue(t, "name") != "Scans" || !s.checked(t, "event-scan_started") || s.checked(t, "event-scan_failed") {
			t.Fatal("the edit form does not show the webhook")
		}
		if s.inputValue(t, "secret") != "" || strings.Contains(s.HTML, "s3cret") {
			t.Fatal("the page shows the secret")
		}
	})
	t.Run("Edit", func(t *testing.T) {
		s := p.post(page, url.Values{"name": {"Renamed"}, "url": {"https://new.example.com/h"}, "events": {"scan_failed"}})
		s.wantText(t, http.StatusOK, "Changes saved.", "Renamed", "https://new.example.com/h")
		got := ts.getWebhook(acme.key, wh.ID)
		if got.Name != "Renamed" || got.URL != "https://new.example.com/h" || len(got.Events) != 1 || got.Events[0] != "scan_failed" {
			t.Fatalf("webhook = %+v", got)
		}
		if !got.HasSecret {
			t.Fatal("an empty secret field removed the secret")
		}
	})
	t.Run("ErrEdit", func(t *testing.T) {
		before := ts.getWebhook(acme.key, wh.ID)
		s := p.post(page, url.Values{"name": {"Typed"}, "url": {"http//oops"}, "events": {"scan_started"}})
		s.wantText(t, http.StatusUnprocessableEntity, "Recent deliveries")
		if e := s.fieldError("url"); !strings.Contains(e, "Target URL") {
			t.Fatalf("error next to url = %q", e)
		}
		if s.inputValue(t, "url") != "http//oops" || s.inputValue(t, "name") != "Typed" || !s.checked(t, "event-scan_started") {
			t.Fatal("the typed values are lost")
		}
		equalJSON(t, "webhook", ts.getWebhook(acme.key, wh.ID), before)
	})
	t.Run("RemoveSecret", func(t *testing.T) {
		p.post(page, url.Values{"name": {"Renamed"}, "url": {"https://new.example.com/h"}, "events": {"scan_failed"}, "remove_secret": {"1"}}).
			wantText(t, http.StatusOK, "Changes saved.")
		if ts.getWebhook(acme.key, wh.ID).HasSecret {
			t.Fatal("the secret is still there")
		}
		p.get(page).wantNoText(t, "This webhook has a secret.")
	})
	t.Run("DeactivateActivate", func(t *testing.T) {
		s := p.post(page+"/active", url.Values{"active": {"false"}})
		s.wantText(t, http.StatusOK, "Webhook deactivated", "Inactive", "Activate")
		if ts.getWebhook(acme.key, wh.ID).Active {
			t.Fatal("still active")
		}
		p.get("/settings/webhooks").wantText(t, http.StatusOK, "Inactive")
		p.post(page+"/active", url.Values{"active": {"true"}}).wantText(t, http.StatusOK, "Webhook activated.", "Deactivate")
		if !ts.getWebhook(acme.key, wh.ID).Active {
			t.Fatal("not active")
		}
	})
	t.Run("Delete", func(t *testing.T) {
		s := p.get(page + "/delete")
		s.wantText(t, http.StatusOK, "Delete “Renamed”?", "This cannot be undone.", "Delete webhook", "Cancel")
		if len(ts.listWebhooks(acme.key)) != 1 {
			t.Fatal("the confirmation page deleted the webhook")
		}
		s = p.post(page+"/delete", nil)
		s.wantText(t, http.StatusOK, "Webhook “Renamed” deleted.", "No webhooks yet.")
		if len(ts.listWebhooks(acme.key)) != 0 {
			t.Fatal("not deleted")
		}
		p.get(page).wantText(t, http.StatusNotFound, "Page not found")
	})
}

func TestPortal_PingAndDeliveries(t *testing.T) {
	ts := newTestServer(t, nil)
	acme := ts.createOrg("Acme", "")
	wh := ts.createWebhook(acme.key, validWebhook())
	p := ts.signedIn(t, acme.org.ID, "ada@acme.example")
	page := "/settings/webhooks/" + wh.ID

	notified := ts.notify.Load()
	s := p.post(page+"/ping", nil)
	s.wantText(t, http.StatusOK, "Test event sent.", "Recent deliveries", "ping", "Pending")
	if ts.notify.Load() != notified+1 {
		t.Fatal("the dispatcher was not woken")
	}
	d := ts.listDeliveries(acme.key, wh.ID)[0]
	dpage := page + "/deliveries/" + d.ID

	s = p.get(dpage)
	s.wantText(t, http.StatusOK, "Delivery "+d.ID, "Pending", "Redeliver", "As it will be sent on the first attempt.",
		"X-CG-Hook-Event ping", "X-CG-Hook-Delivery "+d.ID, "X-CG-Hook-ID "+wh.ID, "X-CG-Hook-Attempt 1", "X-CG-Hook-Signature sha256=",
		`"type": "ping"`, `"webhook_id": "`+wh.ID+`"`, "No attempt yet")

	// Two attempts, as the dispatcher would record them.
	attempt(t, ts, 500, "boom", "")
	attempt(t, ts, 0, "", "connection refused")

	s = p.get(dpage)
	s.wantText(t, http.StatusOK, "Failed", "As sent on attempt 2.",
		"Attempt 2 No response", "connection refused", "Attempt 1 500 Internal Server Error", "boom", "42 ms")
	if strings.Index(s.Text, "Attempt 2") > strings.Index(s.Text, "Attempt 1") {
		t.Fatal("attempts are not newest first")
	}
	p.get(page).wantText(t, http.StatusOK, "ping Failed No response 42 ms")
	p.get("/settings/webhooks").wantText(t, http.StatusOK, "Failed")

	s = p.post(dpage+"/redeliver", nil)
	s.wantText(t, http.StatusOK, "Redelivery queued", "Pending")
	if s.Path != dpage {
		t.Fatalf("after redeliver at %s", s.Path)
	}
	if got := ts.listDeliveries(acme.key, wh.ID)[0]; got.Status != "pending" || got.ID != d.ID {
		t.Fatalf("delivery = %+v", got)
	}
}

// attempt records one attempt of the first due delivery, as the dispatcher
// does: status 0 means no HTTP answer.
func attempt(t *testing.T, ts *testServer, status int, body, errText string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	jobs, err := ts.store.ClaimDeliveries(ctx, now.Add(time.Hour), now.Add(2*time.Hour), 1, 0)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v, %d jobs", err, len(jobs))
	}
	j := jobs[0]
	res := &hookd.AttemptResult{Job: j, Status: hookd.DeliveryPending, NextAttemptAt: now,
		Attempt: hookd.Attempt{DeliveryID: j.DeliveryID, Number: j.Attempt, StartedAt: now, Duration: 42 * time.Millisecond,
			StatusCode: status, ResponseBody: body, Error: errText}}
	if j.Attempt == 2 {
		res.Status = hookd.DeliveryFailed
	}
	if err := ts.store.CompleteAttempts(ctx, []*hookd.AttemptResult{res}); err != nil {
		t.Fatal(err)
	}
}

// TestPortal_Isolation: a user gets 404 for another organization's webhook
// and delivery pages, exactly as for ids that do not exist, and their
// POSTs change nothing.
func TestPortal_Isolation(t *testing.T) {
	ts := newTestServer(t, nil)
	victim := ts.createOrg("Victim", "")
	attacker := ts.createOrg("Attacker", "")
	wh := ts.createWebhook(victim.key, validWebhook())
	ts.publish(victim.org.ID, "scan_started", nil)
	d := ts.listDeliveries(victim.key, wh.ID)[0]
	ts.signedIn(t, victim.org.ID, "vic@victim.example")
	p := ts.signedIn(t, attacker.org.ID, "eve@attacker.example")

	beforeWebhook := ts.getWebhook(victim.key, wh.ID)
	beforeDeliveries := ts.listDeliveries(victim.key, wh.ID)
	notified := ts.notify.Load()

	base := "/settings/webhooks/" + wh.ID
	for _, tc := range []struct {
		method, path string
		form         url.Values
	}{
		{"GET", base, nil},
		{"GET", base + "/delete", nil},
		{"GET", base + "/deliveries/" + d.ID, nil},
		{"POST", base, addForm(func(f url.Values) { f.Set("url", "https://attacker.example/") })},
		{"POST", base + "/active", url.Values{"active": {"false"}}},
		{"POST", base + "/ping", nil},
		{"POST", base + "/deliveries/" + d.ID + "/redeliver", nil},
		{"POST", base + "/delete", nil},
	} {
		t.Run(tc.method+strings.ReplaceAll(strings.TrimPrefix(tc.path, base), "/"+d.ID, "/{delivery}"), func(t *testing.T) {
			var s *screen
			if tc.method == "GET" {
				s = p.get(tc.path)
			} else {
				s = p.post(tc.path, tc.form)
			}
			s.wantText(t, http.StatusNotFound, "Page not found")
			s.wantNoText(t, "Scans", "hooks.example.com")
		})
	}
	equalJSON(t, "webhook", ts.getWebhook(victim.key, wh.ID), beforeWebhook)
	equalJSON(t, "deliveries", ts.listDeliveries(victim.key, wh.ID), beforeDeliveries)
	if ts.notify.Load() != notified {
		t.Fatal("the dispatcher was woken")
	}
	p.get("/settings/webhooks").wantNoText(t, "Scans")
}

// TestPortal_CrossSitePost: a form posted from another site is refused
// with 403 and changes nothing, whatever its cookies.
func TestPortal_CrossSitePost(t *testing.T) {
	ts := newTestServer(t, nil)
	acme := ts.createOrg("Acme", "")
	wh := ts.createWebhook(acme.key, validWebhook())
	p := ts.signedIn(t, acme.org.ID, "ada@acme.example")
	before := ts.getWebhook(acme.key, wh.ID)

	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"SecFetchSite", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}},
		{"SameSiteOtherOrigin", http.Header{"Sec-Fetch-Site": {"same-site"}}},
		{"OriginOnly", http.Header{"Origin": {"https://evil.example"}}}, // an older browser
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/settings/webhooks/" + wh.ID + "/delete", "/settings/webhooks/" + wh.ID + "/active", "/logout", "/login"} {
				s := p.send("POST", path, url.Values{"active": {"false"}}, tc.header)
				s.wantText(t, http.StatusForbidden, "Cross-site request refused")
			}
		})
	}
	equalJSON(t, "webhook", ts.getWebhook(acme.key, wh.ID), before)
	p.get("/settings/webhooks").wantText(t, http.StatusOK, "ada@acme.example", "Scans") // still signed in
}

func TestPortal_DeliveriesPaging(t *testing.T) {
	ts := newTestServer(t, nil)
	acme := ts.createOrg("Acme", "")
	wh := ts.createWebhook(acme.key, validWebhook())
	for range deliveriesPerPage + 5 {
		if _, err := ts.store.CreatePing(context.Background(), acme.org.ID, wh.ID); err != nil {
			t.Fatal(err)
		}
	}
	p := ts.signedIn(t, acme.org.ID, "ada@acme.example")
	rows := func(s *screen) int { return strings.Count(s.HTML, `/deliveries/dlv_`) }

	s := p.get("/settings/webhooks/" + wh.ID)
	s.wantText(t, http.StatusOK, "Older deliveries →")
	s.wantNoText(t, "← Newest")
	if n := rows(s); n != deliveriesPerPage {
		t.Fatalf("first page: %d deliveries, want %d", n, deliveriesPerPage)
	}
	older := regexpFind(t, s.HTML, `href="(/settings/webhooks/[^"]+\?cursor=[^"#]+)`)
	s = p.get(older)
	s.wantText(t, http.StatusOK, "← Newest")
	s.wantNoText(t, "Older deliveries")
	if n := rows(s); n != 5 {
		t.Fatalf("second page: %d deliveries, want 5", n)
	}
	// A cursor that hookd did not give out shows the first page.
	if n := rows(p.get("/settings/webhooks/" + wh.ID + "?cursor=bogus")); n != deliveriesPerPage {
		t.Fatalf("bad cursor: %d deliveries", n)
	}
}

func regexpFind(t *testing.T, s, expr string) string {
	t.Helper()
	m := regexp.MustCompile(expr).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match for %s", expr)
	}
	return html.UnescapeString(m[1])
}
