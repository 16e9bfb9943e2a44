package hookd

import (
	"testing"
	"time"
)

func TestHealthPolicy_Record(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	result := func(status DeliveryStatus, code int, at time.Time) *AttemptResult {
		return &AttemptResult{Status: status, Attempt: Attempt{StatusCode: code, StartedAt: at, Error: "connection refused"}}
	}
	p := HealthPolicy{MaxConsecutiveFailures: 3, MaxFailingFor: 90 * time.Minute}

	t.Run("CountRule", func(t *testing.T) {
		w := &Webhook{Active: true}
		for i := range 3 {
			p.Record(w, result(DeliveryFailed, 500, t0.Add(time.Duration(i)*time.Minute)), t0)
		}
		want := "disabled automatically after 3 consecutive failed deliveries; last attempt: HTTP 500"
		if w.Active || w.DisabledReason != want || !w.DisabledAt.Equal(t0) || !w.FailingSince.Equal(t0) {
			t.Fatalf("after 3 failures: %+v; want disabled with %q", w, want)
		}
		// Frozen while disabled: a success neither resets nor enables.
		if p.Record(w, result(DeliveryDelivered, 200, t0.Add(time.Hour)), t0) || w.Active || w.ConsecutiveFailures != 3 {
			t.Fatalf("a success changed a disabled webhook: %+v", w)
		}
		w.Enable()
		if !w.Active || w.DisabledReason != "" || !w.DisabledAt.IsZero() || w.ConsecutiveFailures != 0 || !w.FailingSince.IsZero() {
			t.Fatalf("Enable left %+v", w)
		}
	})
	t.Run("WindowRule", func(t *testing.T) {
		w := &Webhook{Active: true}
		p.Record(w, result(DeliveryPending, 0, t0), t0)
		p.Record(w, result(DeliveryPending, 0, t0.Add(90*time.Minute-time.Millisecond)), t0)
		if !w.Active || w.ConsecutiveFailures != 0 {
			t.Fatalf("retries inside the window: %+v", w)
		}
		p.Record(w, result(DeliveryPending, 0, t0.Add(90*time.Minute)), t0)
		want := "disabled automatically: failing continuously since 2026-11-30T07:00:00Z (1h30m); last attempt: connection refused"
		if w.Active || w.DisabledReason != want {
			t.Fatalf("reason %q, want %q", w.DisabledReason, want)
		}
	})
	t.Run("SuccessResets", func(t *testing.T) {
		w := &Webhook{Active: true}
		p.Record(w, result(DeliveryFailed, 500, t0), t0)
		p.Record(w, result(DeliveryFailed, 500, t0), t0)
		if !p.Record(w, result(DeliveryDelivered, 204, t0), t0) || w.ConsecutiveFailures != 0 || !w.FailingSince.IsZero() {
			t.Fatalf("a success did not reset: %+v", w)
		}
		if p.Record(w, result(DeliveryDelivered, 204, t0), t0) {
			t.Fatal("a success on a healthy webhook reported a change")
		}
	})
	t.Run("Off", func(t *testing.T) {
		w := &Webhook{Active: true}
		for i := range 100 {
			HealthPolicy{}.Record(w, result(DeliveryFailed, 500, t0.Add(time.Duration(i)*time.Hour)), t0)
		}
		if !w.Active || w.ConsecutiveFailures != 100 {
			t.Fatalf("the zero policy disabled: %+v", w)
		}
	})
}

func TestFormatWindow(t *testing.T) {
	for d, want := range map[time.Duration]string{24 * time.Hour: "24h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s", 2 * time.Minute: "2m", time.Hour + time.Second: "1h0m1s"} {
		if got := formatWindow(d); got != want {
			t.Errorf("formatWindow(%v) = %q, want %q", d, got, want)
		}
	}
}
