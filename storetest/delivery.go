package storetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

func testPing(t *testing.T, open func(t *testing.T) Store) {
	t.Run("InactiveUnsubscribedWebhook", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID, inactive, subscribed(hookd.EventReportGenerated))
		d, err := h.s.CreatePing(h.ctx, o.ID, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.EventType != hookd.EventPing || d.WebhookID != w.ID || d.OrganizationID != o.ID || d.Status != hookd.DeliveryPending || d.Attempts != 0 {
			t.Fatalf("ping delivery = %+v", d)
		}
		wantNear(t, "CreatedAt", d.CreatedAt)
		if d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(d.CreatedAt) {
			t.Fatalf("NextAttemptAt = %v, want due now (%v)", d.NextAttemptAt, d.CreatedAt)
		}
		found := h.delivery(w, d.ID)
		found.Event, found.AttemptLog = nil, nil
		wantEqual(t, "ping delivery read back", d, found)

		jobs := h.claim(time.Now(), 10, 10)
		if len(jobs) != 1 || jobs[0].DeliveryID != d.ID {
			t.Fatalf("claimed %v, want the ping %s", jobIDs(jobs), d.ID)
		}
		e := jobs[0].Event
		if e.Type != hookd.EventPing || e.OrganizationID != o.ID || e.ID != d.EventID {
			t.Fatalf("ping event = %+v", e)
		}
		var data map[string]any
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatalf("ping data %q is not a JSON object: %v", e.Data, err)
		}
		h.wantCounts(1, 0, 0)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		h := setup(t, open)
		_, err := h.s.CreatePing(h.ctx, h.org("").ID, "wh_nosuch")
		wantCode(t, err, hookd.ENOTFOUND, "")
		h.wantCounts(0, 0, 0)
	})
}

