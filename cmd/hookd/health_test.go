package main

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// The health settings reach the store: with --disable-after-failures 2, a
// receiver that answers 500 gets its webhook disabled by the dispatcher's
// second failed delivery, and enabling it with redeliver_failed sends those
// deliveries again.
func TestServe_DisablesFailingWebhook(t *testing.T) {
	m := testServer(t, func(c *Config) {
		c.DisableAfterFailures = 2
		c.RetrySchedule = "10ms"
	})
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer rc.Close()
	admin := m.Config.AdminToken
	orgID, key := setupTenant(t, m.URL(), admin, rc.URL+"/hook", "")
	var list struct{ Data []struct{ ID string } }
	api(t, m.URL(), key, "GET", "/v1/webhooks", nil, 200, &list)
	id := list.Data[0].ID
	for range 2 {
		api(t, m.URL(), admin, "POST", "/v1/events", map[string]any{"organization_id": orgID, "type": "scan_completed", "data": map[string]any{}}, 202, nil)
	}

	type webhook struct {
		Active         bool
		DisabledReason *string `json:"disabled_reason"`
	}
	var w webhook
	waitFor(t, "the webhook to be disabled", func() bool {
		api(t, m.URL(), key, "GET", "/v1/webhooks/"+id, nil, 200, &w)
		return !w.Active
	})
	want := "disabled automatically after 2 consecutive failed deliveries; last attempt: HTTP 500"
	if w.DisabledReason == nil || *w.DisabledReason != want {
		t.Fatalf("disabled_reason = %v, want %q", w.DisabledReason, want)
	}

	status.Store(http.StatusNoContent)
	var out struct {
		Webhook     webhook
		Redelivered int
	}
	api(t, m.URL(), key, "POST", "/v1/webhooks/"+id+"/enable", map[string]any{"redeliver_failed": true}, 200, &out)
	if !out.Webhook.Active || out.Webhook.DisabledReason != nil || out.Redelivered != 2 {
		t.Fatalf("enable = %+v, want active, no reason, 2 redelivered", out)
	}
	waitFor(t, "the redelivered deliveries to arrive", func() bool {
		var d struct{ Data []struct{ Status string } }
		api(t, m.URL(), key, "GET", "/v1/webhooks/"+id+"/deliveries?status=delivered", nil, 200, &d)
		return len(d.Data) == 2
	})
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline: it bounds a hang, it does not time the behaviour.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParseConfig_HealthSettings(t *testing.T) {
	env := map[string]string{"HOOKD_DISABLE_AFTER_FAILURES": "0", "HOOKD_DISABLE_AFTER": "2h30m"}
	cfg, err := parseConfig(flag.NewFlagSet("serve", flag.ContinueOnError), nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.health(); p.MaxConsecutiveFailures != 0 || p.MaxFailingFor != 150*time.Minute {
		t.Fatalf("policy = %+v, want the count rule off and 2h30m", p)
	}
	def := DefaultConfig()
	if p := def.health(); p.MaxConsecutiveFailures != 20 || p.MaxFailingFor != 24*time.Hour {
		t.Fatalf("default policy = %+v, want 20 and 24h", p)
	}
}
