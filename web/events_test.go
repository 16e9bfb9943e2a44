package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPublish(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	hook := ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["events"] = []string{"scan_completed"} }))
	ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["events"] = []string{"scan_started"} }))
	ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["events"] = []string{"scan_completed"}; m["active"] = false }))

	t.Run("OK", func(t *testing.T) {
		before := ts.notify.Load()
		r, e := ts.publish(a.org.ID, "scan_completed", nil)
		r.want(t, http.StatusAccepted, nil)
		switch {
		case !strings.HasPrefix(e.ID, "evt_"), e.Type != "scan_completed", e.OrganizationID != a.org.ID,
			e.Deliveries != 1, time.Since(e.CreatedAt) > time.Minute, e.CreatedAt.Location() != time.UTC:
			t.Fatalf("event = %+v", e)
		}
		ds := ts.listDeliveries(a.key, hook.ID)
		if len(ds) != 1 || ds[0].EventID != e.ID || ds[0].Status != "pending" || ds[0].Attempts != 0 || ds[0].EventType != "scan_completed" {
			t.Fatalf("deliveries = %+v", ds)
		}
		if ts.notify.Load() != before+1 {
			t.Fatal("the dispatcher was not notified")
		}
	})
	t.Run("NoMatchingWebhook", func(t *testing.T) {
		before := ts.notify.Load()
		r, e := ts.publish(a.org.ID, "report_generated", nil)
		r.want(t, http.StatusAccepted, nil)
		if e.Deliveries != 0 {
			t.Fatalf("deliveries = %d, want 0", e.Deliveries)
		}
		if ts.notify.Load() != before {
			t.Fatal("notified without deliveries")
		}
	})
	t.Run("DuplicateID", func(t *testing.T) {
		r, first := ts.publish(a.org.ID, "scan_completed", map[string]any{"id": "scan-42.done"})
		r.want(t, http.StatusAccepted, nil)
		if first.ID != "scan-42.done" {
			t.Fatalf("id = %q, want the publisher's", first.ID)
		}
		n, notified := len(ts.listDeliveries(a.key, hook.ID)), ts.notify.Load()
		r, again := ts.publish(a.org.ID, "scan_completed", map[string]any{"id": "scan-42.done", "data": map[string]any{"other": true}})
		r.want(t, http.StatusOK, nil)
		equalJSON(t, "event", again, first)
		if len(ts.listDeliveries(a.key, hook.ID)) != n || ts.notify.Load() != notified {
			t.Fatal("a repeated id created deliveries")
		}
		// Ids are per organization.
		b := ts.createOrg("Other", "")
		r, _ = ts.publish(b.org.ID, "scan_completed", map[string]any{"id": "scan-42.done"})
		r.want(t, http.StatusAccepted, nil)
	})
	t.Run("DataCompacted", func(t *testing.T) {
		r := ts.do("POST", "/v1/events", testAdminToken, `{"organization_id":"`+a.org.ID+`","type":"scan_completed","data":{ "scan_id" : "s" ,
			"n": [1, 2] }}`)
		var e eventObj
		r.want(t, http.StatusAccepted, &e)
		ds := ts.listDeliveries(a.key, hook.ID)
		d := ts.getDelivery(a.key, hook.ID, ds[0].ID)
		if !strings.HasSuffix(d.Request.Body, `"data":{"scan_id":"s","n":[1,2]}}`) {
			t.Fatalf("body = %s", d.Request.Body)
		}
	})

	big := fmt.Sprintf(`{"blob":%q}`, strings.Repeat("x", 300<<10))
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"ErrOrganizationMissing", map[string]any{"type": "scan_completed", "data": map[string]any{}}, 400, "invalid_argument", "organization_id"},
		{"ErrOrganizationUnknown", map[string]any{"organization_id": "org_00000000000000000000000000", "type": "scan_completed", "data": map[string]any{}}, 404, "not_found", "organization_id"},
		{"ErrOrganizationType", map[string]any{"organization_id": 7, "type": "scan_completed", "data": map[string]any{}}, 400, "invalid_argument", "organization_id"},
		{"ErrTypeMissing", map[string]any{"organization_id": a.org.ID, "data": map[string]any{}}, 400, "invalid_argument", "type"},
		{"ErrTypeUnknown", map[string]any{"organization_id": a.org.ID, "type": "scan_exploded", "data": map[string]any{}}, 400, "invalid_argument", "type"},
		{"ErrTypePing", map[string]any{"organization_id": a.org.ID, "type": "ping", "data": map[string]any{}}, 400, "invalid_argument", "type"},
		{"ErrDataMissing", map[string]any{"organization_id": a.org.ID, "type": "scan_completed"}, 400, "invalid_argument", "data"},
		{"ErrDataNull", map[string]any{"organization_id": a.org.ID, "type": "scan_completed", "data": nil}, 400, "invalid_argument", "data"},
		{"ErrDataArray", map[string]any{"organization_id": a.org.ID, "type": "scan_completed", "data": []int{1}}, 400, "invalid_argument", "data"},
		{"ErrDataString", map[string]any{"organization_id": a.org.ID, "type": "scan_completed", "data": "{}"}, 400, "invalid_argument", "data"},
		{"ErrDataTooLarge", `{"organization_id":"` + a.org.ID + `","type":"scan_completed","data":` + big + `}`, 413, "payload_too_large", "data"},
		{"ErrBodyTooLarge", `{"organization_id":"` + a.org.ID + `","type":"scan_completed","data":` + big + `,"id":"` + strings.Repeat("i", 300<<10) + `"}`, 413, "payload_too_large", ""},
		{"ErrIDChars", map[string]any{"id": "a b", "organization_id": a.org.ID, "type": "scan_completed", "data": map[string]any{}}, 400, "invalid_argument", "id"},
		{"ErrIDTooLong", map[string]any{"id": strings.Repeat("i", 129), "organization_id": a.org.ID, "type": "scan_completed", "data": map[string]any{}}, 400, "invalid_argument", "id"},
		{"ErrIDType", map[string]any{"id": 12, "organization_id": a.org.ID, "type": "scan_completed", "data": map[string]any{}}, 400, "invalid_argument", "id"},
		{"ErrUnknownField", map[string]any{"organization_id": a.org.ID, "type": "scan_completed", "data": map[string]any{}, "created_at": "2026-01-01T00:00:00Z"}, 400, "invalid_argument", "created_at"},
		{"ErrMalformedJSON", `{"organization_id":`, 400, "invalid_argument", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, notified := len(ts.listDeliveries(a.key, hook.ID)), ts.notify.Load()
			ts.do("POST", "/v1/events", testAdminToken, tc.body).wantError(t, tc.status, tc.code, tc.field)
			if len(ts.listDeliveries(a.key, hook.ID)) != n || ts.notify.Load() != notified {
				t.Fatal("a refused event created deliveries")
			}
		})
	}
	t.Run("ErrDataAgainstSchema", func(t *testing.T) {
		strict := newTestServer(t, ts.store, withValidateEvents())
		r, _ := strict.publish(a.org.ID, "scan_completed", map[string]any{"data": map[string]any{"scan_id": 1}})
		r.wantError(t, 400, "invalid_argument", "data")
		r, _ = strict.publish(a.org.ID, "scan_completed", map[string]any{"data": map[string]any{"scan_id": "s", "target": "t", "completed_at": "2026-11-26T10:42:00Z"}})
		r.want(t, http.StatusAccepted, nil)
	})
}

