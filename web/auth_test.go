package web

import (
	"net/http"
	"strings"
	"testing"
)

// routePath fills a route's wildcards with ids of objects that need not
// exist: access is decided before any lookup.
func routePath(pattern string) string {
	return strings.NewReplacer(
		"{id}", "x_1", "{key_id}", "key_1", "{delivery_id}", "dlv_1", "{name}", "scan_started",
	).Replace(pattern)
}

func TestAuth_EveryRoute(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	for _, rt := range (&Server{}).routes() {
		if rt.access == public {
			continue
		}
		path := routePath(rt.path)
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			t.Run("ErrNoHeader", func(t *testing.T) {
				r := ts.do(rt.method, path, "", nil)
				r.wantError(t, 401, "unauthenticated", "")
				if r.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
			})
			t.Run("ErrGarbageToken", func(t *testing.T) {
				ts.do(rt.method, path, "garbage", nil).wantError(t, 401, "unauthenticated", "")
			})
			t.Run("ErrUnknownKey", func(t *testing.T) {
				// Right shape and prefix, wrong rest.
				forged := a.key[:11] + strings.Repeat("0", len(a.key)-11)
				ts.do(rt.method, path, forged, nil).wantError(t, 401, "unauthenticated", "")
			})
			switch rt.access {
			case admin:
				t.Run("ErrOrganizationKey", func(t *testing.T) {
					ts.do(rt.method, path, a.key, nil).wantError(t, 403, "permission_denied", "")
				})
			case org:
				t.Run("ErrAdminToken", func(t *testing.T) {
					ts.do(rt.method, path, testAdminToken, nil).wantError(t, 403, "permission_denied", "")
				})
			case adminOrg:
				t.Run("Both", func(t *testing.T) {
					ts.do(rt.method, path, testAdminToken, nil).want(t, http.StatusOK, nil)
					ts.do(rt.method, path, a.key, nil).want(t, http.StatusOK, nil)
				})
			}
		})
	}
}

func TestAuth_Header(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	for _, tc := range []struct {
		name   string
		header string
		status int
	}{
		{"Bearer", "Bearer " + a.key, 200},
		{"SchemeCaseInsensitive", "bearer " + a.key, 200},
		{"ErrBasic", "Basic " + a.key, 401},
		{"ErrNoScheme", a.key, 401},
		{"ErrEmptyToken", "Bearer ", 401},
		{"ErrAdminTokenPrefix", "Bearer " + testAdminToken[:len(testAdminToken)-1], 401},
		{"ErrAdminTokenLonger", "Bearer " + testAdminToken + "x", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", ts.URL+"/v1/event-types", nil)
			req.Header.Set("Authorization", tc.header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	t.Run("ErrNoAdminTokenConfigured", func(t *testing.T) {
		// An empty admin token must not let an empty bearer in.
		s := New(Config{Store: ts.store})
		if s.isAdminToken("") {
			t.Fatal("empty token accepted as admin")
		}
	})
}
