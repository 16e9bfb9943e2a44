package dispatch_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
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

// Hostile receivers (SPEC §2, §6): whatever a receiver does, an attempt
// ends within the delivery timeout with a clear entry in the delivery log,
// hookd keeps at most 4 KiB of the answer and its memory stays bounded,
// and the other webhooks' deliveries go on. Every receiver here is a real
// server on 127.0.0.1; the ones that misbehave below HTTP are raw TCP.

// hostileTimeout is the delivery timeout of these tests.
const hostileTimeout = time.Second

// openFixture is newFixture for tests and benchmarks alike.
func openFixture(tb testing.TB) *fixture {
	tb.Helper()
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		tb.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(tb.TempDir(), "hookd.db"), Key: key})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	org := &hookd.Organization{Name: "Acme"}
	if err := db.CreateOrganization(context.Background(), org); err != nil {
		tb.Fatal(err)
	}
	return &fixture{store: db, org: org}
}

func (f *fixture) addWebhook(tb testing.TB, url string) *hookd.Webhook {
	tb.Helper()
	w := &hookd.Webhook{OrganizationID: f.org.ID, Name: "wh", URL: url, Events: []string{hookd.EventScanCompleted}, Active: true}
	if err := f.store.CreateWebhook(context.Background(), w); err != nil {
		tb.Fatal(err)
	}
	return w
}

// publishOne publishes one event, which every webhook receives.
func (f *fixture) publishOne(tb testing.TB) {
	tb.Helper()
	e := &hookd.Event{OrganizationID: f.org.ID, Type: hookd.EventScanCompleted, Data: json.RawMessage(`{"scan_id":"scn_1"}`)}
	if _, err := f.store.PublishEvents(context.Background(), []*hookd.Event{e}); err != nil {
		tb.Fatal(err)
	}
}

// run starts a dispatcher with cfg on the real egress client (private
// targets allowed: the receivers are on 127.0.0.1), stopped at cleanup.
func (f *fixture) run(tb testing.TB, cfg dispatch.Config) *dispatch.Dispatcher {
	tb.Helper()
	cfg.Store = f.store
	cfg.Sender = egress.NewClient(egress.Options{Policy: egress.Policy{AllowPrivate: true, AllowHTTP: true}, Timeout: cfg.Timeout})
	if cfg.Poll == 0 {
		cfg.Poll = 20 * time.Millisecond // tests wait for the safety net
	}
	d := dispatch.New(cfg)
	d.Start()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		d.Stop(ctx)
	})
	return d
}

// onlyAttempt waits for the webhook's one delivery to reach want and
// returns its one attempt.
func (f *fixture) onlyAttempt(t *testing.T, w *hookd.Webhook, want hookd.DeliveryStatus) *hookd.Attempt {
	t.Helper()
	dl := f.waitStatus(t, w, want, 1)[0]
	full := f.find(t, w, dl.ID)
	if len(full.AttemptLog) != 1 {
		t.Fatalf("%d attempts, want 1", len(full.AttemptLog))
	}
	return full.AttemptLog[0]
}

// rawReceiver serves every connection to 127.0.0.1:port with serve, in its
// own goroutine, and returns the target URL. At cleanup the listener and
// every connection are closed and the goroutines waited for.
func rawReceiver(t *testing.T, serve func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serve(c.(*net.TCPConn)) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String() + "/hook"
}

// readRequest reads one whole request from c, so that what the receiver
// does next is not mistaken for a failure to send.
func readRequest(c net.Conn) bool {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err == nil
}