func TestPublish_PartnerFanOut(t *testing.T) {
	ts := newTestServer(t, nil)
	partner := ts.createOrg("Partner", "")
	customer := ts.createOrg("Customer", partner.org.ID)
	other := ts.createOrg("Unrelated", "")
	scans := func(m map[string]any) { m["events"] = []string{"scan_completed"} }
	withCustomers := ts.createWebhook(partner.key, validWebhook(scans, func(m map[string]any) { m["include_customers"] = true }))
	ownOnly := ts.createWebhook(partner.key, validWebhook(scans))
	customersOwn := ts.createWebhook(customer.key, validWebhook(scans))
	otherOrgs := ts.createWebhook(other.key, validWebhook(scans))

	r, e := ts.publish(customer.org.ID, "scan_completed", nil)
	r.want(t, http.StatusAccepted, nil)
	if e.Deliveries != 2 {
		t.Fatalf("deliveries = %d, want 2 (the customer's and the partner's include_customers webhook)", e.Deliveries)
	}
	for _, tc := range []struct {
		key, webhookID string
		want           int
	}{
		{partner.key, withCustomers.ID, 1},
		{partner.key, ownOnly.ID, 0},
		{customer.key, customersOwn.ID, 1},
		{other.key, otherOrgs.ID, 0},
	} {
		if n := len(ts.listDeliveries(tc.key, tc.webhookID)); n != tc.want {
			t.Errorf("webhook %s: %d deliveries, want %d", tc.webhookID, n, tc.want)
		}
	}
	// The partner's own events reach both of its webhooks, not the customer's.
	_, e = ts.publish(partner.org.ID, "scan_completed", nil)
	if e.Deliveries != 2 || len(ts.listDeliveries(customer.key, customersOwn.ID)) != 1 {
		t.Fatalf("partner event: %d deliveries, want 2 to the partner's webhooks", e.Deliveries)
	}
}

