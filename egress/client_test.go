package egress

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// open is the policy of tests whose receivers run on 127.0.0.1.
var open = Policy{AllowPrivate: true, AllowHTTP: true}

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	c := NewClient(o)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// receiver is an httptest server on 127.0.0.1 that counts the requests and
// the connections it gets.
type receiver struct {
	*httptest.Server
	hits  atomic.Int64
	conns atomic.Int64
}

func newReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		h(w, req)
	}))
	r.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	r.Start()
	t.Cleanup(r.Close)
	return r
}

func deliveryHeader() http.Header {
	return hookd.DeliveryHeaders(hookd.EventScanCompleted, "dlv_1", "wh_1", 1)
}

func TestClient_Post(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"scan_completed","data":{}}`)

	t.Run("OK", func(t *testing.T) {
		var got *http.Request
		var gotBody []byte
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			got, gotBody = r, must(io.ReadAll(r.Body))
			w.Header().Set("X-Receiver", "yes")
			io.WriteString(w, "thanks")
		})
		header := deliveryHeader()
		header.Set("X-CG-Hook-Signature", "sha256=00")
		res := newClient(t, Options{Policy: open}).Post(context.Background(), srv.URL+"/hooks?k=v", header, body)

		if res.Err != nil || res.StatusCode != 200 || string(res.Body) != "thanks" || res.Header.Get("X-Receiver") != "yes" {
			t.Fatalf("Result = %d %q %v %v, want 200 \"thanks\" with X-Receiver", res.StatusCode, res.Body, res.Header, res.Err)
		}
		if res.Duration <= 0 {
			t.Errorf("Duration = %v, want > 0", res.Duration)
		}
		if got.Method != "POST" || got.URL.RequestURI() != "/hooks?k=v" || !bytes.Equal(gotBody, body) {
			t.Errorf("receiver got %s %s %q", got.Method, got.URL.RequestURI(), gotBody)
		}
		for k, v := range header { // keys as hookd spells them, not canonical
			if got.Header.Get(k) != v[0] {
				t.Errorf("receiver header %s = %q, want %q", k, got.Header.Get(k), v[0])
			}
		}
		if ae := got.Header.Get("Accept-Encoding"); ae != "" {
			t.Errorf("Accept-Encoding = %q, want none: only the SPEC's headers", ae)
		}
		if header.Get("Content-Length") != "" || len(header) != 7 {
			t.Errorf("Post modified the caller's header: %v", header)
		}
	})

	t.Run("Non2xxIsNotAnError", func(t *testing.T) {
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		})
		res := newClient(t, Options{Policy: open}).Post(context.Background(), srv.URL, deliveryHeader(), body)
		if res.Err != nil || res.StatusCode != 500 || string(res.Body) != "boom\n" {
			t.Errorf("Result = %d %q %v, want 500 \"boom\\n\" and no error", res.StatusCode, res.Body, res.Err)
		}
	})

	t.Run("BodyCappedAtMaxResponseBody", func(t *testing.T) {
		answer := strings.Repeat("0123456789abcdef", 1000) // 16 000 bytes
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, answer) })
		res := newClient(t, Options{Policy: open}).Post(context.Background(), srv.URL, nil, body)
		if res.Err != nil || string(res.Body) != answer[:hookd.MaxResponseBody] {
			t.Errorf("Body is %d bytes (err %v), want the first %d bytes of the answer", len(res.Body), res.Err, hookd.MaxResponseBody)
		}

		res = newClient(t, Options{Policy: open, MaxResponseBody: 10}).Post(context.Background(), srv.URL, nil, body)
		if string(res.Body) != answer[:10] {
			t.Errorf("with MaxResponseBody 10: Body = %q", res.Body)
		}
	})

	t.Run("ConnectionReusedAfterSmallExcess", func(t *testing.T) {
		// 10 KiB is past the 4 KiB kept but within what is drained, so the
		// connection must carry the next POST.
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Write(make([]byte, 10<<10))
		})
		c := newClient(t, Options{Policy: open})
		for i := range 3 {
			if res := c.Post(context.Background(), srv.URL, nil, body); res.Err != nil || res.StatusCode != 200 {
				t.Fatalf("POST %d: %d %v", i, res.StatusCode, res.Err)
			}
		}
		if n := srv.conns.Load(); n != 1 {
			t.Errorf("3 POSTs used %d connections, want 1", n)
		}
	})

	t.Run("RedirectNotFollowed", func(t *testing.T) {
		target := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
		})
		res := newClient(t, Options{Policy: open}).Post(context.Background(), srv.URL, nil, body)
		if res.Err != nil || res.StatusCode != http.StatusFound || res.Header.Get("Location") != target.URL+"/elsewhere" {
			t.Errorf("Result = %d %v (Location %q), want 302 and no error", res.StatusCode, res.Err, res.Header.Get("Location"))
		}
		if n := target.hits.Load(); n != 0 {
			t.Errorf("the redirect target got %d requests, want 0", n)
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			// Reading the body lets the server notice the client hanging up.
			io.Copy(io.Discard, r.Body)
			select { // hangs until the client gives up
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		})
		res := newClient(t, Options{Policy: open, Timeout: 200 * time.Millisecond}).Post(context.Background(), srv.URL, nil, body)
		if res.Err == nil || res.Err.Error() != "timeout after 200ms" || !errors.Is(res.Err, context.DeadlineExceeded) {
			t.Errorf("Err = %v, want \"timeout after 200ms\" wrapping context.DeadlineExceeded", res.Err)
		}
		if res.StatusCode != 0 {
			t.Errorf("StatusCode = %d, want 0", res.StatusCode)
		}
		if res.Duration < 200*time.Millisecond || res.Duration > 5*time.Second {
			t.Errorf("Duration = %v, want about 200ms", res.Duration)
		}
	})

	t.Run("TimeoutOfCaller", func(t *testing.T) {
		// As the dispatcher does: its own deadline of the same length, set
		// a moment before Post starts its clock, and a shorter one.
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		})
		c := newClient(t, Options{Policy: open, Timeout: 300 * time.Millisecond})
		for _, tt := range []struct {
			caller time.Duration
			want   string
		}{
			{300 * time.Millisecond, "timeout after 300ms"},
			{100 * time.Millisecond, "timeout after 100ms"},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), tt.caller)
			res := c.Post(ctx, srv.URL, nil, body)
			cancel()
			if res.Err == nil || res.Err.Error() != tt.want {
				t.Errorf("caller deadline %v: Err = %v, want %q", tt.caller, res.Err, tt.want)
			}
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res := newClient(t, Options{Policy: open}).Post(ctx, srv.URL, nil, body)
		if res.Err == nil || res.Err.Error() != "attempt cancelled" || !errors.Is(res.Err, context.Canceled) {
			t.Errorf("Err = %v, want \"attempt cancelled\"", res.Err)
		}
	})

	t.Run("ConnectionRefused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String()
		ln.Close()
		res := newClient(t, Options{Policy: open}).Post(context.Background(), closed, nil, body)
		if res.Err == nil || res.Err.Error() != "connection refused" || !errors.Is(res.Err, syscall.ECONNREFUSED) {
			t.Errorf("Err = %v, want \"connection refused\"", res.Err)
		}
	})

	t.Run("HugeResponseReadOnlyUpToCap", func(t *testing.T) {
		const huge = 50 << 20
		written := make(chan int64, 1)
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(huge))
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			var n int64
			for n < huge {
				m, err := w.Write(chunk)
				n += int64(m)
				if err != nil {
					break
				}
			}
			written <- n
		})
		start := time.Now()
		res := newClient(t, Options{Policy: open}).Post(context.Background(), srv.URL, nil, body)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Post took %v, want well under 5s", took)
		}
		if res.Err != nil || res.StatusCode != 200 || len(res.Body) != hookd.MaxResponseBody {
			t.Errorf("Result = %d, %d bytes, %v; want 200 with %d bytes", res.StatusCode, len(res.Body), res.Err, hookd.MaxResponseBody)
		}
		select {
		case n := <-written:
			if n >= huge {
				t.Errorf("the receiver managed to send all %d bytes: the client read the whole answer", n)
			}
		case <-time.After(5 * time.Second):
			t.Error("the receiver was still writing 5s after the client was done: connection not closed")
		}
	})

	t.Run("PolicyRefusesLoopback", func(t *testing.T) {
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
		port := srv.Listener.Addr().(*net.TCPAddr).Port
		c := newClient(t, Options{Policy: Policy{AllowHTTP: true}})
		for _, host := range []string{"127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "[::1]"} {
			u := "http://" + host + ":" + strconv.Itoa(port) + "/"
			res := c.Post(context.Background(), u, nil, body)
			if !errors.Is(res.Err, ErrRefused) || res.Err.Error() != ErrRefused.Error() || res.StatusCode != 0 {
				t.Errorf("%s: Result = %d %v, want ErrRefused", u, res.StatusCode, res.Err)
			}
		}
		if n := srv.hits.Load() + srv.conns.Load(); n != 0 {
			t.Errorf("the receiver saw %d requests or connections, want none", n)
		}
	})

	t.Run("HTTPRefusedAtSendTime", func(t *testing.T) {
		// A webhook created under --allow-http, sent by a server restarted
		// without it.
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
		res := newClient(t, Options{Policy: Policy{AllowPrivate: true}}).Post(context.Background(), srv.URL, nil, body)
		if !errors.Is(res.Err, ErrScheme) || res.StatusCode != 0 {
			t.Errorf("Result = %d %v, want ErrScheme", res.StatusCode, res.Err)
		}
		if n := srv.conns.Load(); n != 0 {
			t.Errorf("the receiver saw %d connections, want none", n)
		}
	})

	t.Run("InvalidURL", func(t *testing.T) {
		res := newClient(t, Options{Policy: open}).Post(context.Background(), "http://[::1", nil, body)
		if res.Err == nil || res.Err.Error() != "invalid target URL" {
			t.Errorf("Err = %v, want \"invalid target URL\"", res.Err)
		}
	})

	t.Run("ProxyFromEnvironmentIgnored", func(t *testing.T) {
		proxy := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
		target := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
		// The environment proxy is skipped for loopback names, so the target
		// is reached through a name that only the fake DNS knows.
		dns := newFakeDNS(t)
		dns.set("receiver.test", "127.0.0.1")
		t.Setenv("HTTP_PROXY", proxy.URL)
		t.Setenv("http_proxy", proxy.URL)
		t.Setenv("NO_PROXY", "")
		t.Setenv("no_proxy", "")
		c := newClient(t, Options{Policy: Policy{AllowPrivate: true, AllowHTTP: true, Resolver: dns.resolver()}})
		u := "http://receiver.test:" + strconv.Itoa(target.Listener.Addr().(*net.TCPAddr).Port) + "/"
		// http.ProxyFromEnvironment reads the environment once per process,
		// so the behaviour below only bites if it runs first; hence also:
		if c.transport.Proxy != nil {
			t.Error("Transport.Proxy is set; want nil")
		}
		res := c.Post(context.Background(), u, nil, body)
		if res.Err != nil || res.StatusCode != 200 || target.hits.Load() != 1 || proxy.hits.Load() != 0 {
			t.Errorf("Result %d %v; target hits %d, proxy hits %d; want 200 from the target, none via the proxy",
				res.StatusCode, res.Err, target.hits.Load(), proxy.hits.Load())
		}
	})
}

func TestClient_Post_TLS(t *testing.T) {
	body := []byte(`{}`)
	newTLSReceiver := func(t *testing.T, h http.HandlerFunc) *receiver {
		t.Helper()
		r := &receiver{}
		r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.hits.Add(1)
			h(w, req)
		}))
		r.EnableHTTP2 = true
		r.StartTLS()
		t.Cleanup(r.Close)
		return r
	}

	t.Run("OK/HTTP2", func(t *testing.T) {
		var proto string
		var version uint16
		srv := newTLSReceiver(t, func(w http.ResponseWriter, r *http.Request) { proto, version = r.Proto, r.TLS.Version })
		c := newClient(t, Options{Policy: Policy{AllowPrivate: true}})
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		c.transport.TLSClientConfig.RootCAs = roots
		res := c.Post(context.Background(), srv.URL, nil, body)
		if res.Err != nil || res.StatusCode != 200 {
			t.Fatalf("Result = %d %v, want 200", res.StatusCode, res.Err)
		}
		if proto != "HTTP/2.0" || version < 0x0303 {
			t.Errorf("receiver saw %s over TLS version %#x, want HTTP/2.0 over TLS 1.2 or later", proto, version)
		}
	})

	t.Run("ErrTLS/UnknownAuthority", func(t *testing.T) {
		srv := newTLSReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
		res := newClient(t, Options{Policy: Policy{AllowPrivate: true}}).Post(context.Background(), srv.URL, nil, body)
		if res.Err == nil || res.Err.Error() != "TLS handshake failed: x509: certificate signed by unknown authority" {
			t.Errorf("Err = %v, want a TLS handshake failure naming the unknown authority", res.Err)
		}
		if srv.hits.Load() != 0 {
			t.Error("the request reached the receiver")
		}
	})

	t.Run("ErrTLS/NotTLS", func(t *testing.T) {
		srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
		u := strings.Replace(srv.URL, "http://", "https://", 1)
		res := newClient(t, Options{Policy: Policy{AllowPrivate: true}}).Post(context.Background(), u, nil, body)
		if res.Err == nil || res.Err.Error() != "TLS handshake failed: the server did not answer with TLS" {
			t.Errorf("Err = %v, want a TLS handshake failure", res.Err)
		}
	})

	t.Run("ErrTLS/OldVersion", func(t *testing.T) {
		r := &receiver{}
		r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.hits.Add(1) }))
		r.StartTLS()
		t.Cleanup(r.Close)
		r.TLS.MaxVersion = 0x0302 // TLS 1.1; set after StartTLS, read per handshake
		c := newClient(t, Options{Policy: Policy{AllowPrivate: true}})
		roots := x509.NewCertPool()
		roots.AddCert(r.Certificate())
		c.transport.TLSClientConfig.RootCAs = roots
		res := c.Post(context.Background(), r.URL, nil, body)
		if res.Err == nil || res.Err.Error() != "TLS handshake failed: remote error: tls: protocol version not supported" || r.hits.Load() != 0 {
			t.Errorf("Err = %v (hits %d), want a TLS handshake failure against a TLS 1.1 server", res.Err, r.hits.Load())
		}
	})
}

// TestClient_Post_DNSRebinding is the attack the dial-time check exists for:
// the name resolves to a public address when the webhook is saved and to
// 127.0.0.1 when the delivery is sent.
func TestClient_Post_DNSRebinding(t *testing.T) {
	srv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	dns := newFakeDNS(t)
	url := "http://hooks.rebind.test:" + port + "/"

	dns.set("hooks.rebind.test", "93.184.215.14")
	policy := Policy{AllowHTTP: true, Resolver: dns.resolver()}
	if err := policy.CheckURL(context.Background(), url); err != nil {
		t.Fatalf("at save time: CheckURL = %v, want nil", err)
	}

	dns.set("hooks.rebind.test", "127.0.0.1")
	before := dns.queries.Load()
	res := newClient(t, Options{Policy: policy}).Post(context.Background(), url, nil, []byte(`{}`))
	if !errors.Is(res.Err, ErrRefused) || res.StatusCode != 0 {
		t.Errorf("at send time: Result = %d %v, want ErrRefused", res.StatusCode, res.Err)
	}
	if dns.queries.Load() == before {
		t.Fatal("the dial did not ask the fake DNS: the test proves nothing")
	}
	if n := srv.conns.Load(); n != 0 {
		t.Errorf("the receiver saw %d connections, want none", n)
	}

	// The same name and resolver reach the receiver once private targets are
	// allowed, so the refusal above came from the policy and nothing else.
	policy.AllowPrivate = true
	res = newClient(t, Options{Policy: policy}).Post(context.Background(), url, nil, []byte(`{}`))
	if res.Err != nil || res.StatusCode != 200 || srv.hits.Load() != 1 {
		t.Errorf("with AllowPrivate: Result = %d %v, hits %d; want 200 and one request", res.StatusCode, res.Err, srv.hits.Load())
	}
}

func TestClient_Post_DNSFailure(t *testing.T) {
	dns := newFakeDNS(t)
	c := newClient(t, Options{Policy: Policy{AllowHTTP: true, Resolver: dns.resolver()}})
	res := c.Post(context.Background(), "http://gone.test/hook?token=secret", nil, nil)
	if res.Err == nil || res.Err.Error() != "DNS lookup of gone.test failed: no such host" {
		t.Errorf("Err = %v, want \"DNS lookup of gone.test failed: no such host\"", res.Err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
