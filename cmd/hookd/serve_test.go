package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/signature"
)

// Bad configuration stops serve at once with one line naming the setting.
func TestServe_ConfigErrors(t *testing.T) {
	key := seal.GenerateKey()
	token := "admin-token-0123456789"
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		setting string
	}{
		{"ErrNoAdminToken", []string{"--secret-key", key}, nil, "--admin-token"},
		{"ErrShortAdminToken", []string{"--secret-key", key, "--admin-token", "short"}, nil, "--admin-token"},
		{"ErrNoSecretKey", []string{"--admin-token", token}, nil, "--secret-key"},
		{"ErrBadSecretKey", []string{"--admin-token", token, "--secret-key", "c2hvcnQ="}, nil, "--secret-key"},
		{"ErrRetryScheduleDecreasing", []string{"--admin-token", token, "--secret-key", key, "--retry-schedule", "10m,2m"}, nil, "--retry-schedule"},
		{"ErrRetryScheduleGarbage", []string{"--admin-token", token, "--secret-key", key, "--retry-schedule", "soon"}, nil, "--retry-schedule"},
		{"ErrTimeoutZero", []string{"--admin-token", token, "--secret-key", key, "--delivery-timeout", "0s"}, nil, "--delivery-timeout"},
		{"ErrRole", []string{"--admin-token", token, "--secret-key", key, "--role", "boss"}, nil, "--role"},
		{"ErrRoleNeedsPostgres", []string{"--admin-token", token, "--secret-key", key, "--role", "worker"}, nil, "--role"},
		{"ErrDatabaseScheme", []string{"--admin-token", token, "--secret-key", key, "--database", "mysql://x"}, nil, "--database"},
		{"ErrSQLiteSynchronous", []string{"--admin-token", token, "--secret-key", key, "--sqlite-synchronous", "OFF"}, nil, "--sqlite-synchronous"},
		{"ErrDisableAfterFailuresNegative", []string{"--admin-token", token, "--secret-key", key, "--disable-after-failures", "-1"}, nil, "--disable-after-failures"},
		{"ErrDisableAfterNegative", []string{"--admin-token", token, "--secret-key", key, "--disable-after", "-1h"}, nil, "--disable-after"},
		{"ErrEnvDisableAfterFailures", []string{"--admin-token", token, "--secret-key", key}, map[string]string{"HOOKD_DISABLE_AFTER_FAILURES": "many"}, "HOOKD_DISABLE_AFTER_FAILURES"},
		{"ErrEnvDisableAfter", []string{"--admin-token", token, "--secret-key", key}, map[string]string{"HOOKD_DISABLE_AFTER": "1 day"}, "HOOKD_DISABLE_AFTER"},
		{"ErrMaxWebhooksZero", []string{"--admin-token", token, "--secret-key", key, "--max-webhooks-per-organization", "0"}, nil, "--max-webhooks-per-organization"},
		{"ErrEnvMaxWebhooks", []string{"--admin-token", token, "--secret-key", key}, map[string]string{"HOOKD_MAX_WEBHOOKS_PER_ORGANIZATION": "lots"}, "HOOKD_MAX_WEBHOOKS_PER_ORGANIZATION"},
		{"ErrReservedWorkersAll", []string{"--admin-token", token, "--secret-key", key, "--workers", "8", "--reserved-workers", "8"}, nil, "--reserved-workers"},
		{"ErrEnvReservedWorkersNegative", []string{"--admin-token", token, "--secret-key", key}, map[string]string{"HOOKD_RESERVED_WORKERS": "-1"}, "--reserved-workers"},
		{"ErrLogFormat", []string{"--admin-token", token, "--secret-key", key, "--log-format", "xml"}, nil, "--log-format"},
		{"ErrRetentionNegative", []string{"--admin-token", token, "--secret-key", key, "--retention", "-1h"}, nil, "--retention"},
		{"ErrRetentionInterval", []string{"--admin-token", token, "--secret-key", key}, map[string]string{"HOOKD_RETENTION_INTERVAL": "0s"}, "--retention-interval"},
		{"ErrEnvAdminTokenShort", []string{"--secret-key", key}, map[string]string{"HOOKD_ADMIN_TOKEN": "short"}, "--admin-token"},
		{"ErrEnvBool", []string{"--admin-token", token, "--secret-key", key}, map[string]string{"HOOKD_ALLOW_HTTP": "maybe"}, "HOOKD_ALLOW_HTTP"},
		{"ErrEnvDuration", []string{"--admin-token", token, "--secret-key", key}, map[string]string{"HOOKD_DELIVERY_TIMEOUT": "10"}, "HOOKD_DELIVERY_TIMEOUT"},
		{"ErrListenBusy", []string{"--admin-token", token, "--secret-key", key, "--listen", "256.0.0.1:1"}, nil, "--listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := run(ctx, append([]string{"serve"}, tc.args...), stdio{strings.NewReader(""), &out, &errb})
			if code == 0 {
				t.Fatalf("serve accepted bad configuration")
			}
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.setting) {
				t.Fatalf("stderr = %q, want one line naming %s", errb.String(), tc.setting)
			}
		})
	}
}

