package storetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

func testPublish(t *testing.T, open func(t *testing.T) Store) {
	// receivedBy returns the ids of the webhooks that got a delivery of the
	// event, sorted, with one check per webhook that there is exactly one.
	receivedBy := func(h *harness, eventID string, hooks ...*hookd.Webhook) []string {
		h.t.Helper()
		var got []string
		for _, w := range hooks {
			n := 0
			for _, d := range h.deliveries(w, "") {
				if d.EventID == eventID {
					n++
				}
			}
			switch {
			case n > 1:
				h.t.Fatalf("webhook %s has %d deliveries of event %s, want at most one", w.ID, n, eventID)
			case n == 1:
				got = append(got, w.ID)
			}
		}
		slices.Sort(got)
		return got
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }

	t.Run("FanOut", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		match := h.webhook(o.ID)
		unsubscribed := h.webhook(o.ID, subscribed(hookd.EventScanFailed))
		off := h.webhook(o.ID, inactive)
		neighbour := h.webhook(h.org("").ID)

		res := h.publish(event(o.ID, hookd.EventScanCompleted))[0]
		if !res.Created || res.Event.Deliveries != 1 {
			t.Fatalf("result: Created %v, Deliveries %d; want true, 1", res.Created, res.Event.Deliveries)
		}
		if got := receivedBy(h, res.Event.ID, match, unsubscribed, off, neighbour); !slices.Equal(got, []string{match.ID}) {
			t.Fatalf("delivered to %v, want only %v", got, match.ID)
		}
		d := h.deliveries(match, "")[0]
		want := &hookd.Delivery{
			ID: d.ID, EventID: res.Event.ID, EventType: hookd.EventScanCompleted, WebhookID: match.ID, OrganizationID: o.ID,
			Status: hookd.DeliveryPending, CreatedAt: res.Event.CreatedAt, NextAttemptAt: &res.Event.CreatedAt,
		}
		wantEqual(t, "new delivery", want, d)
		if !strings.HasPrefix(d.ID, hookd.PrefixDelivery) {
			t.Fatalf("delivery ID = %q, want prefix %q", d.ID, hookd.PrefixDelivery)
		}
		h.wantCounts(1, 0, 0)
	})
	t.Run("PartnerIncludeCustomersFanOut", func(t *testing.T) {
		h := setup(t, open)
		partner := h.org("")
		customer, sibling := h.org(partner.ID), h.org(partner.ID)
		outsider := h.org("")
		pAll := h.webhook(partner.ID, includeCustomers)
		pOwn := h.webhook(partner.ID)
		pOff := h.webhook(partner.ID, includeCustomers, inactive)
		pUnsub := h.webhook(partner.ID, includeCustomers, subscribed(hookd.EventReportGenerated))
		cOwn := h.webhook(customer.ID)
		cOff := h.webhook(customer.ID, inactive)
		sOwn := h.webhook(sibling.ID)
		xAll := h.webhook(outsider.ID) // another organization, not the partner
		all := []*hookd.Webhook{pAll, pOwn, pOff, pUnsub, cOwn, cOff, sOwn, xAll}

		res := h.publish(event(customer.ID, hookd.EventScanCompleted), event(partner.ID, hookd.EventScanCompleted))
		if got, want := receivedBy(h, res[0].Event.ID, all...), sorted(cOwn.ID, pAll.ID); !slices.Equal(got, want) {
			t.Fatalf("customer's event delivered to %v, want %v (its own and the partner's include_customers webhook)", got, want)
		}
		if res[0].Event.Deliveries != 2 {
			t.Fatalf("customer's event: Deliveries = %d, want 2", res[0].Event.Deliveries)
		}
		// The partner's own events go to its active subscribed webhooks,
		// include_customers or not, and never down to customers.
		if got, want := receivedBy(h, res[1].Event.ID, all...), sorted(pAll.ID, pOwn.ID); !slices.Equal(got, want) {
			t.Fatalf("partner's event delivered to %v, want %v", got, want)
		}
		if res[1].Event.Deliveries != 2 {
			t.Fatalf("partner's event: Deliveries = %d, want 2", res[1].Event.Deliveries)
		}
		h.wantCounts(4, 0, 0)
	})
	t.Run("NoReceivers", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID, subscribed(hookd.EventScanStopped))
		res := h.publish(event(o.ID, hookd.EventScanCompleted))[0]
		if !res.Created || res.Event.Deliveries != 0 {
			t.Fatalf("result: Created %v, Deliveries %d; want true, 0", res.Created, res.Event.Deliveries)
		}
		h.wantCounts(0, 0, 0)
	})
	t.Run("Result", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		in := []*hookd.Event{event(o.ID, hookd.EventScanStarted), event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanFailed)}
		in[1].ID = "scan-42:completed"
		in[2].Data = json.RawMessage(`{"scan_id":"scn_9","error":"boom"}`)
		res := h.publish(in...)
		seen := map[string]bool{}
		for i, r := range res {
			e := r.Event
			if !r.Created || e.Type != in[i].Type || e.OrganizationID != o.ID || string(e.Data) != string(in[i].Data) {
				t.Fatalf("result %d = %+v (Created %v), want event %d created", i, e, r.Created, i)
			}
			if in[i].ID == "" && !strings.HasPrefix(e.ID, hookd.PrefixEvent) || in[i].ID != "" && e.ID != in[i].ID {
				t.Fatalf("result %d: ID %q for given id %q", i, e.ID, in[i].ID)
			}
			if seen[e.ID] {
				t.Fatalf("id %s given twice", e.ID)
			}
			seen[e.ID] = true
			wantNear(t, "CreatedAt", e.CreatedAt)
		}
		if want := []int{1, 1, 0}; res[0].Event.Deliveries != want[0] || res[1].Event.Deliveries != want[1] || res[2].Event.Deliveries != want[2] {
			t.Fatalf("Deliveries = %d %d %d, want %v", res[0].Event.Deliveries, res[1].Event.Deliveries, res[2].Event.Deliveries, want)
		}
	})
	t.Run("EventStored", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		e := event(o.ID, hookd.EventScanCompleted)
		e.ID = "evt-from-platform"
		e.Data = json.RawMessage(`{"scan_id":"scn_1","findings":{"high":2},"note":"ünïcode \u2028"}`)
		res := h.publish(e)[0]
		d := h.delivery(w, h.deliveries(w, "")[0].ID)
		wantEqual(t, "stored event", res.Event, d.Event)
		wantTime(t, "event CreatedAt", d.Event.CreatedAt)
	})
	t.Run("DuplicateID", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		first := event(o.ID, hookd.EventScanCompleted)
		first.ID = "scan-1-completed"
		orig := h.publish(first)[0]

		again := event(o.ID, hookd.EventScanStarted)
		again.ID, again.Data = first.ID, json.RawMessage(`{"different":true}`)
		time.Sleep(2 * time.Millisecond)
		res := h.publish(again)[0]
		if res.Created {
			t.Fatal("a repeated id created a new event")
		}
		wantEqual(t, "repeated event's result", orig.Event, res.Event)
		if n := len(h.deliveries(w, "")); n != 1 {
			t.Fatalf("%d deliveries after a repeated id, want 1", n)
		}
		h.wantCounts(1, 0, 0)
	})
	t.Run("DuplicateIDInBatch", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		a, b := event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted)
		a.ID, b.ID = "same", "same"
		b.Data = json.RawMessage(`{"second":true}`)
		res := h.publish(a, b)
		if !res[0].Created || res[1].Created {
			t.Fatalf("Created = %v, %v; want true, false", res[0].Created, res[1].Created)
		}
		wantEqual(t, "duplicate's result", res[0].Event, res[1].Event)
		if n := len(h.deliveries(w, "")); n != 1 {
			t.Fatalf("%d deliveries, want 1", n)
		}
	})
	t.Run("SameIDOtherOrganization", func(t *testing.T) {
		h := setup(t, open)
		a, b := h.org(""), h.org("")
		wa, wb := h.webhook(a.ID), h.webhook(b.ID)
		ea, eb := event(a.ID, hookd.EventScanCompleted), event(b.ID, hookd.EventScanCompleted)
		ea.ID, eb.ID = "scan-7", "scan-7"
		res := h.publish(ea, eb)
		if !res[0].Created || !res[1].Created || res[1].Event.OrganizationID != b.ID {
			t.Fatalf("same id in two organizations: %+v %+v, want two events", res[0], res[1])
		}
		if len(h.deliveries(wa, "")) != 1 || len(h.deliveries(wb, "")) != 1 {
			t.Fatal("want one delivery for each organization's webhook")
		}
	})
	t.Run("BatchAllOrNothing", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		ok1, bad, ok2 := event(o.ID, hookd.EventScanStarted), event("org_nosuch", hookd.EventScanStarted), event(o.ID, hookd.EventScanCompleted)
		ok1.ID = "first-of-batch"
		_, err := h.s.PublishEvents(h.ctx, []*hookd.Event{ok1, bad, ok2})
		wantCode(t, err, hookd.ENOTFOUND, "organization_id")
		if n := len(h.deliveries(w, "")); n != 0 {
			t.Fatalf("%d deliveries written by a failed batch", n)
		}
		h.wantCounts(0, 0, 0)
		if jobs := h.claim(time.Now().Add(time.Hour), 10, 0); len(jobs) != 0 {
			t.Fatalf("claimed %d deliveries of a failed batch", len(jobs))
		}
		// The first event was not kept either: publishing it again creates it.
		if res := h.publish(ok1)[0]; !res.Created {
			t.Fatal("an event of a failed batch was stored")
		}
	})
	t.Run("LargeBatch", func(t *testing.T) {
		h := setup(t, open)
		partner := h.org("")
		customers := []*hookd.Organization{h.org(partner.ID), h.org(partner.ID), h.org(partner.ID)}
		h.webhook(partner.ID, includeCustomers)
		for _, c := range customers {
			h.webhook(c.ID)
			h.webhook(c.ID, subscribed(hookd.EventScanStarted))
		}
		var events []*hookd.Event
		for i := range 300 {
			typ := hookd.EventScanCompleted
			if i%2 == 0 {
				typ = hookd.EventScanStarted
			}
			events = append(events, event(customers[i%3].ID, typ))
		}
		total := 0
		for i, r := range h.publish(events...) {
			want := 2 // the customer's webhook and the partner's
			if events[i].Type == hookd.EventScanStarted {
				want = 3
			}
			if r.Event.Deliveries != want {
				t.Fatalf("event %d (%s): Deliveries = %d, want %d", i, events[i].Type, r.Event.Deliveries, want)
			}
			total += want
		}
		h.wantCounts(total, 0, 0)
	})
}
