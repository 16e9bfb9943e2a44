package hookd_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

func TestNewID_SortsInCreationOrder(t *testing.T) {
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = hookd.NewID(hookd.PrefixDelivery)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids made one after another are not in text order")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		if !strings.HasPrefix(id, "dlv_") || len(id) != len("dlv_")+26 {
			t.Fatalf("malformed id %q", id)
		}
	}
}

func TestAPIKey_NewAndSplit(t *testing.T) {
	key, prefix, hash := hookd.NewAPIKey()
	p2, h2, ok := hookd.SplitAPIKey(key)
	if !ok || p2 != prefix || string(h2) != string(hash) {
		t.Fatalf("SplitAPIKey(NewAPIKey()) = %q, %x, %v", p2, h2, ok)
	}
	if !strings.HasPrefix(key, "hk_") || strings.Contains(prefix, key[len(prefix):]) {
		t.Fatalf("bad key shape %q / prefix %q", key, prefix)
	}
	for _, bad := range []string{"", "hk_", "sk_" + key[3:], key + "x", key[:len(key)-1]} {
		if _, _, ok := hookd.SplitAPIKey(bad); ok {
			t.Errorf("SplitAPIKey(%q) accepted", bad)
		}
	}
}

func TestWebhook_Validate(t *testing.T) {
	valid := func() *hookd.Webhook {
		return &hookd.Webhook{Name: "ci", URL: "https://hooks.example.com/in", Events: []string{"scan_completed"}}
	}
	for _, tc := range []struct {
		name      string
		edit      func(w *hookd.Webhook)
		allowHTTP bool
		field     string // "" = valid
	}{
		{"OK", func(w *hookd.Webhook) {}, false, ""},
		{"OKHTTPWhenAllowed", func(w *hookd.Webhook) { w.URL = "http://127.0.0.1:9000/x" }, true, ""},
		{"OKNameOf100Runes", func(w *hookd.Webhook) { w.Name = strings.Repeat("é", 100) }, false, ""},
		{"OKSecret256", func(w *hookd.Webhook) { w.Secret = strings.Repeat("s", 256) }, false, ""},
		{"ErrNameEmpty", func(w *hookd.Webhook) { w.Name = "" }, false, "name"},
		{"ErrNameBlank", func(w *hookd.Webhook) { w.Name = "   " }, false, "name"},
		{"ErrNameTooLong", func(w *hookd.Webhook) { w.Name = strings.Repeat("a", 101) }, false, "name"},
		{"ErrNameControl", func(w *hookd.Webhook) { w.Name = "a\x00b" }, false, "name"},
		{"ErrURLEmpty", func(w *hookd.Webhook) { w.URL = "" }, false, "url"},
		{"ErrURLRelative", func(w *hookd.Webhook) { w.URL = "/hook" }, false, "url"},
		{"ErrURLScheme", func(w *hookd.Webhook) { w.URL = "ftp://example.com/x" }, false, "url"},
		{"ErrURLHTTP", func(w *hookd.Webhook) { w.URL = "http://example.com/x" }, false, "url"},
		{"ErrURLNoHost", func(w *hookd.Webhook) { w.URL = "https:///x" }, false, "url"},
		{"ErrURLUserInfo", func(w *hookd.Webhook) { w.URL = "https://u:p@example.com/x" }, false, "url"},
		{"ErrURLFragment", func(w *hookd.Webhook) { w.URL = "https://example.com/x#frag" }, false, "url"},
		{"ErrURLTooLong", func(w *hookd.Webhook) { w.URL = "https://example.com/" + strings.Repeat("a", 2029) }, false, "url"},
		{"ErrURLBadPort", func(w *hookd.Webhook) { w.URL = "https://example.com:99999/" }, false, "url"},
		{"ErrEventsEmpty", func(w *hookd.Webhook) { w.Events = nil }, false, "events"},
		{"ErrEventsUnknown", func(w *hookd.Webhook) { w.Events = []string{"scan_completed", "scan_exploded"} }, false, "events"},
		{"ErrEventsDuplicate", func(w *hookd.Webhook) { w.Events = []string{"scan_started", "scan_started"} }, false, "events"},
		{"ErrEventsPing", func(w *hookd.Webhook) { w.Events = []string{"ping"} }, false, "events"},
		{"ErrSecretTooLong", func(w *hookd.Webhook) { w.Secret = strings.Repeat("s", 257) }, false, "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := valid()
			tc.edit(w)
			err := w.Validate(tc.allowHTTP)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if hookd.ErrorCode(err) != hookd.EINVALID || hookd.ErrorField(err) != tc.field {
				t.Fatalf("err = %v, want invalid_argument on %s", err, tc.field)
			}
		})
	}
	t.Run("ErrIncludeCustomersNotPartner", func(t *testing.T) {
		w := valid()
		w.IncludeCustomers = true
		if err := w.ValidateIncludeCustomers(&hookd.Organization{}); hookd.ErrorField(err) != "include_customers" {
			t.Fatalf("err = %v", err)
		}
		if err := w.ValidateIncludeCustomers(&hookd.Organization{IsPartner: true}); err != nil {
			t.Fatalf("partner refused: %v", err)
		}
	})
}

