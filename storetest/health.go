package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// testHealth checks endpoint health under the default policy (Run's stores
// are opened without one): 20 failed deliveries in a row, or 24 h of
// failures, disable a webhook.
func testHealth(t *testing.T, open func(t *testing.T) Store) {
	maxFails := hookd.DefaultMaxConsecutiveFailures

	t.Run("ConsecutiveFailuresDisable", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w, other := h.webhook(o.ID), h.webhook(o.ID, subscribed(hookd.EventReportGenerated))
		// Two more deliveries than the rule needs: they are pending, and
		// leased, when the webhook is disabled.
		jobs := h.failingRun(w, maxFails+2, maxFails-1, time.Now())
		if got := h.find(w); !got.Active || got.ConsecutiveFailures != maxFails-1 || got.DisabledReason != "" {
			t.Fatalf("after %d failed deliveries: active %v, count %d, reason %q; want active, %d, no reason",
				maxFails-1, got.Active, got.ConsecutiveFailures, got.DisabledReason, maxFails-1)
		}
		h.complete(failed(jobs[maxFails-1], time.Now()))

		got := h.find(w)
		want := "disabled automatically after 20 consecutive failed deliveries; last attempt: HTTP 500"
		if got.Active || got.DisabledReason != want {
			t.Fatalf("after %d failed deliveries: active %v, reason %q; want inactive, %q", maxFails, got.Active, got.DisabledReason, want)
		}
		wantNear(t, "DisabledAt", got.DisabledAt)
		wantTime(t, "FailingSince", got.FailingSince)
		if got.UpdatedAt.Before(got.DisabledAt) {
			t.Fatalf("UpdatedAt %v is before DisabledAt %v", got.UpdatedAt, got.DisabledAt)
		}
		list, _, err := h.s.ListWebhooks(h.ctx, o.ID, hookd.Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range list {
			if l.ID == w.ID {
				wantEqual(t, "listed webhook", got, l)
			}
		}
		if o := h.find(other); !o.Active || o.DisabledReason != "" {
			t.Fatalf("the organization's other webhook changed: %+v", o)
		}

		// The two pending deliveries failed, unattempted, without a lease:
		// no claim takes them, and the results of the jobs that held them
		// are logged but move nothing.
		h.wantCounts(0, 0, maxFails+2)
		if jobs := h.claim(time.Now().Add(time.Hour), 100, 0); len(jobs) != 0 {
			t.Fatalf("claimed %v after disabling", jobIDs(jobs))
		}
		h.complete(delivered(jobs[maxFails], time.Now()), retryAt(jobs[maxFails+1], time.Now(), time.Now()))
		for _, j := range jobs[maxFails:] {
			d := h.delivery(w, j.DeliveryID)
			if d.Status != hookd.DeliveryFailed || d.NextAttemptAt != nil || d.Attempts != 0 || len(d.AttemptLog) != 1 {
				t.Fatalf("delivery %s after a stale result: status %s, next %v, attempts %d, log %d; want failed, none, 0, 1",
					d.ID, d.Status, d.NextAttemptAt, d.Attempts, len(d.AttemptLog))
			}
		}
		h.wantCounts(0, 0, maxFails+2)
		if after := h.find(w); !after.DisabledAt.Equal(got.DisabledAt) || after.DisabledReason != want {
			t.Fatalf("a stale success changed the disabled webhook: %+v", after)
		}

		// An inactive webhook receives no new event.
		if res := h.publish(event(o.ID, hookd.EventScanCompleted)); res[0].Event.Deliveries != 0 {
			t.Fatalf("publishing after disabling made %d deliveries, want 0", res[0].Event.Deliveries)
		}
	})

	t.Run("SuccessResetsCount", func(t *testing.T) {
		h := setup(t, open)
		w := h.webhook(h.org("").ID)
		jobs := h.failingRun(w, 2*maxFails-1, maxFails-1, time.Now())
		h.complete(delivered(jobs[maxFails-1], time.Now()))
		if got := h.find(w); got.ConsecutiveFailures != 0 || !got.FailingSince.IsZero() {
			t.Fatalf("after a success: count %d, failing since %v; want 0, zero", got.ConsecutiveFailures, got.FailingSince)
		}
		var results []*hookd.AttemptResult
		for _, j := range jobs[maxFails:] {
			results = append(results, failed(j, time.Now()))
		}
		h.complete(results...)
		if got := h.find(w); !got.Active || got.ConsecutiveFailures != maxFails-1 || !got.DisabledAt.IsZero() {
			t.Fatalf("after %d failures, a success, %d failures: active %v, count %d, disabled at %v; want active, %d",
				maxFails-1, maxFails-1, got.Active, got.ConsecutiveFailures, got.DisabledAt, maxFails-1)
		}
	})

	t.Run("FailingForWindowDisables", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		t0 := time.Now().UTC().Truncate(time.Millisecond)
		// Retries, never ending the delivery: only the window can disable.
		at := t0
		for _, d := range []time.Duration{0, time.Hour, hookd.DefaultMaxFailingFor - time.Millisecond} {
			at = t0.Add(d)
			jobs := h.claim(at, 1, 0)
			if len(jobs) != 1 {
				t.Fatalf("claim at %v: %d jobs, want 1", at, len(jobs))
			}
			h.complete(retryAt(jobs[0], at, at.Add(time.Millisecond)))
		}
		got := h.find(w)
		if !got.Active || !got.FailingSince.Equal(t0) || got.ConsecutiveFailures != 0 {
			t.Fatalf("failing for 1 ms less than the window: active %v, since %v, count %d; want active, %v, 0",
				got.Active, got.FailingSince, got.ConsecutiveFailures, t0)
		}
		at = t0.Add(hookd.DefaultMaxFailingFor)
		jobs := h.claim(at, 1, 0)
		if len(jobs) != 1 {
			t.Fatalf("claim at %v: %d jobs, want 1", at, len(jobs))
		}
		h.complete(retryAt(jobs[0], at, at.Add(time.Minute)))
		got = h.find(w)
		want := "disabled automatically: failing continuously since " + t0.Format(time.RFC3339) + " (24h); last attempt: HTTP 503"
		if got.Active || got.DisabledReason != want {
			t.Fatalf("failing for the window: active %v, reason %q; want inactive, %q", got.Active, got.DisabledReason, want)
		}
		if d := h.deliveries(w, ""); d[0].Status != hookd.DeliveryFailed || d[0].NextAttemptAt != nil {
			t.Fatalf("the retrying delivery is %s, next %v; want failed, none", d[0].Status, d[0].NextAttemptAt)
		}
		h.wantCounts(0, 0, 1)
	})

	t.Run("StaleResultsDoNotCount", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		jobs := h.claim(time.Now(), 1, 0)
		if _, err := h.s.Redeliver(h.ctx, o.ID, w.ID, jobs[0].DeliveryID); err != nil {
			t.Fatal(err)
		}
		h.complete(failed(jobs[0], time.Now()))
		if got := h.find(w); got.ConsecutiveFailures != 0 || !got.FailingSince.IsZero() {
			t.Fatalf("a result of a stale lease counted: count %d, since %v", got.ConsecutiveFailures, got.FailingSince)
		}
	})

	t.Run("EnableClearsReasonAndCount", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		h.disable(w)
		got, n, err := h.s.EnableWebhook(h.ctx, o.ID, w.ID, false)
		if err != nil {
			t.Fatalf("EnableWebhook: %v", err)
		}
		if !got.Active || got.DisabledReason != "" || !got.DisabledAt.IsZero() || got.ConsecutiveFailures != 0 || !got.FailingSince.IsZero() || n != 0 {
			t.Fatalf("EnableWebhook = %+v, %d; want active, no reason, health afresh, 0 redelivered", got, n)
		}
		wantNear(t, "UpdatedAt", got.UpdatedAt)
		wantEqual(t, "webhook as read", got, h.find(w))
		h.wantCounts(0, 0, maxFails)
		if res := h.publish(event(o.ID, hookd.EventScanCompleted)); res[0].Event.Deliveries != 1 {
			t.Fatalf("the enabled webhook got %d deliveries, want 1", res[0].Event.Deliveries)
		}

		// Enabling an enabled webhook changes nothing else, and has no
		// failures of a disabled period to redeliver.
		if _, n, err := h.s.EnableWebhook(h.ctx, o.ID, w.ID, true); err != nil || n != 0 {
			t.Fatalf("EnableWebhook of an enabled webhook = %d, %v; want 0, nil", n, err)
		}
		h.wantCounts(1, 0, maxFails)
	})

	t.Run("UpdateToActiveEnables", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		h.disable(w)
		renamed, err := h.s.UpdateWebhook(h.ctx, o.ID, w.ID, func(w *hookd.Webhook) error {
			w.Name = "Renamed"
			w.ConsecutiveFailures, w.DisabledReason = 0, "" // not the caller's to change
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if renamed.Active || renamed.DisabledReason == "" || renamed.ConsecutiveFailures != maxFails {
			t.Fatalf("an update that leaves it inactive enabled it: %+v", renamed)
		}
		wantEqual(t, "webhook as read", renamed, h.find(w))
		got, err := h.s.UpdateWebhook(h.ctx, o.ID, w.ID, func(w *hookd.Webhook) error { w.Active = true; return nil })
		if err != nil {
			t.Fatal(err)
		}
		if !got.Active || got.DisabledReason != "" || !got.DisabledAt.IsZero() || got.ConsecutiveFailures != 0 || !got.FailingSince.IsZero() {
			t.Fatalf("after an update to active: %+v; want enabled afresh", got)
		}
		wantEqual(t, "webhook as read", got, h.find(w))
	})

	t.Run("RedeliverFailedWhileDown", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w, other := h.webhook(o.ID), h.webhook(o.ID, subscribed(hookd.EventReportGenerated))
		// Before the run of failures: one delivery fails for good, one
		// fails an attempt and waits for its retry, one succeeds (which
		// ends the earlier run).
		h.publish(event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted),
			event(o.ID, hookd.EventReportGenerated))
		jobs := h.claim(time.Now(), 10, 0)
		if len(jobs) != 4 {
			t.Fatalf("claimed %d, want 4", len(jobs))
		}
		byHook := map[string][]*hookd.Job{}
		for _, j := range jobs {
			byHook[j.WebhookID] = append(byHook[j.WebhookID], j)
		}
		old, waiting, ok := byHook[w.ID][0], byHook[w.ID][1], byHook[w.ID][2]
		start := time.Now()
		h.complete(failed(old, start), retryAt(waiting, start, start.Add(time.Hour)), delivered(ok, start),
			failed(byHook[other.ID][0], start))
		if got := h.find(w); got.ConsecutiveFailures != 0 {
			t.Fatalf("count %d after a success, want 0", got.ConsecutiveFailures)
		}

		// The run that disables it begins strictly after those deliveries
		// were created and attempted.
		nextMillisecond(start)
		h.disable(w)
		h.wantCounts(0, 1, maxFails+3)

		// Another organization's id, and unknown ids, change nothing.
		intruder := h.org("")
		for _, c := range []struct{ org, id string }{{intruder.ID, w.ID}, {o.ID, "wh_unknown"}, {o.ID, other.ID + "x"}, {"", w.ID}} {
			_, _, err := h.s.EnableWebhook(h.ctx, c.org, c.id, true)
			wantCode(t, err, hookd.ENOTFOUND, "")
		}
		if got := h.find(w); got.Active || got.DisabledReason == "" {
			t.Fatalf("a refused EnableWebhook enabled the webhook: %+v", got)
		}
		h.wantCounts(0, 1, maxFails+3)

		got, n, err := h.s.EnableWebhook(h.ctx, o.ID, w.ID, true)
		if err != nil {
			t.Fatalf("EnableWebhook: %v", err)
		}
		if !got.Active || got.DisabledReason != "" || n != maxFails+1 {
			t.Fatalf("EnableWebhook = active %v, reason %q, %d redelivered; want active, none, %d (the run and the waiting retry)",
				got.Active, got.DisabledReason, n, maxFails+1)
		}
		h.wantCounts(maxFails+1, 1, 2)
		for _, d := range h.deliveries(w, "") {
			want := hookd.DeliveryPending
			switch d.ID {
			case old.DeliveryID:
				want = hookd.DeliveryFailed // failed before the run began
			case ok.DeliveryID:
				want = hookd.DeliveryDelivered
			}
			if d.Status != want {
				t.Fatalf("delivery %s is %s, want %s", d.ID, d.Status, want)
			}
			if want == hookd.DeliveryPending && (d.RoundStart != d.Attempts || d.NextAttemptAt == nil) {
				t.Fatalf("redelivered %s: round start %d, attempts %d, next %v; want a fresh round, due", d.ID, d.RoundStart, d.Attempts, d.NextAttemptAt)
			}
		}
		if d := h.deliveries(other, ""); d[0].Status != hookd.DeliveryFailed {
			t.Fatalf("another webhook's failed delivery is %s, want failed", d[0].Status)
		}
		again := h.claim(time.Now(), 100, 0)
		if len(again) != maxFails+1 {
			t.Fatalf("claimed %d after redelivering, want %d", len(again), maxFails+1)
		}
		for _, j := range again {
			if j.WebhookID != w.ID || j.Retry() != 0 {
				t.Fatalf("claimed %+v, want first attempts of a fresh round of %s", j, w.ID)
			}
		}
	})

	t.Run("PingReachesDisabledWebhook", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		h.disable(w)
		before := h.find(w)
		d, err := h.s.CreatePing(h.ctx, o.ID, w.ID)
		if err != nil {
			t.Fatalf("CreatePing on a disabled webhook: %v", err)
		}
		jobs := h.claim(time.Now(), 10, 0)
		if len(jobs) != 1 || jobs[0].DeliveryID != d.ID {
			t.Fatalf("claimed %v, want the ping %s", jobIDs(jobs), d.ID)
		}
		h.complete(delivered(jobs[0], time.Now()))
		if got := h.delivery(w, d.ID); got.Status != hookd.DeliveryDelivered {
			t.Fatalf("ping is %s, want delivered", got.Status)
		}
		// A success shows the endpoint is back; enabling stays the owner's
		// call, and the failures of the run stay known for it.
		after := h.find(w)
		if after.Active || after.DisabledReason != before.DisabledReason || !after.DisabledAt.Equal(before.DisabledAt) ||
			after.ConsecutiveFailures != before.ConsecutiveFailures || !after.FailingSince.Equal(before.FailingSince) {
			t.Fatalf("a successful ping changed the disabled webhook:\nbefore %+v\nafter  %+v", before, after)
		}
	})
}

