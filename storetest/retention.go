package storetest

import (
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

func testPrune(t *testing.T, open func(t *testing.T) Store) {
	// The cutoff is an hour ahead, so everything a test made is older than
	// it, with its real timestamps.
	future := func() time.Time { return time.Now().Add(time.Hour) }

	t.Run("NothingNewerTouched", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		wOld := h.webhook(o.ID, subscribed(hookd.EventScanCompleted))
		wLate := h.webhook(o.ID, subscribed(hookd.EventScanStarted))
		h.publish(event(o.ID, hookd.EventScanCompleted))
		old := h.deliveries(wOld, "")[0]
		late := h.publish(event(o.ID, hookd.EventScanStarted))[0].Event // published before the cutoff, delivered after it
		h.attemptAll(time.Now(), func(j *hookd.Job) *hookd.AttemptResult {
			if j.WebhookID == wOld.ID {
				return delivered(j, time.Now())
			}
			return nil
		})
		cutoff := clockPast(t)
		h.attemptAll(time.Now(), func(j *hookd.Job) *hookd.AttemptResult { return delivered(j, time.Now()) })
		young := h.publish(event(o.ID, hookd.EventScanCompleted))[0].Event
		h.attemptAll(time.Now(), func(j *hookd.Job) *hookd.AttemptResult { return retryAt(j, time.Now(), future()) })
		before := h.deliveries(wOld, "")
		lateBefore := h.deliveries(wLate, "")

		total, _ := h.pruneAll(cutoff, 100)
		wantEqual(t, "pruned", hookd.PruneResult{Events: 1, Deliveries: 1, Attempts: 1}, total)
		after := h.deliveries(wOld, "")
		if len(before) != 2 || len(after) != 1 || after[0].ID != before[0].ID || after[0].EventID != young.ID {
			t.Fatalf("deliveries of %s after pruning = %v, want only the young one %s of %v", wOld.ID, deliveryIDs(after), before[0].ID, deliveryIDs(before))
		}
		if d := h.delivery(wOld, after[0].ID); len(d.AttemptLog) != 1 || d.Status != hookd.DeliveryPending {
			t.Fatalf("young delivery = %+v with %d attempts, want pending with its attempt", d, len(d.AttemptLog))
		}
		wantEqual(t, "deliveries of the late webhook", lateBefore, h.deliveries(wLate, ""))
		if d := h.delivery(wLate, lateBefore[0].ID); d.Event.ID != late.ID || len(d.AttemptLog) != 1 {
			t.Fatalf("late delivery = %+v, want its event %s and its attempt", d, late.ID)
		}
		_, err := h.s.FindDelivery(h.ctx, o.ID, wOld.ID, old.ID)
		wantCode(t, err, hookd.ENOTFOUND, "")
		h.wantCounts(1, 1, 0)
	})

	t.Run("DeliveredGoneWithAttemptsAndEvent", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		e := event(o.ID, hookd.EventScanCompleted)
		e.ID = "scan-42-completed"
		h.publish(e)
		h.attemptAll(time.Now(), func(j *hookd.Job) *hookd.AttemptResult { return retryAt(j, time.Now(), time.Now()) })
		h.attemptAll(time.Now(), func(j *hookd.Job) *hookd.AttemptResult { return delivered(j, time.Now()) })
		gone := h.deliveries(w, "")[0]

		total, _ := h.pruneAll(future(), 100)
		wantEqual(t, "pruned", hookd.PruneResult{Events: 1, Deliveries: 1, Attempts: 2}, total)
		if list := h.deliveries(w, ""); len(list) != 0 {
			t.Fatalf("deliveries after pruning = %v, want none", deliveryIDs(list))
		}
		_, err := h.s.FindDelivery(h.ctx, o.ID, w.ID, gone.ID)
		wantCode(t, err, hookd.ENOTFOUND, "")
		h.wantCounts(0, 0, 0)

		// The event is gone too, so its id is new again: deduplication
		// holds within the retention age.
		again := event(o.ID, hookd.EventScanCompleted)
		again.ID = e.ID
		if r := h.publish(again)[0]; !r.Created || r.Event.Deliveries != 1 {
			t.Fatalf("publishing %s again = %+v, want a new event with 1 delivery", e.ID, r)
		}
	})

	t.Run("FailedAndPendingStayRedeliverable", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		wFailed := h.webhook(o.ID, subscribed(hookd.EventScanCompleted))
		wRetry := h.webhook(o.ID, subscribed(hookd.EventScanStarted))
		wLeased := h.webhook(o.ID, subscribed(hookd.EventScanFailed))
		h.publish(event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanStarted))
		retryTime := future()
		h.attemptAll(time.Now(), func(j *hookd.Job) *hookd.AttemptResult {
			if j.WebhookID == wFailed.ID {
				return retryAt(j, time.Now(), time.Now())
			}
			return retryAt(j, time.Now(), retryTime)
		})
		h.attemptAll(time.Now(), func(j *hookd.Job) *hookd.AttemptResult { return failed(j, time.Now()) })
		h.publish(event(o.ID, hookd.EventScanFailed))
		leased := h.claim(time.Now(), 10, 0)
		if len(leased) != 1 || leased[0].WebhookID != wLeased.ID {
			t.Fatalf("claimed %v, want the one delivery of %s", jobIDs(leased), wLeased.ID)
		}
		failedBefore := h.deliveries(wFailed, "")[0]
		retryBefore := h.deliveries(wRetry, "")[0]
		leasedBefore := h.deliveries(wLeased, "")[0]

		total, _ := h.pruneAll(future(), 100)
		// The failed delivery's first attempt goes; every delivery keeps its
		// newest attempt.
		wantEqual(t, "pruned", hookd.PruneResult{Attempts: 1}, total)
		h.wantCounts(2, 0, 1)
		wantEqual(t, "failed delivery", failedBefore, h.deliveries(wFailed, "")[0])
		wantEqual(t, "retried delivery", retryBefore, h.deliveries(wRetry, "")[0])
		wantEqual(t, "leased delivery", leasedBefore, h.deliveries(wLeased, "")[0])
		d := h.delivery(wFailed, failedBefore.ID)
		if len(d.AttemptLog) != 1 || d.AttemptLog[0].Number != 2 || d.Event == nil {
			t.Fatalf("failed delivery's log = %+v, event %v; want its last attempt (2) and its event", d.AttemptLog, d.Event)
		}
		if d := h.delivery(wRetry, retryBefore.ID); len(d.AttemptLog) != 1 || d.AttemptLog[0].Number != 1 {
			t.Fatalf("retried delivery's log = %+v, want its one attempt", d.AttemptLog)
		}

		// The lease still holds: the attempt in flight completes.
		h.complete(delivered(leased[0], time.Now()))
		if d := h.deliveries(wLeased, "")[0]; d.Status != hookd.DeliveryDelivered {
			t.Fatalf("leased delivery after its attempt = %s, want delivered", d.Status)
		}
		// The failed one is redelivered, its attempt numbers going on.
		if _, err := h.s.Redeliver(h.ctx, o.ID, wFailed.ID, failedBefore.ID); err != nil {
			t.Fatal(err)
		}
		jobs := h.claim(time.Now(), 10, 0)
		if len(jobs) != 1 || jobs[0].DeliveryID != failedBefore.ID || jobs[0].Attempt != 3 || jobs[0].Event == nil {
			t.Fatalf("claimed %+v, want the redelivered %s, attempt 3, with its event", jobs, failedBefore.ID)
		}
	})

	t.Run("EventWithRemainingDeliveryStays", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		wOK := h.webhook(o.ID)
		wFailed := h.webhook(o.ID)
		bare := h.publish(event(o.ID, hookd.EventReportGenerated))[0] // no webhook subscribes
		e := h.publish(event(o.ID, hookd.EventScanCompleted))[0].Event
		h.attemptAll(time.Now(), func(j *hookd.Job) *hookd.AttemptResult {
			if j.WebhookID == wOK.ID {
				return delivered(j, time.Now())
			}
			return failed(j, time.Now())
		})

		total, _ := h.pruneAll(future(), 100)
		if bare.Event.Deliveries != 0 {
			t.Fatalf("report_generated made %d deliveries, want 0", bare.Event.Deliveries)
		}
		wantEqual(t, "pruned", hookd.PruneResult{Events: 1, Deliveries: 1, Attempts: 1}, total)
		if list := h.deliveries(wOK, ""); len(list) != 0 {
			t.Fatalf("delivered deliveries left: %v", deliveryIDs(list))
		}
		list := h.deliveries(wFailed, "")
		if len(list) != 1 {
			t.Fatalf("failed deliveries left: %v, want 1", deliveryIDs(list))
		}
		d := h.delivery(wFailed, list[0].ID)
		if d.Event == nil || d.Event.ID != e.ID || string(d.Event.Data) != string(e.Data) {
			t.Fatalf("failed delivery's event = %+v, want %+v", d.Event, e)
		}
		// Its event is still there, so its id is still taken.
		again := event(o.ID, hookd.EventScanCompleted)
		again.ID = e.ID
		if r := h.publish(again)[0]; r.Created {
			t.Fatalf("publishing %s again created a new event", e.ID)
		}
		h.wantCounts(0, 0, 1)
	})

	t.Run("LimitBoundsEachCall", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		h.webhook(o.ID)
		for range 5 {
			h.publish(event(o.ID, hookd.EventScanCompleted))
		}
		h.attemptAll(time.Now(), func(j *hookd.Job) *hookd.AttemptResult { return delivered(j, time.Now()) })
		cutoff := future()

		first, err := h.s.Prune(h.ctx, cutoff, "", 2)
		if err != nil {
			t.Fatal(err)
		}
		if first.Events != 2 || first.Deliveries != 2 || first.Next == "" {
			t.Fatalf("first call = %+v, want 2 events and 2 deliveries, and a cursor", first)
		}
		h.wantCounts(0, 3, 0)
		total, calls := h.pruneFrom(cutoff, first.Next, 2)
		if total.Events != 3 || total.Deliveries != 3 || total.Attempts != 3 || calls != 2 {
			t.Fatalf("the following calls pruned %+v in %d calls, want 3 events, deliveries and attempts in 2", total, calls)
		}
		h.wantCounts(0, 0, 0)
		if again, _ := h.pruneAll(cutoff, 2); again != (hookd.PruneResult{}) {
			t.Fatalf("pruning again = %+v, want nothing", again)
		}
	})

	t.Run("ErrLimit", func(t *testing.T) {
		h := setup(t, open)
		if _, err := h.s.Prune(h.ctx, future(), "", 0); err == nil {
			t.Fatal("Prune with limit 0 succeeded")
		}
	})
}

