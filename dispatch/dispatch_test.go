package dispatch_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/dispatch"
	"github.com/hookd-dev/hookd/egress"
	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/sqlite"
)

// receiver is a real HTTP server on 127.0.0.1 that records what it gets
// and answers with handle's status.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	got      chan received
}

type received struct {
	at     time.Time
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan received, 1000)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := received{at: time.Now(), header: r.Header.Clone(), body: body}
		rc.mu.Lock()
		rc.requests = append(rc.requests, rec)
		rc.mu.Unlock()
		rc.got <- rec
		if handle != nil {
			handle(w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) wait(t *testing.T, timeout time.Duration) received {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(timeout):
		t.Fatalf("receiver got nothing within %s", timeout)
		return received{}
	}
}

type fixture struct {
	store *sqlite.DB
	org   *hookd.Organization
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	org := &hookd.Organization{Name: "Acme"}
	if err := db.CreateOrganization(context.Background(), org); err != nil {
		t.Fatal(err)
	}
	return &fixture{store: db, org: org}
}

func (f *fixture) webhook(t *testing.T, url, secret string) *hookd.Webhook {
	t.Helper()
	w := &hookd.Webhook{OrganizationID: f.org.ID, Name: "wh", URL: url, Events: []string{hookd.EventScanCompleted}, Secret: secret, Active: true}
	if err := f.store.CreateWebhook(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return w
}

func (f *fixture) publish(t *testing.T, n int) []*hookd.Event {
	t.Helper()
	events := make([]*hookd.Event, n)
	for i := range events {
		events[i] = &hookd.Event{OrganizationID: f.org.ID, Type: hookd.EventScanCompleted, Data: json.RawMessage(`{"scan_id":"scn_` + strconv.Itoa(i) + `"}`)}
	}
	results, err := f.store.PublishEvents(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		events[i] = r.Event
	}
	return events
}

func (f *fixture) start(t *testing.T, cfg dispatch.Config) *dispatch.Dispatcher {
	t.Helper()
	cfg.Store = f.store
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	cfg.Sender = egress.NewClient(egress.Options{Policy: egress.Policy{AllowPrivate: true, AllowHTTP: true}, Timeout: cfg.Timeout})
	cfg.Poll = 20 * time.Millisecond
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d := dispatch.New(cfg)
	d.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Stop(ctx)
	})
	return d
}

