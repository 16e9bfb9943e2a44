package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hookd-dev/hookd/egress"
)

func TestWebhooks_Create(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")

	t.Run("OK", func(t *testing.T) {
		w := ts.createWebhook(a.key, validWebhook())
		switch {
		case !strings.HasPrefix(w.ID, "wh_"), w.OrganizationID != a.org.ID, w.Name != "Scans",
			w.URL != "https://hooks.example.com/hookd", !slices.Equal(w.Events, []string{"scan_started", "scan_completed"}),
			!w.Active, w.IncludeCustomers, !w.HasSecret, w.CreatedAt.IsZero(), !w.UpdatedAt.Equal(w.CreatedAt),
			w.CreatedAt.Location().String() != "UTC":
			t.Fatalf("webhook = %+v", w)
		}
		equalJSON(t, "GET", ts.getWebhook(a.key, w.ID), w)
	})
	t.Run("SecretNeverReturned", func(t *testing.T) {
		r := ts.do("POST", "/v1/webhooks", a.key, validWebhook(func(m map[string]any) { m["secret"] = "do-not-echo-me" }))
		r.want(t, http.StatusCreated, nil)
		id := ts.listWebhooks(a.key)[0].ID
		for _, body := range [][]byte{r.Body, ts.do("GET", "/v1/webhooks/"+id, a.key, nil).Body, ts.do("GET", "/v1/webhooks", a.key, nil).Body} {
			if strings.Contains(string(body), "do-not-echo-me") || strings.Contains(string(body), `"secret"`) {
				t.Fatalf("secret in answer: %s", body)
			}
		}
		if strings.Contains(ts.logs.String(), "do-not-echo-me") {
			t.Fatal("secret in the log")
		}
	})
	t.Run("Defaults", func(t *testing.T) {
		w := ts.createWebhook(a.key, map[string]any{"name": "Bare", "url": "https://example.com/", "events": []string{"scan_failed"}})
		if !w.Active || w.HasSecret || w.IncludeCustomers {
			t.Fatalf("webhook = %+v, want active, no secret, no include_customers", w)
		}
	})
	t.Run("Inactive", func(t *testing.T) {
		w := ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["active"] = false }))
		if w.Active {
			t.Fatal("active = true, want false")
		}
	})
	t.Run("NameOf100Characters", func(t *testing.T) {
		ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["name"] = strings.Repeat("é", 100) }))
	})
	t.Run("URLOf2048Characters", func(t *testing.T) {
		u := "https://example.com/"
		ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["url"] = u + strings.Repeat("a", 2048-len(u)) }))
	})
	t.Run("SecretOf256Bytes", func(t *testing.T) {
		ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["secret"] = strings.Repeat("s", 256) }))
	})
	t.Run("HTTPWhenAllowed", func(t *testing.T) {
		ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["url"] = "http://127.0.0.1:9000/hook" }))
	})
}

