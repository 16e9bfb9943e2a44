package dispatch_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hookd-dev/hookd/dispatch"
)

// SPEC §6, isolated, with the default limits (256 workers, 16 per
// webhook): 50 webhooks that hang, each with a backlog of 20 deliveries,
// could hold 800 attempts, so they take every worker, and a healthy
// webhook's deliveries wait a whole delivery timeout for a worker to come
// free, round after round. The per-webhook cap bounds what one endpoint
// takes, not what sixteen of them take together.
//
// This test fails today (healthy deliveries arrive after 2 s, 4 s, 6 s …)
// and is skipped unless HOOKD_TEST_KNOWN_ISSUES is set; it is the
// acceptance test for a fix in dispatch.go (for instance keeping a share
// of the workers for webhooks with nothing in flight, or lowering the cap
// of a webhook whose attempts time out).
func TestDispatcher_HealthyBesideHangingWebhooks_DefaultLimits(t *testing.T) {
	if os.Getenv("HOOKD_TEST_KNOWN_ISSUES") == "" {
		t.Skip("known issue: with the default limits, 16 hanging webhooks with a backlog hold every worker; set HOOKD_TEST_KNOWN_ISSUES=1 to run")
	}
	const hanging, events, timeout = 50, 20, 2 * time.Second
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
}