// RunHealthPolicies checks that a store applies the policy it is opened
// with: open returns a fresh, empty store with that policy.
func RunHealthPolicies(t *testing.T, open func(t *testing.T, p hookd.HealthPolicy) Store) {
	t.Run("Off", func(t *testing.T) {
		h := setup(t, func(t *testing.T) Store { return open(t, hookd.HealthPolicy{}) })
		w := h.webhook(h.org("").ID)
		start := time.Now().Add(-48 * time.Hour)
		jobs := h.failingRun(w, 30, 29, start)
		h.complete(failed(jobs[29], time.Now()))
		if got := h.find(w); !got.Active || got.ConsecutiveFailures != 30 || got.DisabledReason != "" {
			t.Fatalf("with both rules off, after 30 failures over 48 h: active %v, count %d, reason %q; want active, 30, none",
				got.Active, got.ConsecutiveFailures, got.DisabledReason)
		}
	})
	t.Run("ThreeFailures", func(t *testing.T) {
		h := setup(t, func(t *testing.T) Store {
			return open(t, hookd.HealthPolicy{MaxConsecutiveFailures: 3, MaxFailingFor: 0})
		})
		w := h.webhook(h.org("").ID)
		h.failingRun(w, 3, 2, time.Now().Add(-48*time.Hour))
		if got := h.find(w); !got.Active {
			t.Fatalf("disabled after 2 failures over 48 h with the window rule off: %q", got.DisabledReason)
		}
		h.failingRun(w, 1, 1, time.Now())
		if got := h.find(w); got.Active || !strings.HasPrefix(got.DisabledReason, "disabled automatically after 3 consecutive failed deliveries") {
			t.Fatalf("after 3 failures: active %v, reason %q", got.Active, got.DisabledReason)
		}
	})
}

