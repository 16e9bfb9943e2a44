package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookd-dev/hookd/client"
	"github.com/hookd-dev/hookd/seal"
)

// syncWriter is a log sink safe for the server's goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// SPEC §6 "Secret": a full scenario at debug level — organizations, an API
// key, a portal user, webhooks with secrets, publishing, failed and
// successful deliveries, a secret changed — and then neither the logs nor
// any file of the store contains a webhook secret, an API key, a password
// or the admin token.
func TestSecrets_NeverInLogsOrStore(t *testing.T) {
	dir := t.TempDir()
	logs := &syncWriter{}
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Database = "sqlite:" + filepath.Join(dir, "hookd.db")
	cfg.AdminToken = "admin-token-SENTINEL-0123456789"
	cfg.SecretKey = seal.GenerateKey()
	cfg.AllowHTTP, cfg.AllowPrivate = true, true
	cfg.RetrySchedule = "20ms"
	cfg.LogLevel = "debug"
	m := NewMain(cfg, io.Discard, logs)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer failing.Close()

	ctx := context.Background()
	admin := client.New(m.URL(), cfg.AdminToken)
	org, err := admin.CreateOrganization(ctx, client.OrganizationInput{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateAPIKey(ctx, org.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	password := "password-SENTINEL-42"
	if _, err := admin.CreateUser(ctx, org.ID, "ada@example.com", password); err != nil {
		t.Fatal(err)
	}
	tenant := client.New(m.URL(), key.Key)
	secrets := []string{"whsec-SENTINEL-one", "whsec-SENTINEL-two", "whsec-SENTINEL-three"}
	good, err := tenant.CreateWebhook(ctx, client.WebhookInput{Name: client.Ptr("ok"), URL: client.Ptr(ok.URL), Events: []string{"scan_completed"}, Secret: &secrets[0]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.CreateWebhook(ctx, client.WebhookInput{Name: client.Ptr("bad"), URL: client.Ptr(failing.URL), Events: []string{"scan_completed"}, Secret: &secrets[1]}); err != nil {
		t.Fatal(err)
	}
	// Wrong attempts log too: a bad key, a bad password-like token.
	client.New(m.URL(), key.Key[:len(key.Key)-4]+"XXXX").ListWebhooks(ctx, client.ListOptions{})
	for range 5 {
		if _, _, err := admin.Publish(ctx, client.EventInput{OrganizationID: org.ID, Type: "scan_completed", Data: map[string]any{"scan_id": "1"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tenant.UpdateWebhook(ctx, good.ID, client.WebhookInput{Secret: &secrets[2]}); err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.Ping(ctx, good.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let deliveries, retries and failures log
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := m.Close(closeCtx); err != nil {
		t.Fatal(err)
	}

	forbidden := append([]string{cfg.AdminToken, key.Key, password}, secrets...)
	if !strings.Contains(logs.String(), "delivery") {
		t.Fatalf("the scenario logged no delivery lines; the search would prove nothing:\n%s", logs.String())
	}
	for _, s := range forbidden {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the logs contain %q", s)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) == 0 {
		t.Fatal("no store files to search")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range forbidden {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains %q", filepath.Base(f), s)
			}
		}
	}
}