func TestPublishBatch(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	hook := ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["events"] = []string{"scan_started", "scan_completed"} }))
	ev := func(id, typ string) map[string]any {
		return map[string]any{"id": id, "organization_id": a.org.ID, "type": typ, "data": map[string]any{"scan_id": id}}
	}
	batch := func(events ...any) map[string]any { return map[string]any{"events": events} }

	t.Run("InOrder", func(t *testing.T) {
		var out listObj[eventObj]
		ts.do("POST", "/v1/events/batch", testAdminToken, batch(ev("b1", "scan_started"), ev("b2", "report_generated"), ev("b3", "scan_completed"))).
			want(t, http.StatusAccepted, &out)
		if len(out.Data) != 3 {
			t.Fatalf("%d results, want 3", len(out.Data))
		}
		for i, want := range []struct {
			id         string
			deliveries int
		}{{"b1", 1}, {"b2", 0}, {"b3", 1}} {
			if got := out.Data[i]; got.ID != want.id || got.Deliveries != want.deliveries || got.OrganizationID != a.org.ID {
				t.Errorf("data[%d] = %+v, want id %s with %d deliveries", i, got, want.id, want.deliveries)
			}
		}
	})
	t.Run("RepeatedID", func(t *testing.T) {
		var out listObj[eventObj]
		ts.do("POST", "/v1/events/batch", testAdminToken, batch(ev("r1", "scan_started"), ev("r1", "scan_completed"), ev("b1", "scan_started"))).
			want(t, http.StatusAccepted, &out)
		if out.Data[1].ID != "r1" || out.Data[1].Type != "scan_started" || out.Data[2].Type != "scan_started" {
			t.Fatalf("results = %+v: a repeated id answers the first event", out.Data)
		}
	})
	t.Run("WithoutIDs", func(t *testing.T) {
		var out listObj[eventObj]
		e := map[string]any{"organization_id": a.org.ID, "type": "scan_started", "data": map[string]any{}}
		ts.do("POST", "/v1/events/batch", testAdminToken, batch(e, e)).want(t, http.StatusAccepted, &out)
		if out.Data[0].ID == out.Data[1].ID || !strings.HasPrefix(out.Data[0].ID, "evt_") {
			t.Fatalf("results = %+v: want two fresh evt_ ids", out.Data)
		}
	})
	t.Run("Max1000", func(t *testing.T) {
		events := make([]any, 1000)
		for i := range events {
			events[i] = map[string]any{"organization_id": a.org.ID, "type": "report_generated", "data": map[string]any{}}
		}
		var out listObj[eventObj]
		ts.do("POST", "/v1/events/batch", testAdminToken, batch(events...)).want(t, http.StatusAccepted, &out)
		if len(out.Data) != 1000 {
			t.Fatalf("%d results", len(out.Data))
		}
	})

	tooMany := make([]any, 1001)
	for i := range tooMany {
		tooMany[i] = map[string]any{"organization_id": a.org.ID, "type": "scan_started", "data": map[string]any{}}
	}
	// Just over 16 MiB, so the server refuses it after reading the limit
	// and no more than a few KiB are left unread.
	var huge strings.Builder
	huge.WriteString(`{"events":[`)
	for huge.Len() < maxBatchBodySize+8<<10 {
		if huge.Len() > len(`{"events":[`) {
			huge.WriteByte(',')
		}
		blob := min(240<<10, maxBatchBodySize+8<<10-huge.Len())
		fmt.Fprintf(&huge, `{"organization_id":%q,"type":"scan_started","data":{"blob":%q}}`, a.org.ID, strings.Repeat("x", blob))
	}
	huge.WriteString(`]}`)

	for _, tc := range []struct {
		name    string
		body    any
		status  int
		code    string
		index   string // the index the message names
		created string // an id in the batch that must not be stored
	}{
		{"ErrInvalidEvent", batch(ev("inv1", "scan_started"), ev("inv2", "scan_started"), ev("inv3", "scan_exploded")), 400, "invalid_argument", "events[2]", "inv1"},
		{"ErrUnknownOrganization", batch(ev("unk1", "scan_started"), map[string]any{"organization_id": "org_00000000000000000000000000", "type": "scan_started", "data": map[string]any{}}), 404, "not_found", "events[1]", "unk1"},
		{"ErrDataTooLarge", batch(ev("big1", "scan_started"), map[string]any{"organization_id": a.org.ID, "type": "scan_started", "data": map[string]any{"blob": strings.Repeat("x", 300<<10)}}), 413, "payload_too_large", "events[1]", "big1"},
		{"ErrUnknownFieldInEvent", batch(ev("unf1", "scan_started"), map[string]any{"organization_id": a.org.ID, "type": "scan_started", "data": map[string]any{}, "extra": 1}), 400, "invalid_argument", "events[1]", "unf1"},
		{"ErrEventNotAnObject", batch(ev("nao1", "scan_started"), "scan_started"), 400, "invalid_argument", "events[1]", "nao1"},
		{"ErrWrongTypeInEvent", batch(ev("wt1", "scan_started"), map[string]any{"organization_id": a.org.ID, "type": 5, "data": map[string]any{}}), 400, "invalid_argument", "events[1]", "wt1"},
		{"ErrTooMany", batch(tooMany...), 400, "invalid_argument", "", ""},
		{"ErrEmpty", batch(), 400, "invalid_argument", "", ""},
		{"ErrMissing", map[string]any{}, 400, "invalid_argument", "", ""},
		{"ErrNotAList", map[string]any{"events": map[string]any{}}, 400, "invalid_argument", "", ""},
		{"ErrBodyTooLarge", huge.String(), 413, "payload_too_large", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, notified := len(ts.listDeliveries(a.key, hook.ID)), ts.notify.Load()
			r := ts.do("POST", "/v1/events/batch", testAdminToken, tc.body)
			field := "events"
			if tc.name == "ErrBodyTooLarge" {
				field = ""
			}
			r.wantError(t, tc.status, tc.code, field)
			if tc.index != "" && !strings.HasPrefix(r.errorMessage(t), tc.index+": ") {
				t.Errorf("message %q does not start with %s", r.errorMessage(t), tc.index)
			}
			if len(ts.listDeliveries(a.key, hook.ID)) != n || ts.notify.Load() != notified {
				t.Fatal("a refused batch created deliveries")
			}
			if tc.created != "" {
				// Nothing of the batch was stored: its first id is still new.
				r, _ := ts.publish(a.org.ID, "report_generated", map[string]any{"id": tc.created})
				r.want(t, http.StatusAccepted, nil)
			}
		})
	}
}