// failingRun publishes n events to w (its only receiver), claims them and
// completes the first fail of them as failed deliveries whose attempts
// start at start; it returns the jobs, in the order of publishing.
func (h *harness) failingRun(w *hookd.Webhook, n, fail int, start time.Time) []*hookd.Job {
	h.t.Helper()
	events := make([]*hookd.Event, n)
	for i := range events {
		events[i] = event(w.OrganizationID, hookd.EventScanCompleted)
	}
	h.publish(events...)
	jobs := h.claim(time.Now(), 1000, 0)
	mine := jobs[:0]
	for _, j := range jobs {
		if j.WebhookID == w.ID {
			mine = append(mine, j)
		}
	}
	if len(mine) != n {
		h.t.Fatalf("claimed %d deliveries of %s, want %d", len(mine), w.ID, n)
	}
	results := make([]*hookd.AttemptResult, fail)
	for i := range results {
		results[i] = failed(mine[i], start)
	}
	h.complete(results...)
	return mine
}

// disable disables w by the default policy's count rule.
func (h *harness) disable(w *hookd.Webhook) {
	h.t.Helper()
	h.failingRun(w, hookd.DefaultMaxConsecutiveFailures, hookd.DefaultMaxConsecutiveFailures, time.Now())
	if got := h.find(w); got.Active || got.DisabledReason == "" {
		h.t.Fatalf("webhook not disabled after %d failed deliveries: %+v", hookd.DefaultMaxConsecutiveFailures, got)
	}
}

// find reads w back.
func (h *harness) find(w *hookd.Webhook) *hookd.Webhook {
	h.t.Helper()
	got, err := h.s.FindWebhook(h.ctx, w.OrganizationID, w.ID)
	if err != nil {
		h.t.Fatalf("FindWebhook: %v", err)
	}
	return got
}

// nextMillisecond returns once the clock has passed the millisecond of t,
// so that times the store takes from now on are later than t as stored.
func nextMillisecond(t time.Time) {
	for !time.Now().Truncate(time.Millisecond).After(t.Truncate(time.Millisecond)) {
		time.Sleep(time.Millisecond)
	}
}