// trickle writes head at once and then slow one byte every 100 ms: the
// slowloris of answers.
func trickle(head, slow string) func(c *net.TCPConn) {
	return func(c *net.TCPConn) {
		if !readRequest(c) {
			return
		}
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		for i := range len(slow) {
			if _, err := c.Write([]byte{slow[i]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func TestDispatcher_HostileReceivers(t *testing.T) {
	// First and alone, since it measures the heap of the whole process.
	t.Run("GiBAnswer", testGiBAnswer)

	tests := []struct {
		name       string
		serve      func(c *net.TCPConn)
		status     hookd.DeliveryStatus
		statusCode int
		err        string
	}{
		{
			name: "Hangs",
			serve: func(c *net.TCPConn) {
				readRequest(c)
				io.Copy(io.Discard, c) // holds the connection open, answers nothing
			},
			status: hookd.DeliveryFailed,
			err:    "timeout after 1s",
		},
		{
			// The status line alone takes 1.7 s at this pace.
			name:   "TricklesHeaders",
			serve:  trickle("", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
			status: hookd.DeliveryFailed,
			err:    "timeout after 1s",
		},
		{
			name:       "TricklesBodyOfAnError",
			serve:      trickle("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\n", strings.Repeat("x", 100)),
			status:     hookd.DeliveryFailed,
			statusCode: 503,
			err:        "receiver answered Service Unavailable",
		},
		{
			// SPEC §2: success is a 2xx status within the timeout. The
			// status came at once, so the delivery is done; the slow rest
			// only costs this attempt its timeout, never more.
			name:       "TricklesBodyOfA200",
			serve:      trickle("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", strings.Repeat("x", 100)),
			status:     hookd.DeliveryDelivered,
			statusCode: 200,
		},
		{
			name: "ResetsConnection",
			serve: func(c *net.TCPConn) {
				if readRequest(c) {
					c.SetLinger(0) // close with RST, not FIN
					c.Close()
				}
			},
			status: hookd.DeliveryFailed,
			err:    "connection reset by peer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := openFixture(t)
			w := f.addWebhook(t, rawReceiver(t, tt.serve))
			f.publishOne(t)
			start := time.Now()
			f.run(t, dispatch.Config{Timeout: hostileTimeout}) // no retries

			a := f.onlyAttempt(t, w, tt.status)
			took := time.Since(start)
			if a.Error != tt.err || a.StatusCode != tt.statusCode {
				t.Errorf("attempt: status %d, error %q; want %d, %q", a.StatusCode, a.Error, tt.statusCode, tt.err)
			}
			// A little slack for the scheduler; the claim and the record
			// are outside the attempt.
			if a.Duration > hostileTimeout+200*time.Millisecond {
				t.Errorf("the attempt took %s, more than the %s timeout", a.Duration, hostileTimeout)
			}
			if took > hostileTimeout+2*time.Second {
				t.Errorf("the delivery was settled %s after the dispatcher started", took)
			}
			if len(a.ResponseBody) > hookd.MaxResponseBody {
				t.Errorf("kept %d bytes of the answer", len(a.ResponseBody))
			}
		})
	}
}

// A receiver that answers 200 followed by 1 GiB: hookd keeps the first
// 4 KiB, stops reading there (so the receiver gets to send only what the
// sockets buffer), and its heap grows by far less than the answer. The
// 2xx came in time, so the delivery is done (SPEC §2), and quickly: hookd
// does not sit reading the rest until the timeout.
func testGiBAnswer(t *testing.T) {
	const size = 1 << 30
	var written atomic.Int64
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := make([]byte, 64<<10) // streamed from one buffer, never held whole
		for i := range chunk {
			chunk[i] = 'x'
		}
		for written.Load() < size {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)

	f := openFixture(t)
	w := f.addWebhook(t, srv.URL)
	f.publishOne(t)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f.run(t, dispatch.Config{Timeout: hostileTimeout})
	a := f.onlyAttempt(t, w, hookd.DeliveryDelivered)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the receiver is still sending 5s after the attempt")
	}
	close(stop)
	<-sampled

	if a.StatusCode != 200 || len(a.ResponseBody) != hookd.MaxResponseBody {
		t.Errorf("attempt: status %d, kept %d bytes; want 200 and exactly %d", a.StatusCode, len(a.ResponseBody), hookd.MaxResponseBody)
	}
	if a.Duration >= hostileTimeout/2 {
		t.Errorf("the attempt took %s: hookd read on past what it keeps", a.Duration)
	}
	if n := written.Load(); n > 64<<20 {
		t.Errorf("the receiver got %d MiB out: hookd read on past what it keeps", n>>20)
	}
	if growth := int64(peak) - int64(base); growth > 32<<20 {
		t.Errorf("the heap grew by %d MiB during a 1 GiB answer, want < 32 MiB", growth>>20)
	}
	t.Logf("receiver sent %.1f MiB before hookd hung up; heap grew by at most %.1f MiB; attempt took %s",
		float64(written.Load())/(1<<20), float64(int64(peak)-int64(base))/(1<<20), a.Duration)
}

// hangingReceiver is one server behind any number of webhooks (one path
// each) that holds every request until the test ends or the client gives
// up, counting those it holds: the attempts in flight to it.
type hangingReceiver struct {
	*httptest.Server
	held atomic.Int64
}

func newHangingReceiver(tb testing.TB) *hangingReceiver {
	tb.Helper()
	release := make(chan struct{})
	h := &hangingReceiver{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body to its end is what lets the server notice, and
		// cancel r's context, when the client hangs up.
		io.Copy(io.Discard, r.Body)
		h.held.Add(1)
		defer h.held.Add(-1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	tb.Cleanup(h.Close)
	tb.Cleanup(func() { close(release) }) // runs first: Close waits for the handlers
	return h
}

// waitHeld waits until n requests are held.
func (h *hangingReceiver) waitHeld(tb testing.TB, n int64) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); h.held.Load() < n; {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d hanging requests arrived within 5s", h.held.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// arrivals is a healthy receiver that reports when each delivery arrives.
func arrivals(tb testing.TB) (string, <-chan time.Time) {
	tb.Helper()
	got := make(chan time.Time, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- time.Now()
	}))
	tb.Cleanup(srv.Close)
	return srv.URL, got
}

// besideHanging sets up one healthy webhook beside n hanging ones, each
// with one delivery in flight, and returns the healthy receiver's arrivals
// once all n hold a worker. The dispatcher has room for all of them
// beside its reserve: the per-webhook cap is what keeps the hanging ones
// from taking more. With ownEvents, the hanging webhooks subscribe to
// scan_started instead of scan_completed, so that publishOne reaches the
// healthy webhook alone and publishHanging the hanging ones alone.
func besideHanging(tb testing.TB, n int, ownEvents bool) (*fixture, *dispatch.Dispatcher, *hangingReceiver, <-chan time.Time) {
	tb.Helper()
	f := openFixture(tb)
	url, got := arrivals(tb)
	f.addWebhook(tb, url)
	hang := newHangingReceiver(tb)
	for i := range n {
		w := &hookd.Webhook{OrganizationID: f.org.ID, Name: "wh", URL: hang.URL + "/" + strconv.Itoa(i), Events: []string{hookd.EventScanCompleted}, Active: true}
		if ownEvents {
			w.Events = []string{hookd.EventScanStarted}
		}
		if err := f.store.CreateWebhook(context.Background(), w); err != nil {
			tb.Fatal(err)
		}
	}
	// Long enough that the hanging attempts outlive the measurement.
	//
	// The poll is the default's: it is a safety net, and the healthy
	// deliveries are found through Notify, as the API does. At the tests'
	// 20 ms, its claims (each passing over the capped hanging webhooks)
	// would be 50 extra store writes a second that production does not make.
	d := f.run(tb, dispatch.Config{Workers: n + 14, Reserved: 7, PerWebhook: 1, Timeout: time.Minute, Poll: time.Second})
	if ownEvents {
		f.publishHanging(tb)
	}
	f.publishOne(tb)
	d.Notify()
	hang.waitHeld(tb, int64(n))
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		tb.Fatal("the healthy webhook got nothing within 5s")
	}
	return f, d, hang, got
}

// publishHanging publishes one scan_started event: with besideHanging's
// ownEvents, one more delivery for each hanging webhook.
func (f *fixture) publishHanging(tb testing.TB) {
	tb.Helper()
	e := &hookd.Event{OrganizationID: f.org.ID, Type: hookd.EventScanStarted, Data: json.RawMessage(`{"scan_id":"scn_1"}`)}
	if _, err := f.store.PublishEvents(context.Background(), []*hookd.Event{e}); err != nil {
		tb.Fatal(err)
	}
}

// SPEC §6, isolated: 50 webhooks that never answer, each with a growing
// backlog, hold 50 workers; the healthy webhook beside them still gets
// every event promptly. Without the per-webhook cap the hanging backlog
// would take every worker and the healthy deliveries would wait for the
// timeout (a minute here).
func TestDispatcher_HealthyBesideHangingWebhooks(t *testing.T) {
	const hanging, events = 50, 20
	f, d, hang, got := besideHanging(t, hanging, false)

	start := time.Now()
	for range events {
		f.publishOne(t) // one more delivery for each of the 51 webhooks
		d.Notify()
	}
	for i := range events {
		select {
		case <-got:
		case <-time.After(time.Until(start.Add(2 * time.Second))):
			t.Fatalf("%d of %d healthy deliveries arrived within 2s beside %d hanging webhooks", i, events, hanging)
		}
	}
	if n := hang.held.Load(); n != hanging {
		t.Fatalf("%d hanging requests held at the end, want all %d: the healthy ones must not have waited for them", n, hanging)
	}
}

// BenchmarkHealthyBesideHanging measures the publish-to-arrival latency of
// a healthy webhook alone and beside 50 webhooks that never answer (each
// holding a worker and a growing backlog). Run it with
//
//	go test -run '^$' -bench HealthyBesideHanging -benchtime 1000x -count 3 ./dispatch
//
// p50-ms and p99-ms are publish to arrival; publish-p99-ms is the
// publish's store write alone, and dispatch-p99-ms the rest, from the
// publish's commit to the arrival: the dispatcher's share.
//
// In Beside50Hanging every event goes to all 51 webhooks, so its publish
// writes 51 deliveries instead of one: a cost of the fan-out, the same
// whether the other webhooks hang or answer. In Beside50HangingOwnEvents
// the hanging webhooks get events of another type, one more delivery each
// per healthy event (published before the measured one, not timed): the
// healthy webhook's publish writes one delivery, as alone, and what
// remains is what the hanging webhooks beside it cost.
func BenchmarkHealthyBesideHanging(b *testing.B) {
	for _, c := range []struct {
		name      string
		n         int
		ownEvents bool
	}{
		{"Alone", 0, false},
		{"Beside50Hanging", 50, false},
		{"Beside50HangingOwnEvents", 50, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			f, d, _, got := besideHanging(b, c.n, c.ownEvents)
			lat := make([]time.Duration, 0, b.N)
			pub := make([]time.Duration, 0, b.N)
			disp := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				if c.ownEvents {
					f.publishHanging(b)
					d.Notify() // as the API does: the claim it wakes is part of the cost
				}
				start := time.Now()
				f.publishOne(b)
				committed := time.Now()
				d.Notify()
				select {
				case at := <-got:
					lat = append(lat, at.Sub(start))
					pub = append(pub, committed.Sub(start))
					disp = append(disp, at.Sub(committed))
				case <-time.After(10 * time.Second):
					b.Fatal("a healthy delivery took more than 10s")
				}
			}
			b.StopTimer()
			b.ReportMetric(percentile(lat, 50), "p50-ms")
			b.ReportMetric(percentile(lat, 99), "p99-ms")
			b.ReportMetric(percentile(pub, 99), "publish-p99-ms")
			b.ReportMetric(percentile(disp, 99), "dispatch-p99-ms")
		})
	}
}

// percentile returns the p-th percentile of ds in milliseconds; it sorts ds.
func percentile(ds []time.Duration, p int) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)*p/100]) / 1e6
}