func TestEventTypes(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	for _, token := range []string{testAdminToken, a.key} {
		var l struct {
			Data []map[string]any `json:"data"`
		}
		ts.do("GET", "/v1/event-types", token, nil).want(t, http.StatusOK, &l)
		var names []string
		for _, et := range l.Data {
			if et["description"] == "" || et["schema"] != nil {
				t.Fatalf("entry %v: want name and description only", et)
			}
			names = append(names, et["name"].(string))
		}
		if strings.Join(names, ",") != "scan_started,scan_completed,scan_stopped,scan_failed,report_generated,ping" {
			t.Fatalf("names = %v", names)
		}
	}
	var et struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Schema      json.RawMessage `json:"schema"`
		Example     json.RawMessage `json:"example"`
	}
	ts.do("GET", "/v1/event-types/scan_completed", a.key, nil).want(t, http.StatusOK, &et)
	if et.Name != "scan_completed" || et.Description == "" || !strings.Contains(string(et.Schema), `"$schema"`) || !strings.Contains(string(et.Example), `"findings"`) {
		t.Fatalf("event type = %+v", et)
	}
	ts.do("GET", "/v1/event-types/scan_exploded", a.key, nil).wantError(t, 404, "not_found", "")
	ts.do("GET", "/v1/event-types", "", nil).wantError(t, 401, "unauthenticated", "")
}