// webhookErrCases are SPEC §3's validation rules as create bodies, each
// with the answer it must get.
var webhookErrCases = []struct {
	name   string
	body   any
	status int
	code   string
	field  string
}{
	{"ErrNameMissing", validWebhook(func(m map[string]any) { delete(m, "name") }), 400, "invalid_argument", "name"},
	{"ErrNameEmpty", validWebhook(func(m map[string]any) { m["name"] = "" }), 400, "invalid_argument", "name"},
	{"ErrNameBlank", validWebhook(func(m map[string]any) { m["name"] = "   " }), 400, "invalid_argument", "name"},
	{"ErrNameTooLong", validWebhook(func(m map[string]any) { m["name"] = strings.Repeat("x", 101) }), 400, "invalid_argument", "name"},
	{"ErrNameType", validWebhook(func(m map[string]any) { m["name"] = 42 }), 400, "invalid_argument", "name"},
	{"ErrURLMissing", validWebhook(func(m map[string]any) { delete(m, "url") }), 400, "invalid_argument", "url"},
	{"ErrURLRelative", validWebhook(func(m map[string]any) { m["url"] = "/hooks/x" }), 400, "invalid_argument", "url"},
	{"ErrURLScheme", validWebhook(func(m map[string]any) { m["url"] = "ftp://example.com/x" }), 400, "invalid_argument", "url"},
	{"ErrURLNoHost", validWebhook(func(m map[string]any) { m["url"] = "https:///x" }), 400, "invalid_argument", "url"},
	{"ErrURLUserInfo", validWebhook(func(m map[string]any) { m["url"] = "https://user:pw@example.com/x" }), 400, "invalid_argument", "url"},
	{"ErrURLFragment", validWebhook(func(m map[string]any) { m["url"] = "https://example.com/x#frag" }), 400, "invalid_argument", "url"},
	{"ErrURLTooLong", validWebhook(func(m map[string]any) { m["url"] = "https://example.com/" + strings.Repeat("a", 2049-20) }), 400, "invalid_argument", "url"},
	{"ErrURLType", validWebhook(func(m map[string]any) { m["url"] = []string{"https://example.com"} }), 400, "invalid_argument", "url"},
	{"ErrEventsMissing", validWebhook(func(m map[string]any) { delete(m, "events") }), 400, "invalid_argument", "events"},
	{"ErrEventsEmpty", validWebhook(func(m map[string]any) { m["events"] = []string{} }), 400, "invalid_argument", "events"},
	{"ErrEventsUnknown", validWebhook(func(m map[string]any) { m["events"] = []string{"scan_started", "scan_exploded"} }), 400, "invalid_argument", "events"},
	{"ErrEventsDuplicate", validWebhook(func(m map[string]any) { m["events"] = []string{"scan_started", "scan_started"} }), 400, "invalid_argument", "events"},
	{"ErrEventsPing", validWebhook(func(m map[string]any) { m["events"] = []string{"ping"} }), 400, "invalid_argument", "events"},
	{"ErrEventsNotAList", validWebhook(func(m map[string]any) { m["events"] = "scan_started" }), 400, "invalid_argument", "events"},
	{"ErrEventsNotStrings", validWebhook(func(m map[string]any) { m["events"] = []int{1} }), 400, "invalid_argument", "events"},
	{"ErrSecretTooLong", validWebhook(func(m map[string]any) { m["secret"] = strings.Repeat("s", 257) }), 400, "invalid_argument", "secret"},
	{"ErrSecretType", validWebhook(func(m map[string]any) { m["secret"] = true }), 400, "invalid_argument", "secret"},
	{"ErrIncludeCustomersNotPartner", validWebhook(func(m map[string]any) { m["include_customers"] = true }), 400, "invalid_argument", "include_customers"},
	{"ErrActiveType", validWebhook(func(m map[string]any) { m["active"] = "yes" }), 400, "invalid_argument", "active"},
	{"ErrUnknownField", validWebhook(func(m map[string]any) { m["colour"] = "red" }), 400, "invalid_argument", "colour"},
	{"ErrMalformedJSON", `{"name": "x",`, 400, "invalid_argument", ""},
	{"ErrNotJSON", `name=x`, 400, "invalid_argument", ""},
	{"ErrEmptyBody", ``, 400, "invalid_argument", ""},
	{"ErrNotAnObject", `["x"]`, 400, "invalid_argument", ""},
	{"ErrTwoValues", `{"name":"a"} {"name":"b"}`, 400, "invalid_argument", ""},
	{"ErrBodyTooLarge", validWebhook(func(m map[string]any) { m["name"] = strings.Repeat("x", 65<<10) }), 413, "payload_too_large", ""},
}

func TestWebhooks_CreateErrors(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	for _, tc := range webhookErrCases {
		t.Run(tc.name, func(t *testing.T) {
			ts.do("POST", "/v1/webhooks", a.key, tc.body).wantError(t, tc.status, tc.code, tc.field)
			if n := len(ts.listWebhooks(a.key)); n != 0 {
				t.Fatalf("%d webhooks after a failed create, want 0", n)
			}
		})
	}
	t.Run("ErrHTTPNotAllowed", func(t *testing.T) {
		strict := newTestServer(t, ts.store, withAllowHTTP(false))
		strict.do("POST", "/v1/webhooks", a.key, validWebhook(func(m map[string]any) { m["url"] = "http://example.com/x" })).
			wantError(t, 400, "invalid_argument", "url")
		if n := len(ts.listWebhooks(a.key)); n != 0 {
			t.Fatalf("%d webhooks after a failed create, want 0", n)
		}
	})
}