func TestEvent_Validate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ev    hookd.Event
		code  string
		field string
	}{
		{"OK", hookd.Event{OrganizationID: "org_1", Type: "scan_started", Data: json.RawMessage(`{"a": 1}`)}, "", ""},
		{"OKWithID", hookd.Event{ID: "scan-42:started", OrganizationID: "org_1", Type: "scan_started", Data: json.RawMessage(`{}`)}, "", ""},
		{"ErrIDChars", hookd.Event{ID: "a b", OrganizationID: "org_1", Type: "scan_started", Data: json.RawMessage(`{}`)}, hookd.EINVALID, "id"},
		{"ErrNoOrganization", hookd.Event{Type: "scan_started", Data: json.RawMessage(`{}`)}, hookd.EINVALID, "organization_id"},
		{"ErrNoType", hookd.Event{OrganizationID: "org_1", Data: json.RawMessage(`{}`)}, hookd.EINVALID, "type"},
		{"ErrUnknownType", hookd.Event{OrganizationID: "org_1", Type: "nope", Data: json.RawMessage(`{}`)}, hookd.EINVALID, "type"},
		{"ErrPing", hookd.Event{OrganizationID: "org_1", Type: "ping", Data: json.RawMessage(`{}`)}, hookd.EINVALID, "type"},
		{"ErrDataMissing", hookd.Event{OrganizationID: "org_1", Type: "scan_started"}, hookd.EINVALID, "data"},
		{"ErrDataArray", hookd.Event{OrganizationID: "org_1", Type: "scan_started", Data: json.RawMessage(`[1]`)}, hookd.EINVALID, "data"},
		{"ErrDataString", hookd.Event{OrganizationID: "org_1", Type: "scan_started", Data: json.RawMessage(`"x"`)}, hookd.EINVALID, "data"},
		{"ErrDataTooLarge", hookd.Event{OrganizationID: "org_1", Type: "scan_started", Data: json.RawMessage(`{"a":"` + strings.Repeat("x", 256<<10) + `"}`)}, hookd.ETOOLARGE, "data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ev.Validate()
			if hookd.ErrorCode(err) != tc.code || hookd.ErrorField(err) != tc.field {
				t.Fatalf("err = %v, want code %q field %q", err, tc.code, tc.field)
			}
		})
	}
}

// The payload is SPEC §2's body, and the same bytes every time.
func TestEvent_Payload(t *testing.T) {
	ev := hookd.Event{ID: "evt_1", Type: "scan_completed", OrganizationID: "org_1",
		CreatedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), Data: json.RawMessage(`{"a":"\u00e9\"x"}`)}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	got := string(ev.Payload("wh_1"))
	want := `{"id":"evt_1","type":"scan_completed","created_at":"2026-11-26T10:00:00Z","organization_id":"org_1","webhook_id":"wh_1","data":{"a":"\u00e9\"x"}}`
	if got != want {
		t.Fatalf("payload\n got %s\nwant %s", got, want)
	}
	if string(ev.Payload("wh_1")) != got {
		t.Fatal("payload differs between calls")
	}
	var decoded map[string]any
	if err := json.Unmarshal([]byte(got), &decoded); err != nil {
		t.Fatalf("payload is not JSON: %v", err)
	}
}