// deliveries returns the webhook's deliveries once every one has the wanted
// status, or fails after a few seconds.
func (f *fixture) waitStatus(t *testing.T, w *hookd.Webhook, want hookd.DeliveryStatus, n int) []*hookd.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, _, err := f.store.ListDeliveries(context.Background(), f.org.ID, w.ID, want, hookd.Page{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) >= n {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries are %s after 10s", len(list), n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fixture) find(t *testing.T, w *hookd.Webhook, id string) *hookd.Delivery {
	t.Helper()
	d, err := f.store.FindDelivery(context.Background(), f.org.ID, w.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDispatcher_DeliversSignedRequest(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, nil)
	w := f.webhook(t, rc.URL+"/hook", "s3cret")
	ev := f.publish(t, 1)[0]
	f.start(t, dispatch.Config{})

	got := rc.wait(t, 5*time.Second)
	dl := f.waitStatus(t, w, hookd.DeliveryDelivered, 1)[0]

	wantBody := ev.Payload(w.ID)
	if string(got.body) != string(wantBody) {
		t.Fatalf("body\n got %s\nwant %s", got.body, wantBody)
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(got.body)
	for name, want := range map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          "hookd/" + hookd.Version,
		"X-CG-Hook-Event":     "scan_completed",
		"X-CG-Hook-Delivery":  dl.ID,
		"X-CG-Hook-ID":        w.ID,
		"X-CG-Hook-Attempt":   "1",
		"X-CG-Hook-Signature": "sha256=" + hex.EncodeToString(mac.Sum(nil)),
	} {
		if v := got.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	full := f.find(t, w, dl.ID)
	if full.Attempts != 1 || len(full.AttemptLog) != 1 || full.AttemptLog[0].StatusCode != 200 || full.AttemptLog[0].Error != "" {
		t.Fatalf("attempt log = %+v", full.AttemptLog)
	}
}

func TestDispatcher_NoSignatureWithoutSecret(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, nil)
	f.webhook(t, rc.URL, "")
	f.publish(t, 1)
	f.start(t, dispatch.Config{})
	if got := rc.wait(t, 5*time.Second); got.header.Get("X-CG-Hook-Signature") != "" {
		t.Fatalf("signature sent without a secret: %q", got.header.Get("X-CG-Hook-Signature"))
	}
}

// A receiver that always fails gets 1 + len(schedule) attempts with
// increasing gaps, the same body and delivery id, then the delivery fails.
func TestDispatcher_RetriesWithIncreasingDelaysThenFails(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		io.WriteString(w, "boom")
	})
	w := f.webhook(t, rc.URL, "k")
	f.publish(t, 1)
	schedule := []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond}
	f.start(t, dispatch.Config{Retry: dispatch.RetryPolicy{Schedule: schedule, Jitter: 0.2}})

	var got []received
	for range 4 {
		got = append(got, rc.wait(t, 5*time.Second))
	}
	dl := f.waitStatus(t, w, hookd.DeliveryFailed, 1)[0]
	select {
	case extra := <-rc.got:
		t.Fatalf("a fifth attempt arrived: %v", extra.header)
	case <-time.After(300 * time.Millisecond):
	}
	prevGap := time.Duration(0)
	for i, r := range got {
		if n := r.header.Get("X-CG-Hook-Attempt"); n != strconv.Itoa(i+1) {
			t.Errorf("attempt %d carried X-CG-Hook-Attempt %s", i+1, n)
		}
		if r.header.Get("X-CG-Hook-Delivery") != dl.ID || string(r.body) != string(got[0].body) {
			t.Errorf("attempt %d: delivery id or body changed", i+1)
		}
		if i == 0 {
			continue
		}
		gap := r.at.Sub(got[i-1].at)
		if gap < schedule[i-1]*8/10 {
			t.Errorf("retry %d came %s after the previous attempt, before its delay %s - 20%%", i, gap, schedule[i-1])
		}
		if gap <= prevGap {
			t.Errorf("retry %d gap %s does not exceed the previous gap %s", i, gap, prevGap)
		}
		prevGap = gap
	}
	full := f.find(t, w, dl.ID)
	if full.Attempts != 4 || len(full.AttemptLog) != 4 {
		t.Fatalf("attempts = %d, log = %d entries; want 4", full.Attempts, len(full.AttemptLog))
	}
	for i, a := range full.AttemptLog {
		if a.Number != i+1 || a.StatusCode != 500 || a.ResponseBody != "boom" || a.Error == "" {
			t.Errorf("attempt log %d = %+v", i, a)
		}
	}
}

// Redirects, timeouts and refused connections are failures, logged with
// their reason.
func TestDispatcher_FailureKinds(t *testing.T) {
	redirectTarget := newReceiver(t, nil)
	redirect := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, redirectTarget.URL, http.StatusFound)
	})
	hang := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	closed := closedPort(t)

	for _, tc := range []struct {
		name       string
		url        string
		wantStatus int
	}{
		{"Redirect", redirect.URL, 302},
		{"Timeout", hang.URL, 0},
		{"ConnectionRefused", closed, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			w := f.webhook(t, tc.url, "")
			f.publish(t, 1)
			f.start(t, dispatch.Config{Timeout: 300 * time.Millisecond}) // no retries
			dl := f.waitStatus(t, w, hookd.DeliveryFailed, 1)[0]
			full := f.find(t, w, dl.ID)
			if len(full.AttemptLog) != 1 {
				t.Fatalf("attempts = %d, want 1", len(full.AttemptLog))
			}
			a := full.AttemptLog[0]
			if a.StatusCode != tc.wantStatus || a.Error == "" {
				t.Fatalf("attempt = %+v, want status %d and an error", a, tc.wantStatus)
			}
		})
	}
	select {
	case <-redirectTarget.got:
		t.Fatal("the redirect was followed")
	default:
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/hook"
}

