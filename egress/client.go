package egress

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hookd-dev/hookd"
)

// DefaultTimeout bounds an attempt when Options.Timeout is zero (SPEC §5,
// --delivery-timeout).
const DefaultTimeout = 10 * time.Second

// drainLimit is how much of an answer past MaxResponseBody is read and
// thrown away so that the connection can carry the next delivery; past it,
// closing the connection is cheaper than reading on.
const drainLimit = 64 << 10

// Options configures a Client. The zero value is usable: safe policy,
// 10 s timeout, 4 KiB of each answer kept.
type Options struct {
	Policy Policy
	// Timeout bounds a whole attempt: name lookup, connect, TLS, sending
	// the request and reading the kept part of the answer. 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBody is how many bytes of each answer are kept; 0 means
	// hookd.MaxResponseBody.
	MaxResponseBody int
	// MaxConnsPerHost caps the connections to one host:port, idle and in
	// use; 0 means no cap (the dispatcher's per-webhook limit applies).
	MaxConnsPerHost int
}

// Client posts deliveries to receivers. It keeps one keep-alive pool per
// target host and is safe for concurrent use.
type Client struct {
	policy    Policy
	timeout   time.Duration
	maxBody   int
	transport *http.Transport
	http      *http.Client
}

// Result is what came of one POST.
type Result struct {
	// StatusCode is the answer's status, 0 when no HTTP answer came.
	StatusCode int
	// Header is the answer's header, nil when no HTTP answer came.
	Header http.Header
	// Body holds at most MaxResponseBody bytes of the answer.
	Body []byte
	// Duration runs from the start of the attempt until the kept part of
	// the body was read, or until the attempt failed.
	Duration time.Duration
	// Err is nil whenever an HTTP answer arrived, whatever its status
	// (3xx, 4xx and 5xx included): judging the status is the caller's
	// business. Otherwise its text is fit for the delivery log ("timeout
	// after 10s", "connection refused", ErrRefused's text, "TLS handshake
	// failed: …") and never contains the URL, which may carry a token.
	// errors.Is sees the cause: ErrRefused, ErrScheme,
	// context.DeadlineExceeded, syscall.ECONNREFUSED …
	Err error
}

// NewClient returns a Client for o.
func NewClient(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResponseBody <= 0 {
		o.MaxResponseBody = hookd.MaxResponseBody
	}
	policy := o.Policy
	dialer := &net.Dialer{
		Timeout:   o.Timeout,
		KeepAlive: 30 * time.Second,
		Resolver:  policy.Resolver,
		// The policy is enforced here, on the ip:port about to be connected,
		// after any name resolution: a name that resolved to a public
		// address when the webhook was saved and to 127.0.0.1 now is still
		// refused.
		ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return ErrRefused
			}
			return policy.CheckAddr(ap.Addr())
		},
	}
	t := &http.Transport{
		Proxy:               nil, // never HTTP(S)_PROXY: the policy must see the real target
		DialContext:         dialer.DialContext,
		ForceAttemptHTTP2:   true,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: o.Timeout,
		MaxIdleConns:        0, // no global cap; per host below
		// Many webhooks often share a host, and a connection closed for
		// want of room in the idle pool is dialed again at once; 256 covers
		// the attempts a host gets at once but for the largest fan-outs.
		MaxIdleConnsPerHost: 256,
		MaxConnsPerHost:     o.MaxConnsPerHost,
		IdleConnTimeout:     90 * time.Second,
		// No automatic Accept-Encoding: the request carries exactly the
		// headers of SPEC §2, and the kept body is what the receiver sent.
		DisableCompression: true,
	}
	return &Client{
		policy:    policy,
		timeout:   o.Timeout,
		maxBody:   o.MaxResponseBody,
		transport: t,
		http: &http.Client{
			Transport: t,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a 3xx is the answer, never followed
			},
		},
	}
}

// CloseIdleConnections closes the keep-alive connections not in use.
func (c *Client) CloseIdleConnections() { c.transport.CloseIdleConnections() }

// Post sends body to url with header (the caller's map is not modified)
// and reports what came back. The whole attempt is bounded by the
// client's Timeout and by ctx. The target address is checked against the
// policy when it is dialed; a refused target receives nothing.
func (c *Client) Post(ctx context.Context, url string, header http.Header, body []byte) Result {
	start := time.Now()
	res := c.post(ctx, start, url, header, body)
	if res.Duration == 0 {
		res.Duration = time.Since(start)
	}
	return res
}