func TestWebhooks_Create101st(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	for i := range 100 {
		ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["name"] = fmt.Sprint("hook ", i) }))
	}
	ts.do("POST", "/v1/webhooks", a.key, validWebhook()).wantError(t, 400, "invalid_argument", "")
	if n := len(ts.listWebhooks(a.key)); n != 100 {
		t.Fatalf("%d webhooks, want 100", n)
	}
	// The limit is per organization.
	b := ts.createOrg("Other", "")
	ts.createWebhook(b.key, validWebhook())
}

func TestWebhooks_IncludeCustomers(t *testing.T) {
	ts := newTestServer(t, nil)
	partner := ts.createOrg("Partner", "")
	ts.createOrg("Customer", partner.org.ID)
	w := ts.createWebhook(partner.key, validWebhook(func(m map[string]any) { m["include_customers"] = true }))
	if !w.IncludeCustomers {
		t.Fatal("include_customers = false on a partner")
	}
}

// TestWebhooks_Targets: with private targets refused, an address the
// network policy refuses is a 400 on "url", at create and at update.
func TestWebhooks_Targets(t *testing.T) {
	ts := newTestServer(t, nil, withTargets(egress.Policy{AllowPrivate: false}))
	a := ts.createOrg("Acme", "")
	w := ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["url"] = "https://93.184.215.14/hook" }))
	for _, u := range []string{"https://127.0.0.1/x", "https://10.0.0.1/", "https://[::1]/x", "https://169.254.169.254/latest/meta-data", "https://2130706433/"} {
		t.Run("Create/"+u, func(t *testing.T) {
			ts.do("POST", "/v1/webhooks", a.key, validWebhook(func(m map[string]any) { m["url"] = u })).wantError(t, 400, "invalid_argument", "url")
			if n := len(ts.listWebhooks(a.key)); n != 1 {
				t.Fatalf("%d webhooks, want 1", n)
			}
		})
		t.Run("Update/"+u, func(t *testing.T) {
			ts.do("PATCH", "/v1/webhooks/"+w.ID, a.key, map[string]any{"url": u}).wantError(t, 400, "invalid_argument", "url")
			equalJSON(t, "webhook", ts.getWebhook(a.key, w.ID), w)
		})
	}
}

