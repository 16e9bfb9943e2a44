package dispatch

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetrySchedule(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []time.Duration
		wantErr bool
	}{
		{in: "30s,2m,10m", want: []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute}},
		{in: " 1s , 2s ", want: []time.Duration{time.Second, 2 * time.Second}},
		{in: "", want: nil},
		{in: "10m,2m", wantErr: true},
		{in: "1s,1s", wantErr: true},
		{in: "0s,1s", wantErr: true},
		{in: "-1s", wantErr: true},
		{in: "soon", wantErr: true},
		{in: "1s,,2s", wantErr: true},
	} {
		got, err := ParseRetrySchedule(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseRetrySchedule(%q) err = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParseRetrySchedule(%q) = %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("ParseRetrySchedule(%q) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

// The default schedule's delays stay within ±20 % and always increase, for
// every draw of the jitter.
func TestRetryPolicy_DelayDefault(t *testing.T) {
	sched, _ := ParseRetrySchedule(DefaultRetrySchedule)
	p := RetryPolicy{Schedule: sched, Jitter: 0.2}
	for range 2000 {
		prev := time.Duration(0)
		for k := 1; k <= p.Retries(); k++ {
			d := p.Delay(k, 0)
			base := sched[k-1]
			if d < base*8/10 || d > base*12/10 {
				t.Fatalf("retry %d: delay %s outside %s ± 20 %%", k, d, base)
			}
			if d <= prev {
				t.Fatalf("retry %d: delay %s does not exceed previous %s", k, d, prev)
			}
			prev = d
		}
	}
}

// A close schedule narrows the jitter so the delays still increase.
func TestRetryPolicy_DelayCloseScheduleStillIncreases(t *testing.T) {
	p := RetryPolicy{Schedule: []time.Duration{100 * time.Millisecond, 110 * time.Millisecond, 120 * time.Millisecond}, Jitter: 0.2}
	for range 2000 {
		a, b, c := p.Delay(1, 0), p.Delay(2, 0), p.Delay(3, 0)
		if !(a < b && b < c) {
			t.Fatalf("delays %s, %s, %s do not increase", a, b, c)
		}
	}
}

func TestRetryPolicy_RetryAfterLengthensNeverShortens(t *testing.T) {
	p := RetryPolicy{Schedule: []time.Duration{time.Minute}, Jitter: 0}
	for _, tc := range []struct {
		retryAfter, want time.Duration
	}{
		{0, time.Minute},
		{time.Second, time.Minute}, // shorter: ignored
		{5 * time.Minute, 5 * time.Minute},
		{3 * time.Hour, time.Hour}, // capped
	} {
		if got := p.Delay(1, tc.retryAfter); got != tc.want {
			t.Errorf("Delay(1, %s) = %s, want %s", tc.retryAfter, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	h := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		want   time.Duration
	}{
		{"Seconds429", 429, h("120"), 2 * time.Minute},
		{"Seconds503", 503, h("5"), 5 * time.Second},
		{"HTTPDate", 503, h(now.Add(90 * time.Second).Format(http.TimeFormat)), 90 * time.Second},
		{"PastDate", 503, h(now.Add(-time.Hour).Format(http.TimeFormat)), 0},
		{"IgnoredOn500", 500, h("120"), 0},
		{"Missing", 429, http.Header{}, 0},
		{"Garbage", 429, h("soon"), 0},
		{"Negative", 429, h("-5"), 0},
		{"HugeCapped", 429, h("999999999999"), MaxRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseRetryAfter(tc.status, tc.header, now); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