func (c *Client) post(parent context.Context, start time.Time, url string, header http.Header, body []byte) Result {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Result{Err: &sendError{"invalid target URL", err}}
	}
	switch {
	case req.URL.Scheme == "https":
	case req.URL.Scheme == "http" && c.policy.AllowHTTP:
	default:
		// A webhook saved under --allow-http must not be sent in clear by a
		// server that has since been restarted without it.
		return Result{Err: &sendError{ErrScheme.Error(), ErrScheme}}
	}
	if header != nil {
		req.Header = header.Clone()
	}
	// The trace is the one reliable witness of a failed TLS handshake: the
	// transport rewrites some handshake errors into texts of its own.
	var handshakeErr atomic.Pointer[error]
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err != nil {
				handshakeErr.CompareAndSwap(nil, &err)
			}
		},
	}))
	resp, err := c.http.Do(req)
	if err != nil {
		var tlsErr error
		if p := handshakeErr.Load(); p != nil {
			tlsErr = *p
		}
		return Result{Err: c.describe(parent, start, err, tlsErr)}
	}
	defer resp.Body.Close()
	// The body is read only up to the cap, whatever Content-Length says; a
	// read error after the status arrived leaves a shorter body, not a
	// failed attempt.
	kept, _ := io.ReadAll(io.LimitReader(resp.Body, int64(c.maxBody)))
	took := time.Since(start)
	// Draining a little lets HTTP/1.1 reuse the connection; a larger rest
	// is cut off by Close, which then discards the connection.
	io.CopyN(io.Discard, resp.Body, drainLimit)
	return Result{StatusCode: resp.StatusCode, Header: resp.Header, Body: kept, Duration: took}
}

// sendError carries a delivery-log text and the cause behind it.
type sendError struct {
	msg string
	err error
}

func (e *sendError) Error() string { return e.msg }
func (e *sendError) Unwrap() error { return e.err }

// describe turns a transport error into a short text for the delivery log;
// tlsErr is the error of a failed TLS handshake, if there was one. The
// *url.Error wrapper is never shown, since its text holds the URL.
func (c *Client) describe(parent context.Context, start time.Time, err, tlsErr error) error {
	var dnsErr *net.DNSError
	var msg string
	switch {
	case errors.Is(err, ErrRefused):
		msg = ErrRefused.Error()
	case errors.Is(parent.Err(), context.Canceled):
		msg = "attempt cancelled"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		msg = "timeout after " + c.limit(parent, start)
	case tlsErr != nil:
		msg = "TLS handshake failed: " + tlsText(tlsErr)
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			msg = "DNS lookup of " + dnsErr.Name + " failed: no such host"
		} else {
			msg = "DNS lookup of " + dnsErr.Name + " failed: " + dnsErr.Err
		}
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		msg = "connection reset by peer"
	case errors.Is(err, syscall.EHOSTUNREACH):
		msg = "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		msg = "network is unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		msg = "connection closed by the server before it answered"
	default:
		msg = innermost(err)
	}
	if tlsErr != nil && !errors.Is(err, tlsErr) {
		err = errors.Join(err, tlsErr) // keep the handshake cause reachable by errors.As
	}
	return &sendError{msg, err}
}

// tlsText says why a handshake failed, without crypto/tls's prefixes.
func tlsText(err error) string {
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &verify):
		return verify.Err.Error() // "x509: certificate signed by unknown authority" …
	case errors.As(err, &record):
		return "the server did not answer with TLS"
	}
	return err.Error() // "remote error: tls: protocol version not supported" …
}

// limit is the time the attempt was given: the client's Timeout, or less
// when the caller's deadline came first (a dispatcher usually sets its own
// deadline of the same length, a moment earlier). It is rounded so that
// that moment does not show: "10s", not "9.999873s".
func (c *Client) limit(parent context.Context, start time.Time) string {
	d := c.timeout
	if dl, ok := parent.Deadline(); ok && dl.Sub(start) < d {
		d = dl.Sub(start)
	}
	if d >= time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// innermost returns the text of the deepest wrapped error, which is the
// cause without the URL or addresses that outer layers add.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
