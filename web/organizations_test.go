package web

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestOrganizations_Create(t *testing.T) {
	ts := newTestServer(t, nil)

	var partner orgObj
	t.Run("OK", func(t *testing.T) {
		r := ts.do("POST", "/v1/organizations", testAdminToken, map[string]any{"name": "Partner Inc"})
		r.want(t, http.StatusCreated, &partner)
		if !strings.HasPrefix(partner.ID, "org_") || partner.Name != "Partner Inc" || partner.PartnerID != nil ||
			time.Since(partner.CreatedAt) > time.Minute || partner.CreatedAt.Location() != time.UTC {
			t.Fatalf("organization = %+v", partner)
		}
		if !strings.Contains(string(r.Body), `"partner_id":null`) {
			t.Fatalf("body %s: want partner_id null", r.Body)
		}
	})
	t.Run("WithPartner", func(t *testing.T) {
		var o orgObj
		ts.do("POST", "/v1/organizations", testAdminToken, map[string]any{"name": "Customer", "partner_id": partner.ID}).want(t, http.StatusCreated, &o)
		if o.PartnerID == nil || *o.PartnerID != partner.ID {
			t.Fatalf("organization = %+v", o)
		}
		var got orgObj
		ts.do("GET", "/v1/organizations/"+o.ID, testAdminToken, nil).want(t, http.StatusOK, &got)
		equalJSON(t, "organization", got, o)

		// One level only: a customer cannot be a partner.
		ts.do("POST", "/v1/organizations", testAdminToken, map[string]any{"name": "Nested", "partner_id": o.ID}).
			wantError(t, 400, "invalid_argument", "partner_id")
	})
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"ErrNameMissing", map[string]any{}, 400, "invalid_argument", "name"},
		{"ErrNameTooLong", map[string]any{"name": strings.Repeat("n", 101)}, 400, "invalid_argument", "name"},
		{"ErrNameType", map[string]any{"name": false}, 400, "invalid_argument", "name"},
		{"ErrPartnerUnknown", map[string]any{"name": "x", "partner_id": "org_00000000000000000000000000"}, 404, "not_found", "partner_id"},
		{"ErrUnknownField", map[string]any{"name": "x", "id": "org_mine"}, 400, "invalid_argument", "id"},
		{"ErrMalformedJSON", `{`, 400, "invalid_argument", ""},
		{"ErrBodyTooLarge", map[string]any{"name": strings.Repeat("n", 70<<10)}, 413, "payload_too_large", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.do("POST", "/v1/organizations", testAdminToken, tc.body).wantError(t, tc.status, tc.code, tc.field)
		})
	}
	t.Run("ErrGetNotFound", func(t *testing.T) {
		ts.do("GET", "/v1/organizations/org_00000000000000000000000000", testAdminToken, nil).wantError(t, 404, "not_found", "")
	})
}

func TestAPIKeys(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	b := ts.createOrg("Other", "")

	var k struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		Key       string    `json:"key"`
		CreatedAt time.Time `json:"created_at"`
	}
	ts.do("POST", "/v1/organizations/"+a.org.ID+"/api-keys", testAdminToken, map[string]any{"name": "CI"}).want(t, http.StatusCreated, &k)
	if !strings.HasPrefix(k.ID, "key_") || k.Name != "CI" || !strings.HasPrefix(k.Key, "hk_") || k.CreatedAt.IsZero() {
		t.Fatalf("key = %+v", k)
	}
	ts.do("GET", "/v1/webhooks", k.Key, nil).want(t, http.StatusOK, nil)
	if strings.Contains(ts.logs.String(), k.Key) || strings.Contains(ts.logs.String(), k.Key[11:]) {
		t.Fatal("an API key is in the log")
	}

	t.Run("ErrNameMissing", func(t *testing.T) {
		ts.do("POST", "/v1/organizations/"+a.org.ID+"/api-keys", testAdminToken, map[string]any{}).wantError(t, 400, "invalid_argument", "name")
	})
	t.Run("ErrOrganizationNotFound", func(t *testing.T) {
		ts.do("POST", "/v1/organizations/org_00000000000000000000000000/api-keys", testAdminToken, map[string]any{"name": "x"}).wantError(t, 404, "not_found", "")
	})
	t.Run("ErrDeleteOtherOrganizationsKey", func(t *testing.T) {
		ts.do("DELETE", "/v1/organizations/"+b.org.ID+"/api-keys/"+k.ID, testAdminToken, nil).wantError(t, 404, "not_found", "")
		ts.do("GET", "/v1/webhooks", k.Key, nil).want(t, http.StatusOK, nil)
	})
	t.Run("DeleteStopsItAtOnce", func(t *testing.T) {
		ts.do("DELETE", "/v1/organizations/"+a.org.ID+"/api-keys/"+k.ID, testAdminToken, nil).want(t, http.StatusNoContent, nil)
		ts.do("GET", "/v1/webhooks", k.Key, nil).wantError(t, 401, "unauthenticated", "")
		ts.do("GET", "/v1/webhooks", a.key, nil).want(t, http.StatusOK, nil) // the other key still works
		ts.do("DELETE", "/v1/organizations/"+a.org.ID+"/api-keys/"+k.ID, testAdminToken, nil).wantError(t, 404, "not_found", "")
	})
}

func TestUsers_Create(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	const password = "correct horse battery"

	var u struct {
		ID             string `json:"id"`
		Email          string `json:"email"`
		OrganizationID string `json:"organization_id"`
	}
	ts.do("POST", "/v1/organizations/"+a.org.ID+"/users", testAdminToken, map[string]any{"email": "Alice@Example.com", "password": password}).
		want(t, http.StatusCreated, &u)
	if !strings.HasPrefix(u.ID, "usr_") || u.Email != "alice@example.com" || u.OrganizationID != a.org.ID {
		t.Fatalf("user = %+v", u)
	}
	for _, tc := range []struct {
		name   string
		path   string
		body   any
		status int
		code   string
		field  string
	}{
		{"ErrEmailTaken", a.org.ID, map[string]any{"email": "ALICE@example.com", "password": password}, 409, "conflict", "email"},
		{"ErrEmailMissing", a.org.ID, map[string]any{"password": password}, 400, "invalid_argument", "email"},
		{"ErrEmailInvalid", a.org.ID, map[string]any{"email": "alice", "password": password}, 400, "invalid_argument", "email"},
		{"ErrPasswordShort", a.org.ID, map[string]any{"email": "bob@example.com", "password": "short"}, 400, "invalid_argument", "password"},
		{"ErrPasswordLong", a.org.ID, map[string]any{"email": "bob@example.com", "password": strings.Repeat("p", 73)}, 400, "invalid_argument", "password"},
		{"ErrPasswordType", a.org.ID, map[string]any{"email": "bob@example.com", "password": 12345678}, 400, "invalid_argument", "password"},
		{"ErrOrganizationNotFound", "org_00000000000000000000000000", map[string]any{"email": "bob@example.com", "password": password}, 404, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.do("POST", "/v1/organizations/"+tc.path+"/users", testAdminToken, tc.body).wantError(t, tc.status, tc.code, tc.field)
		})
	}
	if strings.Contains(ts.logs.String(), password) {
		t.Fatal("a password is in the log")
	}
}