func TestWebhooks_Update(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")

	t.Run("OK", func(t *testing.T) {
		w := ts.createWebhook(a.key, validWebhook())
		var got webhookObj
		ts.do("PATCH", "/v1/webhooks/"+w.ID, a.key, map[string]any{
			"name": "Renamed", "url": "https://other.example.com/x", "events": []string{"report_generated"}, "active": false,
		}).want(t, http.StatusOK, &got)
		want := w
		want.Name, want.URL, want.Events, want.Active, want.UpdatedAt = "Renamed", "https://other.example.com/x", []string{"report_generated"}, false, got.UpdatedAt
		equalJSON(t, "webhook", got, want)
		if got.UpdatedAt.Before(w.UpdatedAt) {
			t.Fatalf("updated_at went back: %v → %v", w.UpdatedAt, got.UpdatedAt)
		}
		equalJSON(t, "GET after PATCH", ts.getWebhook(a.key, w.ID), got)
	})
	t.Run("SubsetKeepsTheRest", func(t *testing.T) {
		w := ts.createWebhook(a.key, validWebhook())
		var got webhookObj
		ts.do("PATCH", "/v1/webhooks/"+w.ID, a.key, map[string]any{"name": "Only the name"}).want(t, http.StatusOK, &got)
		if got.Name != "Only the name" || got.URL != w.URL || !slices.Equal(got.Events, w.Events) || !got.HasSecret || !got.Active {
			t.Fatalf("webhook = %+v", got)
		}
	})
	t.Run("EmptySecretRemovesIt", func(t *testing.T) {
		w := ts.createWebhook(a.key, validWebhook())
		var got webhookObj
		ts.do("PATCH", "/v1/webhooks/"+w.ID, a.key, map[string]any{"secret": ""}).want(t, http.StatusOK, &got)
		if got.HasSecret {
			t.Fatal("has_secret = true after secret \"\"")
		}
		ts.do("PATCH", "/v1/webhooks/"+w.ID, a.key, map[string]any{"secret": "again"}).want(t, http.StatusOK, &got)
		if !got.HasSecret {
			t.Fatal("has_secret = false after setting a secret")
		}
	})
	t.Run("EmptyBodyChangesNothing", func(t *testing.T) {
		w := ts.createWebhook(a.key, validWebhook())
		var got webhookObj
		ts.do("PATCH", "/v1/webhooks/"+w.ID, a.key, `{}`).want(t, http.StatusOK, &got)
		equalJSON(t, "webhook", got, w)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		ts.do("PATCH", "/v1/webhooks/wh_00000000000000000000000000", a.key, map[string]any{"name": "x"}).wantError(t, 404, "not_found", "")
	})

	w := ts.createWebhook(a.key, validWebhook())
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"ErrNameEmpty", map[string]any{"name": ""}, 400, "invalid_argument", "name"},
		{"ErrNameTooLong", map[string]any{"name": strings.Repeat("x", 101)}, 400, "invalid_argument", "name"},
		{"ErrURLEmpty", map[string]any{"url": ""}, 400, "invalid_argument", "url"},
		{"ErrURLScheme", map[string]any{"url": "ftp://example.com/"}, 400, "invalid_argument", "url"},
		{"ErrURLUserInfo", map[string]any{"url": "https://u@example.com/"}, 400, "invalid_argument", "url"},
		{"ErrURLFragment", map[string]any{"url": "https://example.com/#x"}, 400, "invalid_argument", "url"},
		{"ErrEventsEmpty", map[string]any{"events": []string{}}, 400, "invalid_argument", "events"},
		{"ErrEventsPing", map[string]any{"events": []string{"scan_started", "ping"}}, 400, "invalid_argument", "events"},
		{"ErrEventsNotAList", map[string]any{"events": 3}, 400, "invalid_argument", "events"},
		{"ErrSecretTooLong", map[string]any{"secret": strings.Repeat("s", 257)}, 400, "invalid_argument", "secret"},
		{"ErrIncludeCustomersNotPartner", map[string]any{"include_customers": true}, 400, "invalid_argument", "include_customers"},
		{"ErrUnknownField", map[string]any{"name": "ok", "id": "wh_mine"}, 400, "invalid_argument", "id"},
		{"ErrMalformedJSON", `{"name":`, 400, "invalid_argument", ""},
		{"ErrBodyTooLarge", map[string]any{"secret": strings.Repeat("s", 65<<10)}, 413, "payload_too_large", ""},
		// One bad field spoils the whole patch: the good one is not written either.
		{"ErrPartlyValid", map[string]any{"name": "Good", "url": "ftp://bad/"}, 400, "invalid_argument", "url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.do("PATCH", "/v1/webhooks/"+w.ID, a.key, tc.body).wantError(t, tc.status, tc.code, tc.field)
			equalJSON(t, "webhook", ts.getWebhook(a.key, w.ID), w)
		})
	}
	t.Run("ErrHTTPNotAllowed", func(t *testing.T) {
		strict := newTestServer(t, ts.store, withAllowHTTP(false))
		strict.do("PATCH", "/v1/webhooks/"+w.ID, a.key, map[string]any{"url": "http://example.com/"}).wantError(t, 400, "invalid_argument", "url")
		equalJSON(t, "webhook", ts.getWebhook(a.key, w.ID), w)
	})
}

// recordingChecker records the URLs the server asks the network policy
// about, and allows them all.
type recordingChecker struct {
	mu   *sync.Mutex
	urls *[]string
}

func (c recordingChecker) CheckURL(_ context.Context, u string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.urls = append(*c.urls, u)
	return nil
}

