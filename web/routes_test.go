package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hookd-dev/hookd"
)

func TestRoutes_Unmatched(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	for _, tc := range []struct {
		name, method, path string
		status             int
		code, allow        string
	}{
		{"ErrUnknownPath", "GET", "/v1/nothing", 404, "not_found", ""},
		{"ErrTrailingSlash", "GET", "/v1/webhooks/", 404, "not_found", ""},
		{"ErrTooDeep", "GET", "/v1/webhooks/wh_1/deliveries/dlv_1/attempts", 404, "not_found", ""},
		{"ErrWrongMethod", "PUT", "/v1/webhooks/wh_1", 405, "method_not_allowed", "GET, PATCH, DELETE, HEAD"},
		{"ErrWrongMethodOnCollection", "DELETE", "/v1/webhooks", 405, "method_not_allowed", "POST, GET, HEAD"},
		{"ErrWrongMethodOnAdmin", "GET", "/v1/events", 405, "method_not_allowed", "POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(tc.method, tc.path, a.key, nil)
			r.wantError(t, tc.status, tc.code, "")
			if got := r.Header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestService(t *testing.T) {
	store := newTestStore(t)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "hookd_up 1")
	})
	ts := newTestServer(t, store, withMetrics(metrics))

	t.Run("Healthz", func(t *testing.T) {
		ts.do("GET", "/healthz", "", nil).want(t, http.StatusOK, nil)
	})
	t.Run("Metrics", func(t *testing.T) {
		r := ts.do("GET", "/metrics", "", nil)
		r.want(t, http.StatusOK, nil)
		if string(r.Body) != "hookd_up 1\n" {
			t.Fatalf("metrics = %q", r.Body)
		}
	})
	t.Run("ErrNoMetrics", func(t *testing.T) {
		newTestServer(t, store).do("GET", "/metrics", "", nil).wantError(t, 404, "not_found", "")
	})
	t.Run("OpenAPI", func(t *testing.T) {
		r := ts.do("GET", "/openapi.json", "", nil)
		r.want(t, http.StatusOK, nil)
		if r.Header.Get("Content-Type") != "application/json" || !json.Valid(r.Body) {
			t.Fatal("not a JSON document")
		}
	})
	t.Run("Readyz", func(t *testing.T) {
		ts.do("GET", "/readyz", "", nil).want(t, http.StatusOK, nil)
		store.Close()
		ts.do("GET", "/readyz", "", nil).wantError(t, 503, "unavailable", "")
		ts.do("GET", "/healthz", "", nil).want(t, http.StatusOK, nil)
	})
}

// failingStore fails one method with an internal error.
type failingStore struct {
	Store
}

func (failingStore) FindWebhook(context.Context, string, string) (*hookd.Webhook, error) {
	return nil, errors.New("disk on fire at /var/lib/hookd/hookd.db")
}

