package dispatch_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/hookd-dev/hookd/dispatch"
)

// SPEC §6, isolated, with the default limits (1024 workers, 16 per
// webhook): 80 webhooks that hang, each with a backlog of 20 deliveries,
// could hold 1 280 attempts. The per-webhook cap bounds what one endpoint
// takes, not what sixty-four of them take together; what keeps workers for
// the healthy webhook is that a webhook's window grows only with prompt
// answers, so each hanging one holds a single worker while the rest of
// its claimed backlog waits, held, for room (limit.go). Without that the
// hanging webhooks take every worker and the healthy deliveries arrive
// after 2 s, 4 s, 6 s …
func TestDispatcher_HealthyBesideHangingWebhooks_DefaultLimits(t *testing.T) {
	const hanging, events, timeout = 80, 20, 2 * time.Second
	f := openFixture(t)
	url, got := arrivals(t)
	f.addWebhook(t, url)
	hang := newHangingReceiver(t)
	for i := range hanging {
		f.addWebhook(t, hang.URL+"/"+strconv.Itoa(i))
	}
	for range events {
		f.publishOne(t)
	}
	start := time.Now()
	f.run(t, dispatch.Config{Timeout: timeout}) // default Workers and PerWebhook
	for i := range events {
		select {
		case <-got:
		case <-time.After(time.Until(start.Add(timeout * 3 / 4))):
			t.Fatalf("%d of %d healthy deliveries arrived within %s; %d hanging attempts in flight",
				i, events, timeout*3/4, hang.held.Load())
		}
	}
	if n := hang.held.Load(); n > hanging {
		t.Errorf("%d hanging attempts in flight, want at most one per hanging webhook (%d)", n, hanging)
	}
}
