package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd-dev/hookd/egress"
	"github.com/hookd-dev/hookd/postgres"
	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/sqlite"
	"github.com/hookd-dev/hookd/storetest"
)

// Every store of the project satisfies web's narrow view of it.
var (
	_ Store      = storetest.Store(nil)
	_ Store      = (*sqlite.DB)(nil)
	_ URLChecker = egress.Policy{}
)

const testAdminToken = "test-admin-token-0123456789"

// newTestStore returns a fresh, empty store closed when the test ends. It
// is the one place that chooses the store the web tests run against.
func newTestStore(t *testing.T) storetest.Store {
	t.Helper()
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("HOOKD_TEST_STORE") == "postgres" {
		return newPostgresTestStore(t, key)
	}
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Key: key})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newPostgresTestStore runs the API tests on PostgreSQL instead
// (HOOKD_TEST_STORE=postgres, as .ci/run does once), in a fresh schema
// dropped afterwards.
func newPostgresTestStore(t *testing.T, key *seal.Key) storetest.Store {
	t.Helper()
	url := os.Getenv("HOOKD_TEST_POSTGRES_URL")
	if url == "" {
		t.Fatal("HOOKD_TEST_STORE=postgres needs HOOKD_TEST_POSTGRES_URL")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "hookd_web_" + hex.EncodeToString(b[:])
	db, err := postgres.Open(context.Background(), postgres.Config{URL: url, Key: key, Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		db.Close()
		if c, err := pgx.Connect(context.Background(), url); err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	return db
}

// testServer is a Server on a real HTTP listener, with what a test needs
// to drive it and watch it.
type testServer struct {
	t       *testing.T
	URL     string
	srv     *Server
	store   storetest.Store
	notify  atomic.Int64 // calls of Config.Notify
	logs    *syncBuffer
	metrics http.Handler
}

type serverOption func(*Config)

func withAllowHTTP(allow bool) serverOption {
	return func(c *Config) { c.AllowHTTP = allow; c.Targets = egress.Policy{AllowPrivate: true, AllowHTTP: allow} }
}

func withTargets(tc URLChecker) serverOption { return func(c *Config) { c.Targets = tc } }

func withMetrics(h http.Handler) serverOption { return func(c *Config) { c.Metrics = h } }

// withStore serves through s (a wrapper of the test's store, say).
func withStore(s Store) serverOption { return func(c *Config) { c.Store = s } }

func withValidateEvents() serverOption { return func(c *Config) { c.ValidateEvents = true } }

// newTestServer serves a Server over store (a fresh one when nil) with the
// test defaults: http:// and private targets allowed.
func newTestServer(t *testing.T, store storetest.Store, opts ...serverOption) *testServer {
	t.Helper()
	if store == nil {
		store = newTestStore(t)
	}
	ts := &testServer{t: t, store: store, logs: &syncBuffer{}}
	cfg := Config{
		Store:      store,
		AdminToken: testAdminToken,
		AllowHTTP:  true,
		Targets:    egress.Policy{AllowPrivate: true, AllowHTTP: true},
		Notify:     func() { ts.notify.Add(1) },
		Logger:     slog.New(slog.NewJSONHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	ts.srv = New(cfg)
	hs := httptest.NewServer(ts.srv)
	t.Cleanup(hs.Close)
	ts.URL = hs.URL
	return ts
}

// response is an answer of the server, body read.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request. body is sent as is when it is a string or []byte and
// as JSON otherwise; token "" sends no Authorization header.
func (ts *testServer) do(method, path, token string, body any) *response {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// want fails unless the answer has status, and decodes its body into out
// (when not nil).
func (r *response) want(t *testing.T, status int, out any) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.Status, status, r.Body)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			t.Fatalf("decoding %s: %v", r.Body, err)
		}
	}
}

// wantError fails unless the answer is an error with status, code and
// field ("" = no field) in SPEC §3's format.
func (r *response) wantError(t *testing.T, status int, code, field string) {
	t.Helper()
	var body struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Error == nil {
		t.Fatalf("status %d, body %s: not an error body", r.Status, r.Body)
	}
	gotField, hasField := body.Error["field"]
	switch {
	case r.Status != status || body.Error["code"] != code:
		t.Fatalf("got %d %v, want %d %s; body: %s", r.Status, body.Error["code"], status, code, r.Body)
	case field == "" && hasField:
		t.Fatalf("field = %v, want none; body: %s", gotField, r.Body)
	case field != "" && gotField != field:
		t.Fatalf("field = %v, want %q; body: %s", gotField, field, r.Body)
	case body.Error["message"] == "" || body.Error["message"] == nil:
		t.Fatalf("error without a message: %s", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
}

// errorMessage returns the message of an error answer.
func (r *response) errorMessage(t *testing.T) string {
	t.Helper()
	var body errorBody
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Error.Message
}

// Objects as the tests see them: decoded by field name, as a client would.
type (
	orgObj struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		PartnerID *string   `json:"partner_id"`
		CreatedAt time.Time `json:"created_at"`
	}
	webhookObj struct {
		ID               string     `json:"id"`
		OrganizationID   string     `json:"organization_id"`
		Name             string     `json:"name"`
		URL              string     `json:"url"`
		Events           []string   `json:"events"`
		Active           bool       `json:"active"`
		IncludeCustomers bool       `json:"include_customers"`
		HasSecret        bool       `json:"has_secret"`
		DisabledReason   *string    `json:"disabled_reason"`
		DisabledAt       *time.Time `json:"disabled_at"`
		CreatedAt        time.Time  `json:"created_at"`
		UpdatedAt        time.Time  `json:"updated_at"`
	}
	eventObj struct {
		ID             string    `json:"id"`
		Type           string    `json:"type"`
		OrganizationID string    `json:"organization_id"`
		CreatedAt      time.Time `json:"created_at"`
		Deliveries     int       `json:"deliveries"`
	}
	deliveryObj struct {
		ID             string     `json:"id"`
		EventID        string     `json:"event_id"`
		EventType      string     `json:"event_type"`
		WebhookID      string     `json:"webhook_id"`
		Status         string     `json:"status"`
		Attempts       int        `json:"attempts"`
		CreatedAt      time.Time  `json:"created_at"`
		LastAttemptAt  *time.Time `json:"last_attempt_at"`
		NextAttemptAt  *time.Time `json:"next_attempt_at"`
		LastStatusCode *int       `json:"last_status_code"`
	}
	listObj[T any] struct {
		Data       []T     `json:"data"`
		NextCursor *string `json:"next_cursor"`
	}
)

// tenant is an organization with an API key.
type tenant struct {
	org orgObj
	key string
}

// createOrg creates an organization (partnerID "" for none) with an API key.
func (ts *testServer) createOrg(name, partnerID string) tenant {
	ts.t.Helper()
	in := map[string]any{"name": name}
	if partnerID != "" {
		in["partner_id"] = partnerID
	}
	var tn tenant
	ts.do("POST", "/v1/organizations", testAdminToken, in).want(ts.t, http.StatusCreated, &tn.org)
	var key struct {
		Key string `json:"key"`
	}
	ts.do("POST", "/v1/organizations/"+tn.org.ID+"/api-keys", testAdminToken, map[string]any{"name": "test"}).want(ts.t, http.StatusCreated, &key)
	tn.key = key.Key
	return tn
}

// validWebhook is a create body that passes every rule; edit returns a
// copy changed by fn.
func validWebhook(edit ...func(map[string]any)) map[string]any {
	m := map[string]any{
		"name":   "Scans",
		"url":    "https://hooks.example.com/hookd",
		"events": []string{"scan_started", "scan_completed"},
		"secret": "s3cret",
	}
	for _, fn := range edit {
		fn(m)
	}
	return m
}

func (ts *testServer) createWebhook(key string, body map[string]any) webhookObj {
	ts.t.Helper()
	var w webhookObj
	ts.do("POST", "/v1/webhooks", key, body).want(ts.t, http.StatusCreated, &w)
	return w
}

func (ts *testServer) getWebhook(key, id string) webhookObj {
	ts.t.Helper()
	var w webhookObj
	ts.do("GET", "/v1/webhooks/"+id, key, nil).want(ts.t, http.StatusOK, &w)
	return w
}

// listWebhooks returns every webhook of the key's organization.
func (ts *testServer) listWebhooks(key string) []webhookObj {
	ts.t.Helper()
	var l listObj[webhookObj]
	ts.do("GET", "/v1/webhooks?limit=200", key, nil).want(ts.t, http.StatusOK, &l)
	return l.Data
}

// listDeliveries returns every delivery of a webhook.
func (ts *testServer) listDeliveries(key, webhookID string) []deliveryObj {
	ts.t.Helper()
	var l listObj[deliveryObj]
	ts.do("GET", "/v1/webhooks/"+webhookID+"/deliveries?limit=200", key, nil).want(ts.t, http.StatusOK, &l)
	return l.Data
}

func (ts *testServer) publish(orgID, typ string, extra map[string]any) (*response, eventObj) {
	ts.t.Helper()
	in := map[string]any{"organization_id": orgID, "type": typ, "data": map[string]any{"scan_id": "scn_1"}}
	for k, v := range extra {
		in[k] = v
	}
	r := ts.do("POST", "/v1/events", testAdminToken, in)
	var e eventObj
	if r.Status < 300 {
		json.Unmarshal(r.Body, &e)
	}
	return r, e
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// equalJSON fails unless a and b encode to the same JSON.
func equalJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("%s changed:\n got %s\nwant %s", what, g, w)
	}
}