func testDeliveries(t *testing.T, open func(t *testing.T) Store) {
	t.Run("ListPagination", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		other := h.webhook(o.ID)
		var want []string
		for range 5 {
			h.publish(event(o.ID, hookd.EventScanCompleted))
			want = append(want, h.deliveries(w, "")[0].ID)
		}
		slices.Reverse(want)
		if got := deliveryIDs(h.deliveries(w, "")); !slices.Equal(got, want) {
			t.Fatalf("deliveries %v, want newest first %v", got, want)
		}
		var got []string
		after := ""
		for {
			list, next, err := h.s.ListDeliveries(h.ctx, o.ID, w.ID, "", hookd.Page{Limit: 2, After: after})
			if err != nil {
				t.Fatal(err)
			}
			if len(list) == 0 || len(list) > 2 {
				t.Fatalf("page of %d deliveries, want 1–2", len(list))
			}
			got = append(got, deliveryIDs(list)...)
			if next == "" {
				break
			}
			after = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paged deliveries %v, want %v", got, want)
		}
		for _, d := range h.deliveries(other, "") {
			if slices.Contains(want, d.ID) {
				t.Fatalf("delivery %s of %s listed under %s", d.ID, w.ID, other.ID)
			}
		}
	})
	t.Run("StatusFilter", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted),
			event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		jobs := h.claim(now, 10, 0)
		if len(jobs) != 5 {
			t.Fatalf("claimed %d, want 5", len(jobs))
		}
		h.complete(delivered(jobs[0], now), delivered(jobs[1], now), failed(jobs[2], now), retryAt(jobs[3], now, now.Add(time.Hour)))
		if err := h.s.ReleaseJobs(h.ctx, jobs[4:]); err != nil {
			t.Fatal(err)
		}
		for status, want := range map[hookd.DeliveryStatus][]string{
			hookd.DeliveryDelivered: newestFirst(jobs[0].DeliveryID, jobs[1].DeliveryID),
			hookd.DeliveryFailed:    {jobs[2].DeliveryID},
			hookd.DeliveryPending:   newestFirst(jobs[3].DeliveryID, jobs[4].DeliveryID),
		} {
			list := h.deliveries(w, status)
			if got := deliveryIDs(list); !slices.Equal(got, want) {
				t.Fatalf("%s deliveries %v, want %v", status, got, want)
			}
			// A filtered list pages too.
			page, next, err := h.s.ListDeliveries(h.ctx, o.ID, w.ID, status, hookd.Page{Limit: 1})
			if err != nil || len(page) != 1 || page[0].ID != want[0] || (next == "") != (len(want) == 1) {
				t.Fatalf("%s page 1: %v next %q err %v", status, deliveryIDs(page), next, err)
			}
			if next != "" {
				page, next, err = h.s.ListDeliveries(h.ctx, o.ID, w.ID, status, hookd.Page{Limit: 1, After: next})
				if err != nil || len(page) != 1 || page[0].ID != want[1] || next != "" {
					t.Fatalf("%s page 2: %v next %q err %v", status, deliveryIDs(page), next, err)
				}
			}
		}
		if n := len(h.deliveries(w, "")); n != 5 {
			t.Fatalf("unfiltered: %d deliveries, want 5", n)
		}
	})
	t.Run("Find", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		res := h.publish(event(o.ID, hookd.EventScanCompleted))[0]
		listed := h.deliveries(w, "")[0]
		d := h.delivery(w, listed.ID)
		wantEqual(t, "event of the delivery", res.Event, d.Event)
		if len(d.AttemptLog) != 0 {
			t.Fatalf("AttemptLog = %v before any attempt", d.AttemptLog)
		}
		d.Event, d.AttemptLog = nil, nil
		wantEqual(t, "found delivery", listed, d)
	})
	t.Run("FindErrNotFound", func(t *testing.T) {
		h := setup(t, open)
		o, intruder := h.org(""), h.org("")
		w, sibling := h.webhook(o.ID), h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		id := h.deliveries(w, "")[0].ID
		for name, args := range map[string][3]string{
			"other organization": {intruder.ID, w.ID, id},
			"other webhook":      {o.ID, sibling.ID, id},
			"unknown delivery":   {o.ID, w.ID, "dlv_nosuch"},
		} {
			_, err := h.s.FindDelivery(h.ctx, args[0], args[1], args[2])
			if hookd.ErrorCode(err) != hookd.ENOTFOUND {
				t.Fatalf("FindDelivery, %s: %v, want %s", name, err, hookd.ENOTFOUND)
			}
			_, err = h.s.Redeliver(h.ctx, args[0], args[1], args[2])
			if hookd.ErrorCode(err) != hookd.ENOTFOUND {
				t.Fatalf("Redeliver, %s: %v, want %s", name, err, hookd.ENOTFOUND)
			}
		}
		_, _, err := h.s.ListDeliveries(h.ctx, o.ID, "wh_nosuch", "", hookd.Page{Limit: 10})
		wantCode(t, err, hookd.ENOTFOUND, "")
	})
}

