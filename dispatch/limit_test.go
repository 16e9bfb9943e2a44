package dispatch_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/dispatch"
)

// SPEC §6, isolated, when more webhooks hang than there are workers: each
// hanging webhook takes a single worker (its window), so 20 of them would
// take all 8; the reserve keeps 4 for the webhook known to answer. Its
// deliveries all arrive well within one timeout, while at most
// Workers − Reserved attempts hang.
func TestDispatcher_ReserveKeepsWorkersForPromptWebhooks(t *testing.T) {
	const workers, reserved, hanging, events, timeout = 8, 4, 20, 20, 2 * time.Second
	f := openFixture(t)
	url, got := arrivals(t)
	f.addWebhook(t, url)
	d := f.run(t, dispatch.Config{Workers: workers, Reserved: reserved, Timeout: timeout})
	f.publishOne(t) // the healthy webhook answers once: now it is known prompt
	d.Notify()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the healthy webhook got nothing within 5s")
	}

	hang := newHangingReceiver(t)
	for i := range hanging {
		f.addWebhook(t, hang.URL+"/"+strconv.Itoa(i))
	}
	start := time.Now()
	for range events {
		f.publishOne(t)
		d.Notify()
	}
	hang.waitHeld(t, workers-reserved)
	for i := range events {
		select {
		case <-got:
		case <-time.After(time.Until(start.Add(timeout * 3 / 4))):
			t.Fatalf("%d of %d healthy deliveries arrived within %s; %d hanging attempts in flight",
				i, events, timeout*3/4, hang.held.Load())
		}
	}
	if n := hang.held.Load(); n != workers-reserved {
		t.Errorf("%d hanging attempts in flight, want Workers − Reserved = %d", n, workers-reserved)
	}
}

// A webhook's attempts in flight start at one and grow back to PerWebhook
// with prompt answers: while its first attempt hangs, no other starts;
// once it answers promptly, it gets all PerWebhook workers.
func TestDispatcher_WindowGrowsWithPromptAnswers(t *testing.T) {
	const perWebhook, events, timeout = 4, 40, 500 * time.Millisecond
	f := openFixture(t)
	var (
		mu       sync.Mutex
		first    time.Time // when the first request arrived
		second   time.Time // when the next one did
		inflight atomic.Int32
		peak     atomic.Int32
		calls    atomic.Int32
	)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		c := calls.Add(1)
		mu.Lock()
		switch c {
		case 1:
			first = time.Now()
		case 2:
			second = time.Now()
		}
		mu.Unlock()
		if c == 1 {
			<-r.Context().Done() // hangs until hookd gives up
			return
		}
		time.Sleep(20 * time.Millisecond)
	})
	w := f.addWebhook(t, rc.URL)
	for range events {
		f.publishOne(t)
	}
	f.run(t, dispatch.Config{PerWebhook: perWebhook, Timeout: timeout})

	f.waitStatus(t, w, hookd.DeliveryDelivered, events-1)
	mu.Lock()
	gap := second.Sub(first)
	mu.Unlock()
	if gap < timeout*9/10 {
		t.Errorf("the second attempt started %s after the first, which hung: want no second attempt before the first timed out (%s)", gap, timeout)
	}
	if p := peak.Load(); p != perWebhook {
		t.Errorf("at most %d attempts in flight at once, want PerWebhook = %d once the webhook answered promptly", p, perWebhook)
	}
}

// Stop hands back the deliveries held for a webhook with no room, as well
// as those in flight: all can be claimed at once.
func TestDispatcher_StopHandsBackHeld(t *testing.T) {
	const events = 5
	f := openFixture(t)
	hang := newHangingReceiver(t)
	f.addWebhook(t, hang.URL)
	for range events {
		f.publishOne(t)
	}
	d := f.run(t, dispatch.Config{Timeout: 30 * time.Second})
	hang.waitHeld(t, 1) // one attempt in flight, four held
	time.Sleep(50 * time.Millisecond)
	if n := hang.held.Load(); n != 1 {
		t.Fatalf("%d attempts in flight to a webhook not yet heard from, want 1", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	d.Stop(ctx)

	now := time.Now()
	jobs, err := f.store.ClaimDeliveries(context.Background(), now, now.Add(time.Minute), 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != events {
		t.Fatalf("after Stop, %d of %d deliveries claimable", len(jobs), events)
	}
	for _, j := range jobs {
		if j.Attempt != 1 {
			t.Errorf("delivery %s comes back at attempt %d, want 1: nothing was recorded", j.DeliveryID, j.Attempt)
		}
	}
}

// A held delivery starts only while its lease outlasts the attempt, and is
// handed back and claimed again when it no longer would: with a lease of
// Timeout + 200 ms, held deliveries of a webhook whose one attempt hangs
// for the whole timeout go back and forth, yet each delivery is attempted
// exactly once, one at a time, and none is attempted twice at once.
func TestDispatcher_HeldDeliveriesNeverOutliveTheirLease(t *testing.T) {
	const events, timeout = 3, 300 * time.Millisecond
	f := openFixture(t)
	var inflight, peak atomic.Int32
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-r.Context().Done() // hangs until hookd gives up
	})
	w := f.addWebhook(t, rc.URL)
	for range events {
		f.publishOne(t)
	}
	f.run(t, dispatch.Config{Timeout: timeout, LeaseMargin: 200 * time.Millisecond})

	failed := f.waitStatus(t, w, hookd.DeliveryFailed, events)
	for _, dl := range failed {
		if full := f.find(t, w, dl.ID); len(full.AttemptLog) != 1 {
			t.Errorf("delivery %s was attempted %d times, want once", dl.ID, len(full.AttemptLog))
		}
	}
	if p := peak.Load(); p != 1 {
		t.Errorf("%d attempts in flight at once to a webhook that never answered, want 1", p)
	}
}