func TestWebhooks_UpdateChecksTargetOnlyWhenChanged(t *testing.T) {
	var (
		mu   sync.Mutex
		urls []string
	)
	ts := newTestServer(t, nil, withTargets(recordingChecker{&mu, &urls}))
	a := ts.createOrg("Acme", "")
	w := ts.createWebhook(a.key, validWebhook())
	ts.do("PATCH", "/v1/webhooks/"+w.ID, a.key, map[string]any{"name": "x", "url": w.URL}).want(t, http.StatusOK, nil)
	ts.do("PATCH", "/v1/webhooks/"+w.ID, a.key, map[string]any{"url": "https://new.example.com/"}).want(t, http.StatusOK, nil)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{w.URL, "https://new.example.com/"}; !slices.Equal(urls, want) {
		t.Fatalf("checked %q, want %q: at create, then only when the URL changes", urls, want)
	}
}

func TestWebhooks_Delete(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	w := ts.createWebhook(a.key, validWebhook())
	keep := ts.createWebhook(a.key, validWebhook())
	r := ts.do("DELETE", "/v1/webhooks/"+w.ID, a.key, nil)
	r.want(t, http.StatusNoContent, nil)
	if len(r.Body) != 0 {
		t.Fatalf("204 with a body: %s", r.Body)
	}
	ts.do("GET", "/v1/webhooks/"+w.ID, a.key, nil).wantError(t, 404, "not_found", "")
	ts.do("DELETE", "/v1/webhooks/"+w.ID, a.key, nil).wantError(t, 404, "not_found", "")
	if got := ts.listWebhooks(a.key); len(got) != 1 || got[0].ID != keep.ID {
		t.Fatalf("webhooks = %v, want only %s", got, keep.ID)
	}
}

func TestWebhooks_List(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	var created []string
	for i := range 7 {
		created = append(created, ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["name"] = fmt.Sprint(i) })).ID)
	}
	slices.Reverse(created) // newest first

	t.Run("PagesNewestFirst", func(t *testing.T) {
		var seen []string
		path := "/v1/webhooks?limit=3"
		for pages := 0; ; pages++ {
			if pages > 3 {
				t.Fatal("too many pages")
			}
			var l listObj[webhookObj]
			ts.do("GET", path, a.key, nil).want(t, http.StatusOK, &l)
			for _, w := range l.Data {
				seen = append(seen, w.ID)
			}
			if l.NextCursor == nil {
				break
			}
			path = "/v1/webhooks?limit=3&cursor=" + *l.NextCursor
		}
		if !slices.Equal(seen, created) {
			t.Fatalf("pages gave %v, want %v", seen, created)
		}
	})
	t.Run("LastPageCursorIsNull", func(t *testing.T) {
		r := ts.do("GET", "/v1/webhooks", a.key, nil)
		r.want(t, http.StatusOK, nil)
		if !strings.Contains(string(r.Body), `"next_cursor":null`) {
			t.Fatalf("body %s: want next_cursor null", r.Body)
		}
	})
	t.Run("EmptyIsAList", func(t *testing.T) {
		b := ts.createOrg("Empty", "")
		r := ts.do("GET", "/v1/webhooks", b.key, nil)
		r.want(t, http.StatusOK, nil)
		if !strings.Contains(string(r.Body), `"data":[]`) {
			t.Fatalf("body %s: want data []", r.Body)
		}
	})
	for _, tc := range []struct{ name, query, field string }{
		{"ErrLimitZero", "limit=0", "limit"},
		{"ErrLimitTooLarge", "limit=201", "limit"},
		{"ErrLimitNegative", "limit=-1", "limit"},
		{"ErrLimitNotANumber", "limit=ten", "limit"},
		{"ErrCursorNotBase64", "cursor=***", "cursor"},
		{"ErrCursorOfAnotherList", "cursor=" + encodeCursor("dlv_01jz3k6f0q8ex2m4v7wb5n9c1d"), "cursor"},
		{"ErrCursorForged", "cursor=" + encodeCursor("wh_' OR 1=1 --"), "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.do("GET", "/v1/webhooks?"+tc.query, a.key, nil).wantError(t, 400, "invalid_argument", tc.field)
		})
	}
	t.Run("Limit200", func(t *testing.T) {
		ts.do("GET", "/v1/webhooks?limit=200", a.key, nil).want(t, http.StatusOK, nil)
	})
}
