package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// endlessJSON is a request body that streams size bytes of a JSON object
// that never ends ({"name":"xxxx…), counting what the server took from it.
type endlessJSON struct {
	size int64
	sent atomic.Int64
}

func (b *endlessJSON) Read(p []byte) (int, error) {
	sent := b.sent.Load()
	if sent >= b.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.size-sent))
	for i := range p[:n] {
		p[i] = 'x'
	}
	if sent == 0 {
		n = copy(p, `{"name":"`)
	}
	b.sent.Add(int64(n))
	return n, nil
}

// A client that streams 100 MiB at an endpoint is answered 413 as soon as
// the endpoint's limit is passed: the server stops reading there, so the
// answer comes at once and the client gets to send only the limit plus
// what the sockets buffer, never the 100 MiB. The body is chunked, so no
// Content-Length announces the size up front.
func TestBodyLimits_StreamingBody(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	wh := ts.createWebhook(a.key, validWebhook())

	const size = 100 << 20
	tests := []struct {
		name, method, path, token string
		limit                     int64
		status                    int
		code                      string
	}{
		{"CreateWebhook", "POST", "/v1/webhooks", a.key, maxBodySize, 413, hookd.ETOOLARGE},
		{"UpdateWebhook", "PATCH", "/v1/webhooks/" + wh.ID, a.key, maxBodySize, 413, hookd.ETOOLARGE},
		{"CreateOrganization", "POST", "/v1/organizations", testAdminToken, maxBodySize, 413, hookd.ETOOLARGE},
		{"Publish", "POST", "/v1/events", testAdminToken, maxEventBodySize, 413, hookd.ETOOLARGE},
		{"PublishBatch", "POST", "/v1/events/batch", testAdminToken, maxBatchBodySize, 413, hookd.ETOOLARGE},
		// Refused before the body is looked at.
		{"Unauthenticated", "POST", "/v1/webhooks", "", 0, 401, hookd.EUNAUTHORIZED},
		{"BodyIgnored", "POST", "/v1/webhooks/" + wh.ID + "/ping", a.key, 0, 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &endlessJSON{size: size}
			req, err := http.NewRequest(tt.method, ts.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = -1 // chunked: the server cannot refuse on the header alone
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				t.Fatalf("no answer after %s (client sent %d bytes): %v", time.Since(start), body.sent.Load(), err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took, sent := time.Since(start), body.sent.Load()

			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, raw)
			}
			if tt.code != "" {
				var e errorBody
				if err := json.Unmarshal(raw, &e); err != nil || e.Error.Code != tt.code {
					t.Fatalf("body %s, want code %s", raw, tt.code)
				}
			}
			// Loopback sockets buffer a few MiB each way; reading the whole
			// body would have taken all 100.
			if max := tt.limit + 24<<20; sent > max {
				t.Errorf("the client sent %d MiB before the answer, want at most %d MiB", sent>>20, max>>20)
			}
			if took > 3*time.Second {
				t.Errorf("the answer took %s", took)
			}
			t.Logf("answered %d after %s; client sent %.1f MiB", resp.StatusCode, took.Round(time.Millisecond), float64(sent)/(1<<20))
		})
	}
	if hooks := ts.listWebhooks(a.key); len(hooks) != 1 {
		t.Fatalf("%d webhooks, want only the first", len(hooks))
	}
}
