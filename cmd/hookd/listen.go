package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/signature"
)

// listenMaxBody bounds what hookd listen reads of one request; hookd's own
// deliveries stay far below it.
const listenMaxBody = 10 << 20

// runListen is `hookd listen`: a receiver for development that prints every
// request it gets, checks its signature when given the secret, and answers
// with a chosen status after a chosen delay, so that retries and timeouts
// can be watched from a terminal. It returns nil when ctx ends.
func runListen(ctx context.Context, args []string, std stdio) error {
	fs := flag.NewFlagSet("hookd listen", flag.ContinueOnError)
	fs.SetOutput(std.err)
	addr := fs.String("listen", "127.0.0.1:9000", "`address` to listen on; port 0 picks a free port")
	secret := fs.String("secret", "", "the webhook's `secret`; when set, every signature is checked")
	status := fs.Int("status", http.StatusOK, "HTTP `status` to answer every request with (200–599)")
	delay := fs.Duration("delay", 0, "how long to wait before answering, e.g. 2s to watch timeouts and retries")
	fs.Usage = func() {
		fmt.Fprint(std.err, `Usage: hookd listen [--listen 127.0.0.1:9000] [--secret S] [--status 200] [--delay 0s]

Receives webhook deliveries on your machine: prints each request (event,
delivery id, attempt, signature verdict, body) and answers --status.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	switch {
	case fs.NArg() > 0:
		return &exitError{code: 2, msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	case *status < 200 || *status > 599:
		return &exitError{code: 2, msg: fmt.Sprintf("--status %d: want an HTTP status from 200 to 599", *status)}
	case *delay < 0:
		return &exitError{code: 2, msg: "--delay must not be negative"}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err // "listen tcp 127.0.0.1:9000: bind: address already in use"
	}
	fmt.Fprintf(std.out, "listening on http://%s\n", ln.Addr())

	srv := &http.Server{
		Handler: &listenHandler{
			out:    std.out,
			secret: *secret,
			status: *status,
			delay:  *delay,
		},
		ReadHeaderTimeout: 10 * time.Second,
		// Requests waiting out --delay end as soon as the command is stopped.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    log.New(std.err, "hookd listen: ", 0),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		srv.Close()
	}
	return nil
}

// listenHandler prints each request as one block: a summary line, then the
// body. Blocks are written whole, so concurrent deliveries do not interleave.
type listenHandler struct {
	out    io.Writer
	secret string
	status int
	delay  time.Duration

	mu sync.Mutex // serializes writes to out
}

func (h *listenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, listenMaxBody))
	tooLarge := err != nil

	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s  event=%s delivery=%s attempt=%s  signature: %s\n",
		time.Now().Format("2006-01-02 15:04:05"), r.Method, r.URL.RequestURI(),
		headerOrDash(r, hookd.HeaderEvent), headerOrDash(r, hookd.HeaderDelivery), headerOrDash(r, hookd.HeaderAttempt),
		listenVerdict(h.secret, r.Header.Get(signature.Header), body, tooLarge))
	switch {
	case tooLarge:
		fmt.Fprintf(&b, "(body over %d MiB, not read; answered 413)\n", listenMaxBody>>20)
	default:
		writeBody(&b, body)
	}
	b.WriteByte('\n')
	h.mu.Lock()
	h.out.Write(b.Bytes())
	h.mu.Unlock()

	if tooLarge {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if h.delay > 0 {
		t := time.NewTimer(h.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return // the sender gave up, or hookd listen is stopping
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(h.status)
	fmt.Fprintln(w, http.StatusText(h.status))
}

func headerOrDash(r *http.Request, name string) string {
	if v := r.Header.Get(name); v != "" {
		return v
	}
	return "-"
}

// listenVerdict is what the summary line says about the signature.
func listenVerdict(secret, header string, body []byte, tooLarge bool) string {
	switch {
	case secret == "":
		return "not checked (no --secret)"
	case header == "":
		return "missing"
	case tooLarge:
		return "not checked (body too large)"
	}
	switch signature.Verify(secret, body, header) {
	case nil:
		return "valid"
	case signature.ErrMalformed:
		return "INVALID (malformed header)"
	default:
		return "INVALID"
	}
}

// writeBody prints a body for people: indented when it is JSON, as is when
// it is other text, as a hex dump otherwise.
func writeBody(b *bytes.Buffer, body []byte) {
	switch {
	case len(body) == 0:
		b.WriteString("(empty body)\n")
	case json.Valid(body):
		json.Indent(b, body, "", "  ")
		b.WriteByte('\n')
	case utf8.Valid(body):
		b.Write(body)
		if body[len(body)-1] != '\n' {
			b.WriteByte('\n')
		}
	default:
		fmt.Fprintf(b, "(%d bytes, not text)\n", len(body))
		b.WriteString(hex.Dump(body))
	}
}
