package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd/client"
	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/signature"
)

// rotate-key moves every webhook secret to a new key: a server started
// with the new key signs with the same secret, and a wrong old key changes
// nothing.
func TestRotateKey(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	oldKey, newKey, otherKey := seal.GenerateKey(), seal.GenerateKey(), seal.GenerateKey()
	start := func(key string) *Main {
		t.Helper()
		cfg := DefaultConfig()
		cfg.Listen, cfg.Database, cfg.SecretKey = "127.0.0.1:0", db, key
		cfg.AdminToken = "admin-token-0123456789"
		cfg.AllowHTTP, cfg.AllowPrivate = true, true
		m := NewMain(cfg, io.Discard, io.Discard)
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return m
	}
	rotate := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"rotate-key", "--database", db}, args...), stdio{strings.NewReader(""), &out, &errb})
		return code, out.String() + errb.String()
	}
	got := make(chan *http.Request, 4)
	bodies := make(chan []byte, 4)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer rc.Close()

	ctx := context.Background()
	m := start(oldKey)
	admin := client.New(m.URL(), m.Config.AdminToken)
	org, _ := admin.CreateOrganization(ctx, client.OrganizationInput{Name: "Acme"})
	key, _ := admin.CreateAPIKey(ctx, org.ID, "ci")
	wh, err := client.New(m.URL(), key.Key).CreateWebhook(ctx, client.WebhookInput{Name: client.Ptr("r"), URL: client.Ptr(rc.URL), Events: []string{"scan_completed"}, Secret: client.Ptr("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	m.Close(ctx)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"ErrWrongOldKey", []string{"--secret-key", otherKey, "--new-secret-key", newKey}, "nothing changed"},
		{"ErrNoNewKey", []string{"--secret-key", oldKey}, "--new-secret-key"},
		{"ErrSameKey", []string{"--secret-key", oldKey, "--new-secret-key", oldKey}, "same"},
	} {
		if code, out := rotate(tc.args...); code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, %q; want a failure mentioning %q", tc.name, code, out, tc.want)
		}
	}
	if code, out := rotate("--secret-key", oldKey, "--new-secret-key", newKey); code != 0 || !strings.Contains(out, "1 webhook secret(s) re-sealed") {
		t.Fatalf("rotate-key: exit %d, %q", code, out)
	}

	m = start(newKey)
	defer m.Close(ctx)
	if _, err := client.New(m.URL(), key.Key).Ping(ctx, wh.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if err := signature.Verify("s3cret", <-bodies, r.Header.Get("X-CG-Hook-Signature")); err != nil {
			t.Fatalf("after rotation the delivery is not signed with the webhook's secret: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery after rotation")
	}
}
