package main

import (
	"fmt"
	"testing"
)

// --max-webhooks-per-organization reaches the store: with it at 101, the
// 101st webhook that SPEC §3's default refuses is created, and the 102nd
// is refused.
func TestServe_MaxWebhooksPerOrganization(t *testing.T) {
	m := testServer(t, func(c *Config) { c.MaxWebhooks = 101 })
	admin := m.Config.AdminToken
	_, key := setupTenant(t, m.URL(), admin, "http://127.0.0.1:9/hook", "") // webhook 1
	for i := 2; i <= 101; i++ {
		api(t, m.URL(), key, "POST", "/v1/webhooks", map[string]any{"name": fmt.Sprint("hook ", i), "url": "http://127.0.0.1:9/hook", "events": []string{"scan_completed"}}, 201, nil)
	}
	var e struct{ Error struct{ Code string } }
	api(t, m.URL(), key, "POST", "/v1/webhooks", map[string]any{"name": "one too many", "url": "http://127.0.0.1:9/hook", "events": []string{"scan_completed"}}, 400, &e)
	if e.Error.Code != "invalid_argument" {
		t.Fatalf("code = %q, want invalid_argument", e.Error.Code)
	}
}
