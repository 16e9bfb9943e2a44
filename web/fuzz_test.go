package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/egress"
	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/sqlite"
	"github.com/hookd-dev/hookd/storetest"
)

// writeCounter wraps a store and counts the writes that succeeded, so a
// test can tell that a refused request wrote nothing.
type writeCounter struct {
	storetest.Store
	writes atomic.Int64
}

func (s *writeCounter) CreateWebhook(ctx context.Context, w *hookd.Webhook) error {
	err := s.Store.CreateWebhook(ctx, w)
	if err == nil {
		s.writes.Add(1)
	}
	return err
}

func (s *writeCounter) UpdateWebhook(ctx context.Context, orgID, id string, update func(*hookd.Webhook) error) (*hookd.Webhook, error) {
	w, err := s.Store.UpdateWebhook(ctx, orgID, id, update)
	if err == nil {
		s.writes.Add(1)
	}
	return w, err
}

func (s *writeCounter) PublishEvents(ctx context.Context, events []*hookd.Event) ([]hookd.PublishResult, error) {
	res, err := s.Store.PublishEvents(ctx, events)
	for _, r := range res {
		if err == nil && r.Created {
			s.writes.Add(1)
		}
	}
	return res, err
}

// errorLog counts the records at level Error: an internal error or a
// recovered panic, either of which is a bug when the input is the only
// thing wrong.
type errorLog struct{ n atomic.Int64 }

func (l *errorLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelError }
func (l *errorLog) Handle(context.Context, slog.Record) error     { l.n.Add(1); return nil }
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler            { return l }
func (l *errorLog) WithGroup(string) slog.Handler                 { return l }

// fuzzEndpoints are the JSON bodies the fuzzer writes, with who may send
// them and the top-level fields each one knows.
var fuzzEndpoints = []struct {
	method, path string
	admin        bool
	fields       []string
}{
	{"POST", "/v1/webhooks", false, []string{"name", "url", "events", "secret", "include_customers", "active"}},
	{"PATCH", "/v1/webhooks/$WH", false, []string{"name", "url", "events", "secret", "include_customers", "active"}},
	{"POST", "/v1/events", true, []string{"id", "organization_id", "type", "data"}},
	{"POST", "/v1/events/batch", true, []string{"events"}},
}

// FuzzDecodeJSON sends arbitrary bodies to the API's JSON endpoints (create
// and update a webhook, publish one event or a batch), through the real
// Server on a real store, with and without --validate-events. Whatever the
// body: no 5xx and no error logged (a recovered panic is both), every
// error is SPEC §3's body with a code that maps to its status and a field
// that is a top-level field, and a refused request writes nothing. "$ORG"
// in a body stands for the organization's id, so that the seeds reach the
// store. Run it with
//
//	go test -run '^$' -fuzz FuzzDecodeJSON -fuzztime 30s ./web
func FuzzDecodeJSON(f *testing.F) {
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		f.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(f.TempDir(), "hookd.db"), Key: key})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	store := &writeCounter{Store: db}
	logs := &errorLog{}
	targets := egress.Policy{Resolver: &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS while fuzzing")
	}}}
	servers := [2]*Server{}
	for i := range servers {
		servers[i] = New(Config{
			Store: store, AdminToken: testAdminToken, Targets: targets,
			ValidateEvents: i == 1,
			RateLimit:      -1, AdminRateLimit: -1, // the fuzzer is faster than any limit
			Logger: slog.New(logs),
		})
	}

	ctx := context.Background()
	org := &hookd.Organization{Name: "Fuzz"}
	if err := db.CreateOrganization(ctx, org); err != nil {
		f.Fatal(err)
	}
	apiKey, prefix, hash := hookd.NewAPIKey()
	if err := db.CreateAPIKey(ctx, &hookd.APIKey{OrganizationID: org.ID, Name: "fuzz", Prefix: prefix, Hash: hash}); err != nil {
		f.Fatal(err)
	}
	wh := &hookd.Webhook{OrganizationID: org.ID, Name: "fuzz", URL: "https://hooks.example.com/", Events: []string{hookd.EventScanCompleted}, Active: true}
	if err := db.CreateWebhook(ctx, wh); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, endpoint uint8, validate bool, body []byte) {
		ep := fuzzEndpoints[int(endpoint)%len(fuzzEndpoints)]
		srv := servers[0]
		if validate {
			srv = servers[1]
		}
		body = bytes.ReplaceAll(body, []byte("$ORG"), []byte(org.ID))
		req := httptest.NewRequest(ep.method, strings.Replace(ep.path, "$WH", wh.ID, 1), bytes.NewReader(body))
		token := apiKey
		if ep.admin {
			token = testAdminToken
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		writes, errs := store.writes.Load(), logs.n.Load()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)

		status, out := rec.Code, rec.Body.Bytes()
		if status >= 500 || logs.n.Load() != errs {
			t.Fatalf("%s %s %q: status %d, %d error logs; body %s", ep.method, ep.path, body, status, logs.n.Load()-errs, out)
		}
		if status < 400 {
			if !json.Valid(out) {
				t.Fatalf("status %d with a body that is not JSON: %q", status, out)
			}
			if ep.method == "POST" && ep.path == "/v1/webhooks" {
				// Keep the organization under its 100 webhooks, so creates
				// keep reaching the store.
				var created struct{ ID string }
				json.Unmarshal(out, &created)
				if err := db.DeleteWebhook(ctx, org.ID, created.ID); err != nil {
					t.Fatal(err)
				}
			}
			return
		}
		if n := store.writes.Load() - writes; n != 0 {
			t.Fatalf("status %d, but %d writes were made; body %s", status, n, out)
		}
		var e struct {
			Error *struct {
				Code    string  `json:"code"`
				Message string  `json:"message"`
				Field   *string `json:"field"`
			} `json:"error"`
		}
		if err := json.Unmarshal(out, &e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("status %d with a body that is not an error body: %q", status, out)
		}
		if errorStatus(e.Error.Code) != status || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("status %d with code %s and Content-Type %q", status, e.Error.Code, rec.Header().Get("Content-Type"))
		}
		if e.Error.Field != nil && !topLevelField(body, ep.fields, *e.Error.Field) {
			t.Fatalf("field %q is not a top-level field of %q", *e.Error.Field, body)
		}
	})
}

// topLevelField reports whether field is one the endpoint knows or a key
// of the body's top-level object, as far as the body parses (an unknown
// field is named as sent, and may come before a syntax error).
func topLevelField(body []byte, known []string, field string) bool {
	if slices.Contains(known, field) {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if tok == field {
			return true
		}
		var value json.RawMessage
		if dec.Decode(&value) != nil {
			return false
		}
	}
	return false
}
