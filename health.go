package hookd

import (
	"fmt"
	"strings"
	"time"
)

// HealthPolicy says when a failing webhook is disabled automatically. The
// stores apply it while they record attempt results, so that every node
// sharing a database counts the same failures. A zero field turns its rule
// off; the zero policy never disables anything.
type HealthPolicy struct {
	// MaxConsecutiveFailures disables a webhook once that many of its
	// deliveries in a row have ended failed, with no successful attempt in
	// between.
	MaxConsecutiveFailures int
	// MaxFailingFor disables a webhook whose attempts have all failed for
	// that long: an attempt that fails at least MaxFailingFor after the
	// first failed attempt since the last success.
	MaxFailingFor time.Duration
}

// Defaults of HealthPolicy: the --disable-after-failures and
// --disable-after settings of hookd serve.
const (
	DefaultMaxConsecutiveFailures = 20
	DefaultMaxFailingFor          = 24 * time.Hour
)

// DefaultHealthPolicy returns the policy with both rules at their defaults.
func DefaultHealthPolicy() HealthPolicy {
	return HealthPolicy{MaxConsecutiveFailures: DefaultMaxConsecutiveFailures, MaxFailingFor: DefaultMaxFailingFor}
}

// Record applies the result of one attempt of a delivery of w, whose lease
// was still current, to w's health, and reports whether it changed any of
// w's fields. A successful attempt (a delivery, a ping too) resets the
// count and FailingSince; a failed one sets FailingSince if unset, and a
// delivery that ends failed adds one to ConsecutiveFailures. When a rule of
// the policy is met, w is disabled: Active false, DisabledReason a sentence
// for its owner, DisabledAt now. A disabled webhook's health is left as it
// was when it was disabled (FailingSince tells which deliveries failed
// while it was down) until it is enabled again; a success does not enable
// it.
func (p HealthPolicy) Record(w *Webhook, r *AttemptResult, now time.Time) (changed bool) {
	if !w.DisabledAt.IsZero() {
		return false
	}
	if r.Status == DeliveryDelivered {
		changed = w.ConsecutiveFailures != 0 || !w.FailingSince.IsZero()
		w.ConsecutiveFailures, w.FailingSince = 0, time.Time{}
		return changed
	}
	at := r.Attempt.StartedAt.UTC().Truncate(time.Millisecond)
	if w.FailingSince.IsZero() {
		w.FailingSince, changed = at, true
	}
	if r.Status == DeliveryFailed {
		w.ConsecutiveFailures++
		changed = true
	}
	var reason string
	switch {
	case p.MaxConsecutiveFailures > 0 && w.ConsecutiveFailures >= p.MaxConsecutiveFailures:
		reason = fmt.Sprintf("disabled automatically after %d consecutive failed deliveries", w.ConsecutiveFailures)
	case p.MaxFailingFor > 0 && at.Sub(w.FailingSince) >= p.MaxFailingFor:
		reason = fmt.Sprintf("disabled automatically: failing continuously since %s (%s)",
			w.FailingSince.Format(time.RFC3339), formatWindow(p.MaxFailingFor))
	default:
		return changed
	}
	w.Active = false
	w.DisabledReason = reason + "; last attempt: " + describeAttempt(&r.Attempt)
	w.DisabledAt = now.UTC().Truncate(time.Millisecond)
	return true
}

// describeAttempt says in a few words how an attempt failed, for a
// disabled reason: the status code when an answer came, else the error,
// cut short (it is already in the delivery log in full).
func describeAttempt(a *Attempt) string {
	if a.StatusCode != 0 {
		return fmt.Sprintf("HTTP %d", a.StatusCode)
	}
	msg := strings.TrimSpace(a.Error)
	if msg == "" {
		return "no answer"
	}
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:200]) + "…"
	}
	return msg
}

// formatWindow writes d as people write it: 24h, 90m, 1h30m, 45s.
func formatWindow(d time.Duration) string {
	s := d.String()
	// Duration.String always spells out the smaller units: "24h0m0s".
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Enable clears what disabling set and starts w's health afresh: Active
// true, no reason, a zero count. Stores call it when a webhook is enabled
// again, by EnableWebhook or by an update that makes it active.
func (w *Webhook) Enable() {
	w.Active = true
	w.DisabledReason, w.DisabledAt = "", time.Time{}
	w.ConsecutiveFailures, w.FailingSince = 0, time.Time{}
}