func TestErrors_Internal(t *testing.T) {
	store := newTestStore(t)
	ts := newTestServer(t, store)
	a := ts.createOrg("Acme", "")
	fs := newTestServer(t, store, withStore(failingStore{store}))
	r := fs.do("GET", "/v1/webhooks/wh_00000000000000000000000000", a.key, nil)
	r.wantError(t, 500, "internal", "")
	if strings.Contains(string(r.Body), "disk on fire") || r.errorMessage(t) != "internal error" {
		t.Fatalf("internal detail in the answer: %s", r.Body)
	}
	logs := fs.logs.String()
	for _, want := range []string{`"msg":"internal error"`, `"method":"GET"`, `"path":"/v1/webhooks/wh_00000000000000000000000000"`, "disk on fire", r.Header.Get("X-Request-Id")} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestLog_OneLinePerRequest(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	before := strings.Count(ts.logs.String(), `"msg":"request"`)
	const secret = "hush-hush-secret"
	r := ts.do("POST", "/v1/webhooks", a.key, validWebhook(func(m map[string]any) { m["secret"] = secret }))
	r.want(t, http.StatusCreated, nil)
	id := r.Header.Get("X-Request-Id")
	if !strings.HasPrefix(id, "req_") {
		t.Fatalf("X-Request-Id = %q", id)
	}
	var line map[string]any
	for _, l := range strings.Split(ts.logs.String(), "\n") {
		if strings.Contains(l, id) && strings.Contains(l, `"msg":"request"`) {
			if line != nil {
				t.Fatal("two request lines for one request")
			}
			json.Unmarshal([]byte(l), &line)
		}
	}
	if line == nil || line["method"] != "POST" || line["pattern"] != "POST /v1/webhooks" || line["status"] != float64(201) || line["duration"] == nil {
		t.Fatalf("request line = %v", line)
	}
	if n := strings.Count(ts.logs.String(), `"msg":"request"`); n != before+1 {
		t.Fatalf("%d request lines for one request", n-before)
	}
	for _, s := range []string{secret, a.key, testAdminToken} {
		if strings.Contains(ts.logs.String(), s) {
			t.Fatalf("the log holds a secret: %s", s)
		}
	}
}

// TestOpenAPI keeps the document true: every route of the table is in it,
// with its path parameters and its security, and nothing else is; every
// $ref resolves.
func TestOpenAPI(t *testing.T) {
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	for _, scheme := range []string{"adminToken", "apiKey"} {
		if doc.Components["securitySchemes"][scheme] == nil {
			t.Errorf("security scheme %s missing", scheme)
		}
	}
	if doc.Components["schemas"]["Error"] == nil {
		t.Error("the Error schema is missing")
	}

	type operation struct {
		OperationID string                 `json:"operationId"`
		Security    *[]map[string][]string `json:"security"`
		Parameters  []json.RawMessage      `json:"parameters"`
		Responses   map[string]any         `json:"responses"`
	}
	documented := map[string]bool{}
	opIDs := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if op.OperationID == "" || opIDs[op.OperationID] || len(op.Responses) == 0 {
				t.Errorf("%s: operationId %q (unique?) and responses are required", key, op.OperationID)
			}
			opIDs[op.OperationID] = true
		}
	}

	var routes []string
	for _, rt := range (&Server{}).routes() {
		key := rt.method + " " + rt.path
		routes = append(routes, key)
		if !documented[key] {
			t.Errorf("route %s is not in openapi.json", key)
			continue
		}
		var op operation
		json.Unmarshal(doc.Paths[rt.path][strings.ToLower(rt.method)], &op)

		// Its security matches the route's access.
		var schemes []string
		if op.Security != nil {
			for _, req := range *op.Security {
				for name := range req {
					schemes = append(schemes, name)
				}
			}
		} else {
			schemes = []string{"adminToken", "apiKey"} // the document's default
		}
		sort.Strings(schemes)
		want := map[access][]string{public: nil, admin: {"adminToken"}, org: {"apiKey"}, adminOrg: {"adminToken", "apiKey"}}[rt.access]
		if !slices.Equal(schemes, want) {
			t.Errorf("%s: security %v, want %v", key, schemes, want)
		}

		// Every wildcard is a documented path parameter.
		params := resolvedParams(t, doc.Components["parameters"], op.Parameters)
		for _, m := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(rt.path, -1) {
			if !slices.Contains(params, "path:"+m[1]) {
				t.Errorf("%s: path parameter %s is not documented", key, m[1])
			}
		}
	}
	for key := range documented {
		if !slices.Contains(routes, key) {
			t.Errorf("openapi.json documents %s, which is not a route", key)
		}
	}

	// Every $ref points at something.
	for _, m := range regexp.MustCompile(`"\$ref":\s*"#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(string(openAPIDocument), -1) {
		if doc.Components[m[1]][m[2]] == nil {
			t.Errorf("dangling $ref #/components/%s/%s", m[1], m[2])
		}
	}
	if n := strings.Count(string(openAPIDocument), `"$ref"`); n != len(regexp.MustCompile(`"\$ref":\s*"#/components/\w+/\w+"`).FindAllString(string(openAPIDocument), -1)) {
		t.Error("a $ref is not of the form #/components/<kind>/<name>")
	}
}

// resolvedParams returns "in:name" of each parameter, following $refs.
func resolvedParams(t *testing.T, components map[string]json.RawMessage, params []json.RawMessage) []string {
	t.Helper()
	var out []string
	for _, raw := range params {
		var p struct {
			Ref  string `json:"$ref"`
			Name string `json:"name"`
			In   string `json:"in"`
		}
		json.Unmarshal(raw, &p)
		if p.Ref != "" {
			json.Unmarshal(components[strings.TrimPrefix(p.Ref, "#/components/parameters/")], &p)
		}
		out = append(out, p.In+":"+p.Name)
	}
	return out
}
