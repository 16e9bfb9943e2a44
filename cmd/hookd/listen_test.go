package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/signature"
)

// listenOutput is a bytes.Buffer that the listener's goroutines may write
// while the test reads.
type listenOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *listenOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *listenOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

var listeningLine = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)\n`)

// startListen runs `hookd listen` on a free port until the test ends and
// returns its base URL and output. The cleanup checks that it stops with
// exit code 0 once its context is cancelled.
func startListen(t *testing.T, args ...string) (string, *listenOutput) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errw := &listenOutput{}, &listenOutput{}
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, append([]string{"listen", "--listen", "127.0.0.1:0"}, args...), stdio{strings.NewReader(""), out, errw})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case c := <-code:
			if c != 0 {
				t.Errorf("hookd listen exited %d after cancel, want 0 (stderr %q)", c, errw.String())
			}
		case <-time.After(5 * time.Second):
			t.Error("hookd listen did not stop within 5s of cancel")
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningLine.FindStringSubmatch(out.String()); m != nil {
			return m[1], out
		}
		select {
		case c := <-code:
			t.Fatalf("hookd listen exited %d before listening (stderr %q)", c, errw.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no 'listening on' line within 5s; output %q", out.String())
	return "", nil
}

// postDelivery sends a delivery as hookd would and returns the status.
func postDelivery(t *testing.T, url, secret string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hookd.DeliveryHeaders(hookd.EventScanCompleted, "dlv_test1", "wh_test1", 2)
	if secret != "" {
		req.Header.Set(signature.Header, signature.Sign(secret, body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestListenCommand(t *testing.T) {
	const secret = "whsec_listen"
	payload := []byte(`{"id":"evt_1","type":"scan_completed","data":{"scan_id":"scn_1","findings":{"high":2}}}`)

	tests := []struct {
		name       string
		args       []string
		signWith   string // "" sends no signature
		body       []byte
		wantStatus int
		wantOut    []string
	}{
		{"SignatureValid", []string{"--secret", secret}, secret, payload, 200, []string{
			"POST /hooks/in?src=test", "event=scan_completed", "delivery=dlv_test1", "attempt=2",
			"signature: valid\n",
			"{\n  \"id\": \"evt_1\",\n", "\n    \"findings\": {\n      \"high\": 2\n",
		}},
		{"SignatureInvalid", []string{"--secret", secret}, "another secret", payload, 200, []string{"signature: INVALID\n", `"scan_id": "scn_1"`}},
		{"SignatureMissing", []string{"--secret", secret}, "", payload, 200, []string{"signature: missing\n"}},
		{"SignatureNotChecked", nil, secret, payload, 200, []string{"signature: not checked (no --secret)\n"}},
		{"BodyNotJSON", nil, "", []byte("plain text, not JSON"), 200, []string{"\nplain text, not JSON\n"}},
		{"Status500", []string{"--status", "500"}, "", payload, 500, []string{"delivery=dlv_test1"}},
		{"Status410", []string{"--status", "410"}, "", payload, 410, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, out := startListen(t, tt.args...)
			if got := postDelivery(t, base+"/hooks/in?src=test", tt.signWith, tt.body); got != tt.wantStatus {
				t.Errorf("status %d, want %d", got, tt.wantStatus)
			}
			got := out.String()
			for _, want := range tt.wantOut {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q:\n%s", want, got)
				}
			}
		})
	}

	t.Run("Delay", func(t *testing.T) {
		base, _ := startListen(t, "--delay", "300ms")
		start := time.Now()
		postDelivery(t, base+"/", "", payload)
		if took := time.Since(start); took < 300*time.Millisecond {
			t.Errorf("answered after %v, want at least the 300ms --delay", took)
		}
	})

	t.Run("StopsWhileDelaying", func(t *testing.T) {
		// The cleanup of startListen fails the test unless hookd listen
		// returns within 5s, although a request is waiting out a 1h delay.
		base, out := startListen(t, "--delay", "1h")
		go http.Post(base+"/", "application/json", bytes.NewReader(payload))
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), "POST /"); {
			if time.Now().After(deadline) {
				t.Fatal("the request never arrived")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestListenCommand_Errors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"ErrUsage/StatusNotANumber", []string{"--status", "ok"}, 2, "invalid value"},
		{"ErrUsage/StatusOutOfRange", []string{"--status", "42"}, 2, "--status 42"},
		{"ErrUsage/NegativeDelay", []string{"--delay", "-1s"}, 2, "--delay"},
		{"ErrUsage/UnexpectedArgument", []string{"extra"}, 2, `unexpected argument "extra"`},
		{"ErrListen/BadAddress", []string{"--listen", "127.0.0.1:notaport"}, 1, "hookd listen: listen tcp"},
		{"Help", []string{"--help"}, 0, "Usage: hookd listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			code := run(context.Background(), append([]string{"listen"}, tt.args...), stdio{strings.NewReader(""), &out, &errw})
			if code != tt.wantCode || !strings.Contains(errw.String(), tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errw.String(), tt.wantCode, tt.wantErr)
			}
		})
	}
}