func testRedeliver(t *testing.T, open func(t *testing.T) Store) {
	t.Run("FreshRound", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		j1 := h.claim(now, 1, 1)[0]
		h.complete(retryAt(j1, now, now.Add(time.Second)))
		j2 := h.claim(now.Add(time.Second), 1, 1)[0]
		if j2.Attempt != 2 || j2.RoundStart != 0 || j2.Retry() != 1 {
			t.Fatalf("second attempt: Attempt %d RoundStart %d", j2.Attempt, j2.RoundStart)
		}
		h.complete(failed(j2, now.Add(time.Second)))
		h.wantCounts(0, 0, 1)

		d, err := h.s.Redeliver(h.ctx, o.ID, w.ID, j1.DeliveryID)
		if err != nil {
			t.Fatal(err)
		}
		if d.ID != j1.DeliveryID || d.Status != hookd.DeliveryPending || d.Attempts != 2 || d.RoundStart != 2 || d.NextAttemptAt == nil {
			t.Fatalf("redelivered: %+v, want pending, Attempts 2, RoundStart 2, due", d)
		}
		wantNear(t, "NextAttemptAt", *d.NextAttemptAt)
		found := h.delivery(w, d.ID)
		if len(found.AttemptLog) != 2 {
			t.Fatalf("redelivery lost the attempt log: %d attempts", len(found.AttemptLog))
		}
		found.Event, found.AttemptLog = nil, nil
		wantEqual(t, "redelivered delivery read back", d, found)
		h.wantCounts(1, 0, 0)

		j3 := h.claim(time.Now(), 1, 1)
		if len(j3) != 1 || j3[0].DeliveryID != d.ID || j3[0].Attempt != 3 || j3[0].RoundStart != 2 || j3[0].Retry() != 0 {
			t.Fatalf("claim after redeliver: %+v, want attempt 3 opening round 2", j3)
		}
	})
	t.Run("Delivered", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		j := h.claim(now, 1, 1)[0]
		h.complete(delivered(j, now))
		if _, err := h.s.Redeliver(h.ctx, o.ID, w.ID, j.DeliveryID); err != nil {
			t.Fatal(err)
		}
		h.wantCounts(1, 0, 0)
		if jobs := h.claim(time.Now(), 1, 1); len(jobs) != 1 || jobs[0].Attempt != 2 {
			t.Fatalf("claim after redelivering a delivered delivery: %+v", jobs)
		}
	})
	t.Run("ClearsLease", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		old := h.claim(now, 1, 1)[0]
		if _, err := h.s.Redeliver(h.ctx, o.ID, w.ID, old.DeliveryID); err != nil {
			t.Fatal(err)
		}
		// Claimable again at once, though the old lease has not expired and
		// the cap of one per webhook would count it.
		jobs := h.claim(time.Now(), 1, 1)
		if len(jobs) != 1 || jobs[0].DeliveryID != old.DeliveryID || jobs[0].Lease == old.Lease {
			t.Fatalf("claim after redeliver: %+v", jobs)
		}
	})
}

func testCountDeliveries(t *testing.T, open func(t *testing.T) Store) {
	t.Run("Empty", func(t *testing.T) {
		h := setup(t, open)
		h.wantCounts(0, 0, 0)
	})
	t.Run("FollowsEveryChange", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w, doomed := h.webhook(o.ID), h.webhook(o.ID)
		for range 3 {
			h.publish(event(o.ID, hookd.EventScanCompleted))
		}
		h.wantCounts(6, 0, 0)
		now := time.Now()
		var mine []*hookd.Job
		for _, j := range h.claim(now, 10, 0) {
			if j.WebhookID == w.ID {
				mine = append(mine, j)
			} else if err := h.s.CompleteAttempts(h.ctx, []*hookd.AttemptResult{failed(j, now)}); err != nil {
				t.Fatal(err)
			}
		}
		h.wantCounts(3, 0, 3)
		h.complete(delivered(mine[0], now), failed(mine[1], now), retryAt(mine[2], now, now.Add(time.Minute)))
		h.wantCounts(1, 1, 4)
		// A stale result changes nothing.
		h.complete(delivered(mine[0], now))
		h.wantCounts(1, 1, 4)
		if _, err := h.s.Redeliver(h.ctx, o.ID, w.ID, mine[1].DeliveryID); err != nil {
			t.Fatal(err)
		}
		h.wantCounts(2, 1, 3)
		if err := h.s.DeleteWebhook(h.ctx, o.ID, doomed.ID); err != nil {
			t.Fatal(err)
		}
		h.wantCounts(2, 1, 0)
		if _, err := h.s.CreatePing(h.ctx, o.ID, w.ID); err != nil {
			t.Fatal(err)
		}
		h.wantCounts(3, 1, 0)
	})
}
