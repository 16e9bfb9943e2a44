package dispatch

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy decides when a failed attempt is tried again.
//
// With the default schedule "30s,2m,10m" a delivery is attempted at most four
// times per round:
//
//	attempt 1  at once
//	attempt 2  24s–36s after attempt 1 failed   (30s ± 20 %)
//	attempt 3  96s–144s after attempt 2 failed  (2m ± 20 %)
//	attempt 4  8m–12m after attempt 3 failed    (10m ± 20 %)
//
// and then the delivery is failed. Jitter spreads retries of many deliveries
// that failed together (a receiver's outage) so they do not return in one
// burst. The delays must increase (SPEC §2), also after jitter: each step's
// jitter is narrowed, if needed, to a third of the gap to its neighbours so
// that the ranges of two steps never overlap.
type RetryPolicy struct {
	Schedule []time.Duration // delay before retry k is Schedule[k-1]
	Jitter   float64         // fraction, 0.2 = ±20 %
}

// DefaultRetrySchedule is SPEC §5's default.
const DefaultRetrySchedule = "30s,2m,10m"

// MaxRetryAfter caps how long a receiver's Retry-After can push a retry back.
const MaxRetryAfter = time.Hour

// ParseRetrySchedule reads a comma-separated list of strictly increasing,
// positive durations, such as "30s,2m,10m". An empty list means no retries.
func ParseRetrySchedule(s string) ([]time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (write e.g. 30s,2m,10m)", strings.TrimSpace(part))
		}
		if d <= 0 {
			return nil, fmt.Errorf("delays must be positive, got %s", d)
		}
		if len(out) > 0 && d <= out[len(out)-1] {
			return nil, fmt.Errorf("delays must increase, but %s follows %s", d, out[len(out)-1])
		}
		out = append(out, d)
	}
	return out, nil
}

// Retries is how many retries a round grants.
func (p RetryPolicy) Retries() int { return len(p.Schedule) }

// window returns the range of delays before retry k (1-based).
func (p RetryPolicy) window(k int) (lo, hi time.Duration) {
	s := p.Schedule
	d := s[k-1]
	j := time.Duration(float64(d) * p.Jitter)
	if k > 1 {
		j = min(j, (d-s[k-2])/3)
	}
	if k < len(s) {
		j = min(j, (s[k]-d)/3)
	}
	return d - j, d + j
}

// Delay returns the wait before retry k (1-based, k ≤ Retries()). A
// retryAfter the receiver asked for lengthens the delay, capped at
// MaxRetryAfter; it never shortens it.
func (p RetryPolicy) Delay(k int, retryAfter time.Duration) time.Duration {
	lo, hi := p.window(k)
	d := lo
	if hi > lo {
		d += rand.N(hi - lo + 1)
	}
	return max(d, min(retryAfter, MaxRetryAfter))
}

// parseRetryAfter reads a Retry-After header of a 429 or 503 answer:
// delay-seconds or an HTTP date. Other statuses, and unreadable or past
// values, give 0.
func parseRetryAfter(status int, h http.Header, now time.Time) time.Duration {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return 0
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
