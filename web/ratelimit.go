package web

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hookd-dev/hookd"
)

// Rate limits of the API (Config.RateLimit, Config.AdminRateLimit). An
// organization key is one tenant's integration: 100 requests/s with bursts
// of 200 is far beyond what managing webhooks and reading delivery logs
// needs, and keeps one tenant's runaway script from taking the store's
// write capacity away from the others. The admin token is the platform
// itself, which publishes every tenant's events: its limit is ten times
// higher and counts requests, not events, so a platform that publishes in
// batches (up to 1000 events a request) is never near it.
const (
	DefaultRateLimit      = 100.0
	DefaultAdminRateLimit = 1000.0
)

// rateLimitSweepAt is the number of buckets past which allow drops those
// that have refilled. Callers are authenticated, so the keys are bounded by
// the API keys that exist; the sweep forgets deleted ones.
const rateLimitSweepAt = 10_000

// rateLimiter is a token bucket per caller: each holds up to burst tokens,
// refills at rate tokens per second, and a request takes one. It lives in
// the Server (no package state), so each server and each test has its own;
// with several hookd nodes behind a load balancer each node counts its own
// requests, which multiplies the budget by the number of nodes.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// newRateLimiter returns a limiter for the configured rate and burst: rate
// 0 is def, a negative rate turns the limit off (nil); burst 0 is twice the
// rate, at least one request.
func newRateLimiter(rate float64, burst int, def float64) *rateLimiter {
	switch {
	case rate < 0:
		return nil
	case rate == 0 || math.IsNaN(rate): // a broken setting must not turn the limit off
		rate = def
	}
	b := float64(burst)
	if burst <= 0 {
		b = max(1, math.Ceil(2*rate))
	}
	return &rateLimiter{rate: rate, burst: b, buckets: map[string]*bucket{}}
}

// allow takes a token from key's bucket at now. When the bucket is empty it
// takes nothing and returns how long until a token is there.
func (l *rateLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= rateLimitSweepAt {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep drops the buckets that are full again: a full bucket and no bucket
// mean the same. l.mu must be held.
func (l *rateLimiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// errRateLimited is the answer to a caller over its limit. Its Retry-After
// header is set by rateLimit.
var errRateLimited = hookd.Errorf(hookd.ERATELIMIT, "too many requests for this credential: slow down and retry after the number of seconds in Retry-After")

// rateLimit takes a token for the authenticated caller c and returns nil, or
// errRateLimited after setting Retry-After (whole seconds, rounded up, at
// least 1, as RFC 9110 §10.2.3 allows no fractions).
func (s *Server) rateLimit(w http.ResponseWriter, c caller) error {
	l, key := s.orgLimit, c.keyID
	if c.admin {
		l, key = s.adminLimit, "admin"
	}
	ok, wait := l.allow(key, time.Now())
	if ok {
		return nil
	}
	w.Header().Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(wait.Seconds()))), 10))
	return errRateLimited
}