// A flag given on the command line wins over its environment twin.
func TestParseConfig_FlagBeatsEnv(t *testing.T) {
	env := map[string]string{"HOOKD_LISTEN": "127.0.0.1:1111", "HOOKD_RETRY_SCHEDULE": "1s,2s", "HOOKD_ALLOW_HTTP": "true"}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg, err := parseConfig(fs, []string{"--listen", "127.0.0.1:2222"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:2222" || cfg.RetrySchedule != "1s,2s" || !cfg.AllowHTTP {
		t.Fatalf("cfg = %+v", cfg)
	}
}

// testServer runs hookd in-process on port 0 with a temporary store.
func testServer(t *testing.T, mutate func(*Config)) *Main {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Database = "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	cfg.AdminToken = "admin-token-0123456789"
	cfg.SecretKey = seal.GenerateKey()
	cfg.AllowHTTP, cfg.AllowPrivate = true, true
	cfg.RetrySchedule = "50ms,100ms,200ms"
	if mutate != nil {
		mutate(&cfg)
	}
	m := NewMain(cfg, io.Discard, io.Discard)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	return m
}

// api sends a JSON request and decodes the answer into out (if not nil),
// failing the test unless the status is want.
func api(t *testing.T, base, token, method, path string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
}

// setupTenant creates an organization with an API key and one webhook
// subscribed to scan_completed, and returns the organization id and key.
func setupTenant(t *testing.T, base, admin, url, secret string) (orgID, key string) {
	t.Helper()
	var org struct{ ID string }
	api(t, base, admin, "POST", "/v1/organizations", map[string]any{"name": "Acme"}, 201, &org)
	var k struct{ Key string }
	api(t, base, admin, "POST", "/v1/organizations/"+org.ID+"/api-keys", map[string]any{"name": "ci"}, 201, &k)
	api(t, base, k.Key, "POST", "/v1/webhooks", map[string]any{"name": "recv", "url": url, "events": []string{"scan_completed"}, "secret": secret}, 201, nil)
	return org.ID, k.Key
}

// The whole path in one process: API → store → dispatcher → a real receiver,
// signed as SPEC §2 says.
func TestServe_FirstDelivery(t *testing.T) {
	m := testServer(t, nil)
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer rc.Close()
	orgID, _ := setupTenant(t, m.URL(), m.Config.AdminToken, rc.URL+"/hook", "s3cret")

	var ev struct {
		ID         string
		Deliveries int
	}
	api(t, m.URL(), m.Config.AdminToken, "POST", "/v1/events", map[string]any{
		"organization_id": orgID, "type": "scan_completed", "data": map[string]any{"scan_id": "scn_1"}}, 202, &ev)
	if ev.Deliveries != 1 {
		t.Fatalf("deliveries = %d, want 1", ev.Deliveries)
	}
	select {
	case r := <-got:
		body := <-bodies
		if err := signature.Verify("s3cret", body, r.Header.Get("X-CG-Hook-Signature")); err != nil {
			t.Fatalf("signature: %v", err)
		}
		if !strings.Contains(string(body), `"id":"`+ev.ID+`"`) {
			t.Fatalf("body %s does not carry event %s", body, ev.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
	}
	// The delivery shows in the metrics once its result is written.
	deadline := time.Now().Add(5 * time.Second)
	for {
		metrics := scrape(t, m.URL())
		if strings.Contains(metrics, `hookd_deliveries_total{outcome="delivered"} 1`) &&
			strings.Contains(metrics, `hookd_deliveries{status="delivered"} 1`) &&
			strings.Contains(metrics, `hookd_deliveries{status="pending"} 0`) &&
			strings.Contains(metrics, "hookd_attempt_duration_seconds_count 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics do not show the delivery:\n%s", metrics)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// --dev creates its demo tenants once and prints the same credentials on
// every start.
func TestServe_DevSeedsOnce(t *testing.T) {
	dir := t.TempDir()
	start := func() string {
		cfg := DefaultConfig()
		cfg.Dev, cfg.DataDir, cfg.Listen = true, dir, "127.0.0.1:0"
		cfg.Database = "sqlite:" + filepath.Join(dir, "hookd.db")
		var out bytes.Buffer
		m := NewMain(cfg, &out, io.Discard)
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		// The printed credentials work: the customer key lists webhooks.
		var st devState
		b, _ := os.ReadFile(filepath.Join(dir, "dev-credentials.json"))
		json.Unmarshal(b, &st)
		api(t, m.URL(), st.CustomerAPIKey, "GET", "/v1/webhooks", nil, 200, nil)
		api(t, m.URL(), st.AdminToken, "GET", "/v1/organizations/"+st.CustomerOrgID, nil, 200, nil)
		m.Close(context.Background())
		return out.String()
	}
	first, second := start(), start()
	for _, want := range []string{"admin token", "partner organization", "customer organization", "portal user", "hk_"} {
		if !strings.Contains(first, want) {
			t.Errorf("--dev output lacks %q:\n%s", want, first)
		}
	}
	if first != second {
		t.Errorf("credentials changed between starts:\n%s\n---\n%s", first, second)
	}
}
