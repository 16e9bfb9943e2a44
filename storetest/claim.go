package storetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// perWebhook counts jobs by webhook.
func perWebhook(jobs []*hookd.Job) map[string]int {
	m := map[string]int{}
	for _, j := range jobs {
		m[j.WebhookID]++
	}
	return m
}

func testClaim(t *testing.T, open func(t *testing.T) Store) {
	t.Run("Job", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		res := h.publish(event(o.ID, hookd.EventScanCompleted))[0]
		now := time.Now()
		until := now.Add(30 * time.Second)
		jobs := h.claimUntil(now, until, 10, 10)
		if len(jobs) != 1 {
			t.Fatalf("claimed %d jobs, want 1", len(jobs))
		}
		j := jobs[0]
		want := &hookd.Job{
			DeliveryID: h.deliveries(w, "")[0].ID, WebhookID: w.ID, URL: w.URL, Secret: w.Secret, Event: res.Event,
			Attempt: 1, RoundStart: 0, Lease: j.Lease, LeaseUntil: until.UTC().Truncate(time.Millisecond),
		}
		wantEqual(t, "job", want, j)
		wantTime(t, "LeaseUntil", j.LeaseUntil)
		if j.Lease == "" {
			t.Fatal("job without a lease token")
		}
		if !json.Valid(j.Event.Payload(j.WebhookID)) {
			t.Fatalf("payload %s is not JSON", j.Event.Payload(j.WebhookID))
		}
	})
	t.Run("NoSecret", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID, noSecret)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		if j := h.claim(time.Now(), 1, 1)[0]; j.Secret != "" {
			t.Fatalf("Secret = %q, want none", j.Secret)
		}
	})
	t.Run("TraceParent", func(t *testing.T) {
		// The publisher's trace context travels with the event to the
		// attempt, which may run in another process; without one, none.
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		traced := event(o.ID, hookd.EventScanCompleted)
		traced.TraceParent = tp
		h.publish(traced)
		h.publish(event(o.ID, hookd.EventScanStarted))
		got := map[string]string{}
		for _, j := range h.claim(time.Now(), 10, 10) {
			got[j.Event.Type] = j.Event.TraceParent
		}
		want := map[string]string{hookd.EventScanCompleted: tp, hookd.EventScanStarted: ""}
		if !maps.Equal(got, want) {
			t.Fatalf("TraceParent by event type = %v, want %v", got, want)
		}
	})
	t.Run("DueOnly", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		res := h.publish(event(o.ID, hookd.EventScanCompleted))[0]
		if jobs := h.claim(res.Event.CreatedAt.Add(-time.Second), 10, 10); len(jobs) != 0 {
			t.Fatalf("claimed %d deliveries before they were due", len(jobs))
		}
		now := time.Now()
		j := h.claim(now, 10, 10)[0]
		next := now.Add(time.Hour)
		h.complete(retryAt(j, now, next))
		if jobs := h.claim(next.Add(-time.Millisecond), 10, 10); len(jobs) != 0 {
			t.Fatalf("claimed a retry %v before its time", jobs[0].DeliveryID)
		}
		if jobs := h.claim(next, 10, 10); len(jobs) != 1 || jobs[0].Attempt != 2 {
			t.Fatalf("claim at the retry time: %+v, want attempt 2", jobs)
		}
	})
	t.Run("LeaseExclusive", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanStarted))
		now := time.Now()
		until := now.Add(time.Minute)
		jobs := h.claimUntil(now, until, 10, 0)
		if len(jobs) != 4 {
			t.Fatalf("claimed %d, want 4", len(jobs))
		}
		leases := map[string]bool{}
		for _, j := range jobs {
			if leases[j.Lease] {
				t.Fatalf("lease token %q handed out twice", j.Lease)
			}
			leases[j.Lease] = true
		}
		for _, at := range []time.Time{now, until.Add(-time.Millisecond)} {
			if again := h.claim(at, 10, 0); len(again) != 0 {
				t.Fatalf("claimed %v again at %v while leased until %v", jobIDs(again), at, until)
			}
		}
	})
	t.Run("ExpiredLeaseReclaimed", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		first := h.claimUntil(now, now.Add(50*time.Millisecond), 10, 10)[0]
		again := h.claim(now.Add(100*time.Millisecond), 10, 10)
		if len(again) != 1 || again[0].DeliveryID != first.DeliveryID {
			t.Fatalf("after the lease expired, claimed %v, want %s", jobIDs(again), first.DeliveryID)
		}
		if again[0].Lease == first.Lease || again[0].Attempt != 1 {
			t.Fatalf("reclaimed job: lease %q (was %q), attempt %d; want a new lease, attempt 1", again[0].Lease, first.Lease, again[0].Attempt)
		}
	})
	t.Run("LeasesExpireEachAtItsTime", func(t *testing.T) {
		// A short lease taken before a long one of the same webhook still
		// expires at its own time.
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		short := h.claimUntil(now, now.Add(50*time.Millisecond), 1, 0)
		h.claimUntil(now, now.Add(time.Hour), 1, 0)
		if again := h.claim(now.Add(100*time.Millisecond), 10, 0); len(again) != 1 || again[0].DeliveryID != short[0].DeliveryID {
			t.Fatalf("after the short lease expired, claimed %v, want %v", jobIDs(again), jobIDs(short))
		}
	})
	t.Run("Limit", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		for range 5 {
			h.publish(event(o.ID, hookd.EventScanCompleted))
		}
		now := time.Now()
		seen := map[string]bool{}
		for _, want := range []int{2, 2, 1, 0} {
			jobs := h.claim(now, 2, 0)
			if len(jobs) != want {
				t.Fatalf("claimed %d, want %d", len(jobs), want)
			}
			for _, j := range jobs {
				if seen[j.DeliveryID] {
					t.Fatalf("delivery %s claimed twice", j.DeliveryID)
				}
				seen[j.DeliveryID] = true
			}
		}
		if jobs := h.claim(now.Add(time.Hour), 0, 0); len(jobs) != 0 {
			t.Fatalf("limit 0 claimed %d", len(jobs))
		}
	})
	t.Run("LimitOverManyWebhooks", func(t *testing.T) {
		// What a claim leaves for lack of room, of any webhook, is the
		// next claim's.
		h := setup(t, open)
		o := h.org("")
		for range 3 {
			h.webhook(o.ID)
		}
		for range 3 {
			h.publish(event(o.ID, hookd.EventScanCompleted))
		}
		now := time.Now()
		seen := map[string]bool{}
		for _, want := range []int{4, 4, 1, 0} {
			jobs := h.claim(now, 4, 0)
			if len(jobs) != want {
				t.Fatalf("after %d claimed: claimed %d, want %d", len(seen), len(jobs), want)
			}
			for _, j := range jobs {
				if seen[j.DeliveryID] {
					t.Fatalf("delivery %s claimed twice", j.DeliveryID)
				}
				seen[j.DeliveryID] = true
			}
		}
	})
	t.Run("OldestDueFirst", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		jobs := h.claim(now, 3, 0)
		offsets := []time.Duration{3 * time.Second, time.Second, 2 * time.Second}
		for i, j := range jobs {
			h.complete(retryAt(j, now, now.Add(offsets[i])))
		}
		later := now.Add(5 * time.Second)
		for _, i := range []int{1, 2, 0} {
			got := h.claim(later, 1, 0)
			if len(got) != 1 || got[0].DeliveryID != jobs[i].DeliveryID {
				t.Fatalf("claimed %v, want %s (due at +%v)", jobIDs(got), jobs[i].DeliveryID, offsets[i])
			}
		}
	})
	t.Run("PerWebhookCap", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		a, b := h.webhook(o.ID), h.webhook(o.ID)
		for range 5 {
			h.publish(event(o.ID, hookd.EventScanCompleted))
		}
		now := time.Now()
		jobs := h.claim(now, 10, 2)
		if n := perWebhook(jobs); len(jobs) != 4 || n[a.ID] != 2 || n[b.ID] != 2 {
			t.Fatalf("claimed %v per webhook, want 2 each", n)
		}
		if again := h.claim(now, 10, 2); len(again) != 0 {
			t.Fatalf("claimed %v per webhook over the cap", perWebhook(again))
		}
		// A finished attempt frees its place.
		for _, j := range jobs {
			if j.WebhookID == a.ID {
				h.complete(delivered(j, now))
				break
			}
		}
		if again := h.claim(now, 10, 2); len(again) != 1 || again[0].WebhookID != a.ID {
			t.Fatalf("after one of A's attempts finished: claimed %v, want one of A", perWebhook(again))
		}
	})
	t.Run("PerWebhookCapCountsUnexpiredLeases", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		a, b := h.webhook(o.ID), h.webhook(o.ID)
		for range 3 {
			h.publish(event(o.ID, hookd.EventScanCompleted))
		}
		now := time.Now()
		h.claimUntil(now, now.Add(50*time.Millisecond), 10, 2)
		if jobs := h.claim(now.Add(10*time.Millisecond), 10, 2); len(jobs) != 0 {
			t.Fatalf("claimed %v per webhook while 2 each were leased", perWebhook(jobs))
		}
		// Expired leases count no more: their deliveries are claimable again.
		jobs := h.claim(now.Add(100*time.Millisecond), 10, 2)
		if n := perWebhook(jobs); n[a.ID] != 2 || n[b.ID] != 2 {
			t.Fatalf("after the leases expired: claimed %v per webhook, want 2 each", n)
		}
	})
	t.Run("CapDoesNotStarveOthers", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		busy := h.webhook(o.ID, subscribed(hookd.EventScanCompleted))
		quiet := h.webhook(o.ID, subscribed(hookd.EventScanFailed))
		var backlog []*hookd.Event
		for range 150 {
			backlog = append(backlog, event(o.ID, hookd.EventScanCompleted))
		}
		h.publish(backlog...)
		time.Sleep(2 * time.Millisecond) // quiet's delivery is due strictly later
		h.publish(event(o.ID, hookd.EventScanFailed))
		now := time.Now()
		jobs := h.claim(now, 10, 3)
		if n := perWebhook(jobs); n[busy.ID] != 3 || n[quiet.ID] != 1 || len(jobs) != 4 {
			t.Fatalf("claimed %v per webhook, want 3 of the backlogged webhook and quiet's one", n)
		}
		if jobs := h.claim(now, 10, 3); len(jobs) != 0 {
			t.Fatalf("claimed %v more over the cap", perWebhook(jobs))
		}
	})
	t.Run("OldestDueFirstAcrossWebhooks", func(t *testing.T) {
		// Due order holds across webhooks, not only within one: a claim
		// that cannot take everything due takes the oldest, whichever
		// webhooks they belong to, with or without a cap.
		for _, perWebhook := range []int{0, 10} {
			t.Run(fmt.Sprint("Cap", perWebhook), func(t *testing.T) {
				h := setup(t, open)
				o := h.org("")
				a := h.webhook(o.ID, subscribed(hookd.EventScanStarted))
				b := h.webhook(o.ID, subscribed(hookd.EventScanCompleted))
				c := h.webhook(o.ID, subscribed(hookd.EventScanFailed))
				var due []string // delivery ids, oldest due first
				for _, w := range []*hookd.Webhook{a, b, a, c, b, a} {
					h.publish(event(o.ID, w.Events[0]))
					due = append(due, h.deliveries(w, "")[0].ID)
					time.Sleep(2 * time.Millisecond) // each due strictly after the one before
				}
				now := time.Now()
				for _, limit := range []int{3, 2, 5} {
					want := due[:min(limit, len(due))]
					due = due[len(want):]
					if got := jobIDs(h.claim(now, limit, perWebhook)); !slices.Equal(newestFirst(got...), newestFirst(want...)) {
						t.Fatalf("claim of %d took %v, want the oldest due %v", limit, got, want)
					}
				}
			})
		}
	})
	t.Run("ServedInTurn", func(t *testing.T) {
		// Many webhooks with work due and claims smaller than their
		// number: the webhooks a claim did not reach are served by the
		// next ones before any webhook gets its next delivery.
		for _, perWebhook := range []int{0, 1} {
			t.Run(fmt.Sprint("Cap", perWebhook), func(t *testing.T) {
				h := setup(t, open)
				o := h.org("")
				var hooks []*hookd.Webhook
				for range 12 {
					hooks = append(hooks, h.webhook(o.ID))
				}
				const rounds = 3
				round := map[string]int{} // delivery id → the event it is of
				for r := range rounds {
					h.publish(event(o.ID, hookd.EventScanCompleted))
					for _, w := range hooks {
						round[h.deliveries(w, "")[0].ID] = r
					}
					time.Sleep(2 * time.Millisecond)
				}
				now, before := time.Now(), 0 // before: the latest event served so far
				for len(round) > 0 {
					jobs := h.claim(now, 5, perWebhook)
					if want := min(5, len(round)); len(jobs) != want {
						t.Fatalf("with %d left: claimed %d, want %d", len(round), len(jobs), want)
					}
					latest := before
					for _, j := range jobs {
						r, ok := round[j.DeliveryID]
						if !ok {
							t.Fatalf("claimed %s twice or out of nowhere", j.DeliveryID)
						}
						if r < before {
							t.Fatalf("with %d left: claimed a delivery of event %d after one of event %d", len(round), r, before)
						}
						latest = max(latest, r)
						delete(round, j.DeliveryID)
						h.complete(delivered(j, now))
					}
					before = latest
				}
			})
		}
	})
	t.Run("NewWorkClaimableAtOnce", func(t *testing.T) {
		// Whatever makes a delivery claimable (a publish, a ping, a retry
		// coming due, a redelivery, a release) counts at the next claim,
		// also after claims that found nothing more to take.
		h := setup(t, open)
		o := h.org("")
		busy := h.webhook(o.ID, subscribed(hookd.EventScanCompleted))
		quiet := h.webhook(o.ID, subscribed(hookd.EventScanFailed))
		var backlog []*hookd.Event
		for range 20 {
			backlog = append(backlog, event(o.ID, hookd.EventScanCompleted))
		}
		h.publish(backlog...)
		claim := func(at time.Time, want ...string) *hookd.Job {
			t.Helper()
			jobs := h.claim(at, 10, 2)
			if got := jobIDs(jobs); !slices.Equal(newestFirst(got...), newestFirst(want...)) {
				t.Fatalf("claimed %v, want %v", got, want)
			}
			if len(jobs) == 0 {
				return nil
			}
			return jobs[0]
		}
		if n := perWebhook(h.claim(time.Now(), 10, 2)); n[busy.ID] != 2 || len(n) != 1 {
			t.Fatalf("first claim: %v per webhook, want 2 of the backlog", n)
		}
		claim(time.Now()) // the backlog's webhook is at its cap

		h.publish(event(o.ID, hookd.EventScanFailed))
		published := claim(time.Now(), h.deliveries(quiet, "")[0].ID)

		ping, err := h.s.CreatePing(h.ctx, o.ID, quiet.ID)
		if err != nil {
			t.Fatal(err)
		}
		pinged := claim(time.Now(), ping.ID)

		// A retry due long before the lease it replaces would have expired.
		now := time.Now()
		h.complete(retryAt(published, now, now.Add(time.Second)))
		claim(now)
		claim(now.Add(time.Second), published.DeliveryID)

		h.complete(delivered(pinged, now))
		if _, err := h.s.Redeliver(h.ctx, o.ID, quiet.ID, ping.ID); err != nil {
			t.Fatal(err)
		}
		again := claim(time.Now().Add(time.Second), ping.ID)
		if err := h.s.ReleaseJobs(h.ctx, []*hookd.Job{again}); err != nil {
			t.Fatal(err)
		}
		claim(time.Now().Add(time.Second), ping.ID)
	})
	t.Run("NoCap", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		for range 4 {
			h.publish(event(o.ID, hookd.EventScanCompleted))
		}
		if jobs := h.claim(time.Now(), 10, 0); len(jobs) != 4 {
			t.Fatalf("perWebhook 0 claimed %d, want all 4", len(jobs))
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		for range 3 {
			h.webhook(o.ID)
		}
		var events []*hookd.Event
		for range 20 {
			events = append(events, event(o.ID, hookd.EventScanCompleted))
		}
		h.publish(events...)
		now := time.Now()
		var (
			mu   sync.Mutex
			got  []string
			wg   sync.WaitGroup
			errs = make(chan error, 4)
		)
		for range 4 {
			wg.Go(func() {
				for {
					jobs, err := h.s.ClaimDeliveries(h.ctx, now, now.Add(time.Minute), 7, 0)
					if err != nil {
						errs <- err
						return
					}
					if len(jobs) == 0 {
						return
					}
					mu.Lock()
					got = append(got, jobIDs(jobs)...)
					over := len(got) > 60 // a broken store may hand deliveries out forever
					mu.Unlock()
					if over {
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		slices.Sort(got)
		if len(got) != 60 || len(slices.Compact(got)) != 60 {
			t.Fatalf("concurrent claims got %d deliveries (%d distinct), want 60 once each", len(got), len(slices.Compact(got)))
		}
	})
}

func testComplete(t *testing.T, open func(t *testing.T) Store) {
	// one publishes one event to a new webhook and claims its delivery.
	one := func(h *harness) (*hookd.Webhook, *hookd.Job, time.Time) {
		h.t.Helper()
		o := h.org("")
		w := h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		return w, h.claim(now, 1, 1)[0], now
	}
	t.Run("Delivered", func(t *testing.T) {
		h := setup(t, open)
		w, j, now := one(h)
		r := delivered(j, now.Add(time.Millisecond))
		h.complete(r)
		d := h.delivery(w, j.DeliveryID)
		code := 200
		if d.Status != hookd.DeliveryDelivered || d.Attempts != 1 || d.NextAttemptAt != nil ||
			d.LastAttemptAt == nil || !d.LastAttemptAt.Equal(r.Attempt.StartedAt) || d.LastStatusCode == nil || *d.LastStatusCode != code {
			t.Fatalf("delivery after success = %+v", d)
		}
		wantEqual(t, "attempt log", []*hookd.Attempt{&r.Attempt}, d.AttemptLog)
		wantTime(t, "attempt StartedAt", d.AttemptLog[0].StartedAt)
		if jobs := h.claim(now.Add(time.Hour), 10, 0); len(jobs) != 0 {
			t.Fatalf("claimed a delivered delivery: %v", jobIDs(jobs))
		}
	})
	t.Run("Retry", func(t *testing.T) {
		h := setup(t, open)
		w, j, now := one(h)
		next := now.Add(30 * time.Second)
		h.complete(retryAt(j, now, next))
		d := h.delivery(w, j.DeliveryID)
		if d.Status != hookd.DeliveryPending || d.Attempts != 1 || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(next.Truncate(time.Millisecond)) ||
			d.LastStatusCode == nil || *d.LastStatusCode != 503 {
			t.Fatalf("delivery after a retryable failure = %+v, want pending until %v", d, next)
		}
		wantTime(t, "NextAttemptAt", *d.NextAttemptAt)
		// The lease is gone: the retry is claimable at its time, not later.
		jobs := h.claim(next, 1, 1)
		if len(jobs) != 1 || jobs[0].Attempt != 2 || jobs[0].RoundStart != 0 {
			t.Fatalf("claim at the retry time: %+v", jobs)
		}
	})
	t.Run("FailedWithoutAnswer", func(t *testing.T) {
		h := setup(t, open)
		w, j, now := one(h)
		r := result(j, hookd.DeliveryFailed, 0, now, time.Time{})
		r.Attempt.ResponseBody, r.Attempt.Error, r.Attempt.Duration = "", "dial tcp 203.0.113.9:443: connect: connection refused", 1500*time.Millisecond
		h.complete(r)
		d := h.delivery(w, j.DeliveryID)
		if d.Status != hookd.DeliveryFailed || d.NextAttemptAt != nil || d.LastStatusCode != nil || d.Attempts != 1 {
			t.Fatalf("delivery after a failure without answer = %+v", d)
		}
		wantEqual(t, "attempt log", []*hookd.Attempt{&r.Attempt}, d.AttemptLog)
	})
	t.Run("AttemptLogOldestFirst", func(t *testing.T) {
		h := setup(t, open)
		w, j, now := one(h)
		var want []*hookd.Attempt
		for i := range 3 {
			at := now.Add(time.Duration(i) * time.Minute)
			var r *hookd.AttemptResult
			if i < 2 {
				r = retryAt(j, at, at.Add(time.Minute))
			} else {
				r = delivered(j, at)
			}
			r.Attempt.ResponseBody = "body " + string(rune('A'+i))
			h.complete(r)
			want = append(want, &r.Attempt)
			if i < 2 {
				j = h.claim(at.Add(time.Minute), 1, 1)[0]
			}
		}
		d := h.delivery(w, j.DeliveryID)
		wantEqual(t, "attempt log", want, d.AttemptLog)
		if d.Attempts != 3 || d.Status != hookd.DeliveryDelivered {
			t.Fatalf("delivery = %+v, want delivered after 3 attempts", d)
		}
	})
	t.Run("StaleLeaseIgnored", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		slow := h.claimUntil(now, now.Add(50*time.Millisecond), 1, 1)[0]
		fresh := h.claim(now.Add(100*time.Millisecond), 1, 1)[0]

		h.complete(delivered(slow, now.Add(150*time.Millisecond)))
		d := h.delivery(w, slow.DeliveryID)
		if d.Status != hookd.DeliveryPending || d.Attempts != 0 || d.LastAttemptAt != nil {
			t.Fatalf("a stale lease's result changed the delivery: %+v", d)
		}
		if len(d.AttemptLog) != 1 {
			t.Fatalf("stale attempt not logged: %d attempts", len(d.AttemptLog))
		}
		// The fresh lease still holds.
		if jobs := h.claim(now.Add(200*time.Millisecond), 1, 1); len(jobs) != 0 {
			t.Fatalf("a stale result cleared the fresh lease: claimed %v", jobIDs(jobs))
		}
		h.complete(failed(fresh, now.Add(200*time.Millisecond)))
		if d := h.delivery(w, fresh.DeliveryID); d.Status != hookd.DeliveryFailed || d.Attempts != 1 || len(d.AttemptLog) != 2 {
			t.Fatalf("after the fresh lease's result: %+v with %d attempts logged", d, len(d.AttemptLog))
		}
	})
	t.Run("StaleAfterRedeliver", func(t *testing.T) {
		h := setup(t, open)
		w, j, now := one(h)
		if _, err := h.s.Redeliver(h.ctx, w.OrganizationID, w.ID, j.DeliveryID); err != nil {
			t.Fatal(err)
		}
		h.complete(failed(j, now))
		d := h.delivery(w, j.DeliveryID)
		if d.Status != hookd.DeliveryPending || d.Attempts != 0 || len(d.AttemptLog) != 1 {
			t.Fatalf("a result from before the redelivery changed the delivery: %+v", d)
		}
		if jobs := h.claim(time.Now(), 1, 1); len(jobs) != 1 || jobs[0].DeliveryID != j.DeliveryID {
			t.Fatalf("the redelivered delivery is not claimable: %v", jobIDs(jobs))
		}
	})
	t.Run("ManyInOneCall", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		var events []*hookd.Event
		for range 30 {
			events = append(events, event(o.ID, hookd.EventScanCompleted))
		}
		h.publish(events...)
		now := time.Now()
		jobs := h.claim(now, 30, 0)
		var results []*hookd.AttemptResult
		want := map[string]hookd.DeliveryStatus{}
		for i, j := range jobs {
			r := [...]*hookd.AttemptResult{delivered(j, now), failed(j, now), retryAt(j, now, now.Add(time.Hour))}[i%3]
			results = append(results, r)
			want[j.DeliveryID] = r.Status
		}
		h.complete(results...)
		for _, d := range h.deliveries(w, "") {
			if d.Status != want[d.ID] || d.Attempts != 1 {
				t.Fatalf("delivery %s: %s after %d attempts, want %s after 1", d.ID, d.Status, d.Attempts, want[d.ID])
			}
		}
		h.wantCounts(10, 10, 10)
	})
	t.Run("Empty", func(t *testing.T) {
		h := setup(t, open)
		if err := h.s.CompleteAttempts(h.ctx, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func testRelease(t *testing.T, open func(t *testing.T) Store) {
	t.Run("ClaimableAtOnce", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		jobs := h.claim(now, 10, 10)
		if err := h.s.ReleaseJobs(h.ctx, jobs); err != nil {
			t.Fatal(err)
		}
		again := h.claim(now, 10, 10)
		if got, want := jobIDs(again), jobIDs(jobs); len(got) != 2 || !slices.Equal(newestFirst(got...), newestFirst(want...)) {
			t.Fatalf("after release claimed %v, want %v", got, want)
		}
		for _, j := range again {
			if j.Attempt != 1 {
				t.Fatalf("a released job counted as an attempt: Attempt %d", j.Attempt)
			}
		}
		for _, d := range h.deliveries(w, "") {
			if d.Attempts != 0 || d.LastAttemptAt != nil {
				t.Fatalf("release changed delivery %+v", d)
			}
		}
	})
	t.Run("StaleReleaseIgnored", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		old := h.claimUntil(now, now.Add(50*time.Millisecond), 1, 1)[0]
		h.claim(now.Add(100*time.Millisecond), 1, 1)
		if err := h.s.ReleaseJobs(h.ctx, []*hookd.Job{old}); err != nil {
			t.Fatal(err)
		}
		if jobs := h.claim(now.Add(100*time.Millisecond), 1, 1); len(jobs) != 0 {
			t.Fatalf("releasing a stale job freed the current lease: claimed %v", jobIDs(jobs))
		}
	})
	t.Run("Empty", func(t *testing.T) {
		h := setup(t, open)
		if err := h.s.ReleaseJobs(h.ctx, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func testNextDue(t *testing.T, open func(t *testing.T) Store) {
	wantDue := func(h *harness, want time.Time) {
		h.t.Helper()
		got, ok, err := h.s.NextDue(h.ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		if !ok || !got.Equal(want.Truncate(time.Millisecond)) {
			h.t.Fatalf("NextDue = %v, %v; want %v", got, ok, want)
		}
		wantTime(h.t, "NextDue", got)
	}
	wantNone := func(h *harness) {
		h.t.Helper()
		got, ok, err := h.s.NextDue(h.ctx)
		if err != nil || ok {
			h.t.Fatalf("NextDue = %v, %v, %v; want nothing pending", got, ok, err)
		}
	}
	t.Run("Empty", func(t *testing.T) {
		wantNone(setup(t, open))
	})
	t.Run("Pending", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		res := h.publish(event(o.ID, hookd.EventScanCompleted))[0]
		wantDue(h, res.Event.CreatedAt)
	})
	t.Run("LeasedUntilExpiry", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		until := now.Add(10 * time.Minute)
		h.claimUntil(now, until, 1, 1)
		wantDue(h, until)
	})
	t.Run("EarliestOfRetryAndLease", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		jobs := h.claimUntil(now, now.Add(10*time.Minute), 2, 0)
		h.complete(retryAt(jobs[0], now, now.Add(time.Hour)))
		wantDue(h, now.Add(10*time.Minute))
		h.complete(retryAt(jobs[1], now, now.Add(2*time.Hour)))
		wantDue(h, now.Add(time.Hour))
	})
	t.Run("DoneIsNotDue", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanCompleted))
		now := time.Now()
		jobs := h.claim(now, 2, 0)
		h.complete(delivered(jobs[0], now), failed(jobs[1], now))
		wantNone(h)
	})
}
