package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

func withRateLimit(rate float64, burst int) serverOption {
	return func(c *Config) { c.RateLimit, c.RateBurst = rate, burst }
}

func withAdminRateLimit(rate float64, burst int) serverOption {
	return func(c *Config) { c.AdminRateLimit, c.AdminRateBurst = rate, burst }
}

// wantRateLimited fails unless r is SPEC §3's 429 with a Retry-After of
// whole seconds, at least 1.
func (r *response) wantRateLimited(t *testing.T) {
	t.Helper()
	r.wantError(t, http.StatusTooManyRequests, hookd.ERATELIMIT, "")
	if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds ≥ 1", r.Header.Get("Retry-After"))
	}
}

// The limits are real token buckets on the real clock, set slow (2/s,
// burst 3) so that the requests of one burst always fit in the half second
// a token takes to come back, even on a loaded machine.
func TestRateLimit_APIKey(t *testing.T) {
	ts := newTestServer(t, nil, withRateLimit(2, 3))
	a := ts.createOrg("Acme", "")
	b := ts.createOrg("Bravo", "")
	var second struct {
		Key string `json:"key"`
	}
	ts.do("POST", "/v1/organizations/"+a.org.ID+"/api-keys", testAdminToken, map[string]any{"name": "second"}).want(t, http.StatusCreated, &second)

	for range 3 {
		ts.do("GET", "/v1/webhooks", a.key, nil).want(t, http.StatusOK, nil)
	}

	t.Run("ErrOverLimit", func(t *testing.T) {
		ts.do("POST", "/v1/webhooks", a.key, validWebhook()).wantRateLimited(t)
		// Nothing written: read the store, not the API, which would take a token.
		if hooks, _, err := ts.store.ListWebhooks(context.Background(), a.org.ID, hookd.Page{Limit: 10}); err != nil || len(hooks) != 0 {
			t.Fatalf("webhooks after a refused create = %d (%v), want 0", len(hooks), err)
		}
	})
	t.Run("ErrOverLimitBeforeAccessCheck", func(t *testing.T) {
		// An admin endpoint with an organization key is a 403, but a
		// caller over its limit learns nothing more than 429.
		ts.do("POST", "/v1/events", a.key, map[string]any{}).wantRateLimited(t)
	})
	t.Run("OtherKeyOfSameOrganization", func(t *testing.T) {
		ts.do("GET", "/v1/webhooks", second.Key, nil).want(t, http.StatusOK, nil)
	})
	t.Run("OtherOrganization", func(t *testing.T) {
		ts.createWebhook(b.key, validWebhook())
	})
	t.Run("AdminToken", func(t *testing.T) {
		ts.do("GET", "/v1/organizations/"+a.org.ID, testAdminToken, nil).want(t, http.StatusOK, nil)
	})
	t.Run("UnknownKeyIsStill401", func(t *testing.T) {
		ts.do("GET", "/v1/webhooks", "hk_nope", nil).wantError(t, http.StatusUnauthorized, hookd.EUNAUTHORIZED, "")
	})
	t.Run("OKAfterWaiting", func(t *testing.T) {
		time.Sleep(600 * time.Millisecond) // one token at 2/s
		ts.createWebhook(a.key, validWebhook())
		ts.do("GET", "/v1/webhooks", a.key, nil).wantRateLimited(t)
	})
}

func TestRateLimit_AdminToken(t *testing.T) {
	ts := newTestServer(t, nil, withAdminRateLimit(2, 3))
	a := ts.createOrg("Acme", "") // two admin requests
	ts.createWebhook(a.key, validWebhook())
	ts.do("GET", "/v1/organizations/"+a.org.ID, testAdminToken, nil).want(t, http.StatusOK, nil)

	r, _ := ts.publish(a.org.ID, hookd.EventScanCompleted, nil)
	r.wantRateLimited(t)
	if n := ts.notify.Load(); n != 0 {
		t.Fatalf("a refused publish woke the dispatcher %d times", n)
	}
	if ds := ts.listDeliveries(a.key, ts.listWebhooks(a.key)[0].ID); len(ds) != 0 {
		t.Fatalf("a refused publish created %d deliveries", len(ds))
	}

	time.Sleep(600 * time.Millisecond)
	if r, _ := ts.publish(a.org.ID, hookd.EventScanCompleted, nil); r.Status != http.StatusAccepted {
		t.Fatalf("publish after waiting: %d %s", r.Status, r.Body)
	}
}

// The bucket's arithmetic, on explicit instants: the defaults, refill,
// the wait it reports, and "off".
func TestRateLimiter(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

	t.Run("Default", func(t *testing.T) {
		l := newRateLimiter(0, 0, DefaultRateLimit)
		for i := range 200 {
			if ok, _ := l.allow("k", t0); !ok {
				t.Fatalf("request %d of a burst of 200 refused", i+1)
			}
		}
		ok, wait := l.allow("k", t0)
		if ok || wait != 10*time.Millisecond {
			t.Fatalf("201st request: ok %v, wait %s; want refused, 10ms", ok, wait)
		}
		if ok, _ := l.allow("k", t0.Add(10*time.Millisecond)); !ok {
			t.Fatal("refused after the wait it asked for")
		}
		if ok, _ := l.allow("other", t0); !ok {
			t.Fatal("another key was refused")
		}
	})
	t.Run("RefillCapsAtBurst", func(t *testing.T) {
		l := newRateLimiter(10, 2, DefaultRateLimit)
		l.allow("k", t0)
		l.allow("k", t0)
		later := t0.Add(time.Hour) // a long pause refills the burst, no more
		for i := range 3 {
			if ok, _ := l.allow("k", later); ok != (i < 2) {
				t.Fatalf("request %d after a pause: ok %v", i+1, ok)
			}
		}
	})
	t.Run("Off", func(t *testing.T) {
		l := newRateLimiter(-1, 0, DefaultRateLimit)
		for range 10_000 {
			if ok, _ := l.allow("k", t0); !ok {
				t.Fatal("a negative rate must turn the limit off")
			}
		}
	})
	t.Run("MemoryBounded", func(t *testing.T) {
		l := newRateLimiter(1, 1, DefaultRateLimit)
		for i := range rateLimitSweepAt {
			l.allow(strconv.Itoa(i), t0)
		}
		l.allow("new", t0.Add(2*time.Second)) // every old bucket has refilled
		if n := len(l.buckets); n != 1 {
			t.Fatalf("%d buckets after the sweep, want 1", n)
		}
	})
}

// Every route that takes a credential can answer 429, and says so.
func TestOpenAPI_RateLimited(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	for _, rt := range (&Server{}).routes() {
		if rt.access == public {
			continue
		}
		if doc.Paths[rt.path][strings.ToLower(rt.method)].Responses["429"] == nil {
			t.Errorf("%s %s: no 429 in openapi.json", rt.method, rt.path)
		}
	}
}