// attemptAll claims every delivery due at now and completes each job with
// the result outcome returns, or hands it back when that is nil.
func (h *harness) attemptAll(now time.Time, outcome func(*hookd.Job) *hookd.AttemptResult) {
	h.t.Helper()
	jobs := h.claim(now, 1000, 0)
	if len(jobs) == 0 {
		h.t.Fatal("attemptAll: nothing to claim")
	}
	var results []*hookd.AttemptResult
	var back []*hookd.Job
	for _, j := range jobs {
		if r := outcome(j); r != nil {
			results = append(results, r)
		} else {
			back = append(back, j)
		}
	}
	h.complete(results...)
	if err := h.s.ReleaseJobs(h.ctx, back); err != nil {
		h.t.Fatalf("ReleaseJobs: %v", err)
	}
}

// pruneAll calls Prune from the start until it returns no cursor, and
// returns the totals and the number of calls.
func (h *harness) pruneAll(before time.Time, limit int) (hookd.PruneResult, int) {
	h.t.Helper()
	return h.pruneFrom(before, "", limit)
}

func (h *harness) pruneFrom(before time.Time, after string, limit int) (total hookd.PruneResult, calls int) {
	h.t.Helper()
	for {
		r, err := h.s.Prune(h.ctx, before, after, limit)
		if err != nil {
			h.t.Fatalf("Prune: %v", err)
		}
		calls++
		total.Events += r.Events
		total.Deliveries += r.Deliveries
		total.Attempts += r.Attempts
		if r.Next == "" {
			return total, calls
		}
		if r.Next == after || calls > 1000 {
			h.t.Fatalf("Prune: cursor %q after %d calls makes no progress", r.Next, calls)
		}
		after = r.Next
	}
}

// clockPast returns a time, in whole milliseconds, after everything done
// so far, once the clock has passed it: what is written next is newer.
func clockPast(t *testing.T) time.Time {
	t.Helper()
	cutoff := time.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	for !time.Now().After(cutoff) {
		time.Sleep(time.Millisecond)
	}
	return cutoff
}