// Retry-After on a 503 lengthens the next delay beyond the schedule's.
func TestDispatcher_RetryAfterLengthensDelay(t *testing.T) {
	f := newFixture(t)
	var calls atomic.Int32
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
		}
	})
	w := f.webhook(t, rc.URL, "")
	f.publish(t, 1)
	f.start(t, dispatch.Config{Retry: dispatch.RetryPolicy{Schedule: []time.Duration{50 * time.Millisecond}}})
	first := rc.wait(t, 5*time.Second)
	second := rc.wait(t, 5*time.Second)
	if gap := second.at.Sub(first.at); gap < 950*time.Millisecond {
		t.Fatalf("retry came after %s, want at least Retry-After's 1s", gap)
	}
	f.waitStatus(t, w, hookd.DeliveryDelivered, 1)
}

// Redelivering a failed delivery keeps its id, continues the attempt
// numbers and grants a fresh round of retries.
func TestDispatcher_RedeliverContinuesAttemptNumbers(t *testing.T) {
	f := newFixture(t)
	var fail atomic.Bool
	fail.Store(true)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(500)
		}
	})
	w := f.webhook(t, rc.URL, "")
	f.publish(t, 1)
	d := f.start(t, dispatch.Config{Retry: dispatch.RetryPolicy{Schedule: []time.Duration{20 * time.Millisecond}}})
	rc.wait(t, 5*time.Second)
	rc.wait(t, 5*time.Second)
	dl := f.waitStatus(t, w, hookd.DeliveryFailed, 1)[0]

	fail.Store(false)
	if _, err := f.store.Redeliver(context.Background(), f.org.ID, w.ID, dl.ID); err != nil {
		t.Fatal(err)
	}
	d.Notify()
	got := rc.wait(t, 5*time.Second)
	if got.header.Get("X-CG-Hook-Attempt") != "3" || got.header.Get("X-CG-Hook-Delivery") != dl.ID {
		t.Fatalf("redelivery headers: attempt %s, delivery %s", got.header.Get("X-CG-Hook-Attempt"), got.header.Get("X-CG-Hook-Delivery"))
	}
	f.waitStatus(t, w, hookd.DeliveryDelivered, 1)
}

// A webhook that hangs occupies at most PerWebhook workers: deliveries to a
// healthy webhook beside it still go out while it hangs.
func TestDispatcher_SlowWebhookDoesNotBlockOthers(t *testing.T) {
	f := newFixture(t)
	var inflight, peak atomic.Int32
	release := make(chan struct{})
	slow := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		inflight.Add(-1)
	})
	defer close(release)
	fast := newReceiver(t, nil)
	slowHook := f.webhook(t, slow.URL, "")
	fastHook := f.webhook(t, fast.URL, "")
	f.publish(t, 20) // 20 deliveries to each webhook
	f.start(t, dispatch.Config{Workers: 4, PerWebhook: 2, Timeout: 5 * time.Second})

	f.waitStatus(t, fastHook, hookd.DeliveryDelivered, 20)
	if p := peak.Load(); p > 2 {
		t.Fatalf("slow webhook had %d attempts in flight, cap is 2", p)
	}
	pending, _, _ := f.store.ListDeliveries(context.Background(), f.org.ID, slowHook.ID, hookd.DeliveryPending, hookd.Page{Limit: 200})
	if len(pending) != 20 {
		t.Fatalf("slow webhook: %d pending, want all 20 still pending", len(pending))
	}
}

// Stop hands the attempts still running after the grace period back to the
// store: nothing is logged for them and they can be claimed at once.
func TestDispatcher_StopHandsBackInFlight(t *testing.T) {
	f := newFixture(t)
	hang := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	w := f.webhook(t, hang.URL, "")
	f.publish(t, 1)
	d := f.start(t, dispatch.Config{Timeout: 30 * time.Second})
	hang.wait(t, 5*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	d.Stop(ctx)

	now := time.Now()
	jobs, err := f.store.ClaimDeliveries(context.Background(), now, now.Add(time.Minute), 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].WebhookID != w.ID || jobs[0].Attempt != 1 {
		t.Fatalf("after Stop, claim = %+v; want the delivery back with attempt 1", jobs)
	}
}

func TestDispatcher_Ping(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, nil)
	w := f.webhook(t, rc.URL, "")
	d := f.start(t, dispatch.Config{})
	dl, err := f.store.CreatePing(context.Background(), f.org.ID, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	d.Notify()
	got := rc.wait(t, 5*time.Second)
	if got.header.Get("X-CG-Hook-Event") != "ping" || got.header.Get("X-CG-Hook-Delivery") != dl.ID {
		t.Fatalf("ping headers = %v", got.header)
	}
}
