package storetest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

func testOrganizations(t *testing.T, open func(t *testing.T) Store) {
	t.Run("Create", func(t *testing.T) {
		h := setup(t, open)
		o := &hookd.Organization{Name: "Acme"}
		if err := h.s.CreateOrganization(h.ctx, o); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(o.ID, hookd.PrefixOrganization) {
			t.Fatalf("ID = %q, want prefix %q", o.ID, hookd.PrefixOrganization)
		}
		wantNear(t, "CreatedAt", o.CreatedAt)
		got, err := h.s.FindOrganization(h.ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "found organization", o, got)
		wantTime(t, "found CreatedAt", got.CreatedAt)
		if got.IsPartner || got.PartnerID != "" {
			t.Fatalf("new organization: IsPartner %v, PartnerID %q", got.IsPartner, got.PartnerID)
		}
	})
	t.Run("Partner", func(t *testing.T) {
		h := setup(t, open)
		partner := h.org("")
		customer := h.org(partner.ID)
		got, err := h.s.FindOrganization(h.ctx, customer.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.PartnerID != partner.ID || got.IsPartner {
			t.Fatalf("customer: PartnerID %q IsPartner %v, want %q false", got.PartnerID, got.IsPartner, partner.ID)
		}
		if got, err = h.s.FindOrganization(h.ctx, partner.ID); err != nil {
			t.Fatal(err)
		}
		if !got.IsPartner || got.PartnerID != "" {
			t.Fatalf("partner: IsPartner %v PartnerID %q, want true \"\"", got.IsPartner, got.PartnerID)
		}
	})
	t.Run("ErrPartnerNotFound", func(t *testing.T) {
		h := setup(t, open)
		err := h.s.CreateOrganization(h.ctx, &hookd.Organization{Name: "Lost", PartnerID: "org_nosuch"})
		wantCode(t, err, hookd.ENOTFOUND, "partner_id")
	})
	t.Run("ErrPartnerHasPartner", func(t *testing.T) {
		h := setup(t, open)
		partner := h.org("")
		customer := h.org(partner.ID)
		o := &hookd.Organization{Name: "Second level", PartnerID: customer.ID}
		wantCode(t, h.s.CreateOrganization(h.ctx, o), hookd.EINVALID, "partner_id")
		if o.ID != "" {
			t.Fatalf("refused organization got ID %q", o.ID)
		}
		// Nothing was written: the customer did not become a partner.
		got, err := h.s.FindOrganization(h.ctx, customer.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.IsPartner {
			t.Fatal("refused organization made its would-be partner a partner")
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		h := setup(t, open)
		_, err := h.s.FindOrganization(h.ctx, "org_nosuch")
		wantCode(t, err, hookd.ENOTFOUND, "")
	})
}

func testAPIKeys(t *testing.T, open func(t *testing.T) Store) {
	newKey := func(h *harness, orgID, name string) (*hookd.APIKey, string) {
		h.t.Helper()
		key, prefix, hash := hookd.NewAPIKey()
		k := &hookd.APIKey{OrganizationID: orgID, Name: name, Prefix: prefix, Hash: hash}
		if err := h.s.CreateAPIKey(h.ctx, k); err != nil {
			h.t.Fatalf("CreateAPIKey: %v", err)
		}
		return k, key
	}
	t.Run("CreateFind", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		k, key := newKey(h, o.ID, "CI")
		if !strings.HasPrefix(k.ID, hookd.PrefixAPIKey) {
			t.Fatalf("ID = %q, want prefix %q", k.ID, hookd.PrefixAPIKey)
		}
		wantNear(t, "CreatedAt", k.CreatedAt)
		prefix, hash, _ := hookd.SplitAPIKey(key)
		got, err := h.s.FindAPIKeys(h.ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("FindAPIKeys = %d keys, want 1", len(got))
		}
		wantEqual(t, "found key", k, got[0])
		if !bytes.Equal(got[0].Hash, hash) {
			t.Fatal("stored hash is not the key's hash")
		}
	})
	t.Run("UnknownPrefix", func(t *testing.T) {
		h := setup(t, open)
		newKey(h, h.org("").ID, "CI")
		got, err := h.s.FindAPIKeys(h.ctx, "hk_00000000")
		if err != nil || len(got) != 0 {
			t.Fatalf("FindAPIKeys(unknown) = %v, %v; want none", got, err)
		}
	})
	t.Run("SharedPrefix", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		var want []string
		for _, name := range []string{"one", "two"} {
			k := &hookd.APIKey{OrganizationID: o.ID, Name: name, Prefix: "hk_shared00", Hash: hookd.HashAPIKey(name)}
			if err := h.s.CreateAPIKey(h.ctx, k); err != nil {
				t.Fatal(err)
			}
			want = append(want, k.ID)
		}
		got, err := h.s.FindAPIKeys(h.ctx, "hk_shared00")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || !(got[0].ID == want[0] && got[1].ID == want[1] || got[0].ID == want[1] && got[1].ID == want[0]) {
			t.Fatalf("FindAPIKeys = %v, want both keys %v", got, want)
		}
	})
	t.Run("ErrOrganizationNotFound", func(t *testing.T) {
		h := setup(t, open)
		_, prefix, hash := hookd.NewAPIKey()
		err := h.s.CreateAPIKey(h.ctx, &hookd.APIKey{OrganizationID: "org_nosuch", Name: "x", Prefix: prefix, Hash: hash})
		wantCode(t, err, hookd.ENOTFOUND, "")
	})
	t.Run("Delete", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		k, _ := newKey(h, o.ID, "CI")
		other, _ := newKey(h, o.ID, "kept")
		if err := h.s.DeleteAPIKey(h.ctx, o.ID, k.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := h.s.FindAPIKeys(h.ctx, k.Prefix); err != nil || len(got) != 0 {
			t.Fatalf("FindAPIKeys after delete = %v, %v; want none", got, err)
		}
		if got, err := h.s.FindAPIKeys(h.ctx, other.Prefix); err != nil || len(got) != 1 {
			t.Fatalf("the other key: FindAPIKeys = %v, %v; want it", got, err)
		}
		wantCode(t, h.s.DeleteAPIKey(h.ctx, o.ID, k.ID), hookd.ENOTFOUND, "")
	})
	t.Run("DeleteOtherOrganization", func(t *testing.T) {
		h := setup(t, open)
		owner, intruder := h.org(""), h.org("")
		k, _ := newKey(h, owner.ID, "CI")
		wantCode(t, h.s.DeleteAPIKey(h.ctx, intruder.ID, k.ID), hookd.ENOTFOUND, "")
		if got, err := h.s.FindAPIKeys(h.ctx, k.Prefix); err != nil || len(got) != 1 {
			t.Fatalf("key after another organization's delete: %v, %v; want it kept", got, err)
		}
	})
}

func testUsers(t *testing.T, open func(t *testing.T) Store) {
	newUser := func(orgID, email string) *hookd.User {
		return &hookd.User{OrganizationID: orgID, Email: email, PasswordHash: []byte("$2a$10$not-a-real-bcrypt-hash")}
	}
	t.Run("CreateFind", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		u := newUser(o.ID, "  Alice@Example.COM ")
		if err := h.s.CreateUser(h.ctx, u); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u.ID, hookd.PrefixUser) {
			t.Fatalf("ID = %q, want prefix %q", u.ID, hookd.PrefixUser)
		}
		if u.Email != "alice@example.com" {
			t.Fatalf("Email = %q, want it normalised", u.Email)
		}
		wantNear(t, "CreatedAt", u.CreatedAt)
		byEmail, err := h.s.FindUserByEmail(h.ctx, "ALICE@example.com")
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "user by email", u, byEmail)
		byID, err := h.s.FindUser(h.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "user by id", u, byID)
	})
	t.Run("ErrEmailTaken", func(t *testing.T) {
		h := setup(t, open)
		a, b := h.org(""), h.org("")
		if err := h.s.CreateUser(h.ctx, newUser(a.ID, "bob@example.com")); err != nil {
			t.Fatal(err)
		}
		// Emails are global: a login names one user of one organization.
		wantCode(t, h.s.CreateUser(h.ctx, newUser(b.ID, "Bob@Example.com")), hookd.ECONFLICT, "email")
	})
	t.Run("ErrOrganizationNotFound", func(t *testing.T) {
		h := setup(t, open)
		wantCode(t, h.s.CreateUser(h.ctx, newUser("org_nosuch", "carol@example.com")), hookd.ENOTFOUND, "")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		h := setup(t, open)
		_, err := h.s.FindUserByEmail(h.ctx, "nobody@example.com")
		wantCode(t, err, hookd.ENOTFOUND, "")
		_, err = h.s.FindUser(h.ctx, "usr_nosuch")
		wantCode(t, err, hookd.ENOTFOUND, "")
	})
}

func testSessions(t *testing.T, open func(t *testing.T) Store) {
	// user creates an organization and a user of it.
	user := func(h *harness) *hookd.User {
		h.t.Helper()
		u := &hookd.User{OrganizationID: h.org("").ID, Email: hookd.NewID("") + "@example.com", PasswordHash: []byte("$2a$10$x")}
		if err := h.s.CreateUser(h.ctx, u); err != nil {
			h.t.Fatalf("CreateUser: %v", err)
		}
		return u
	}
	session := func(h *harness, u *hookd.User, token string, expires time.Time) *hookd.Session {
		h.t.Helper()
		s := &hookd.Session{TokenHash: hookd.HashAPIKey(token), UserID: u.ID, OrganizationID: u.OrganizationID, ExpiresAt: expires}
		if err := h.s.CreateSession(h.ctx, s); err != nil {
			h.t.Fatalf("CreateSession: %v", err)
		}
		return s
	}
	t.Run("CreateFind", func(t *testing.T) {
		h := setup(t, open)
		u := user(h)
		expires := time.Now().Add(time.Hour)
		s := session(h, u, "token-1", expires)
		wantNear(t, "CreatedAt", s.CreatedAt)
		wantTime(t, "ExpiresAt", s.ExpiresAt)
		if !s.ExpiresAt.Equal(expires.Truncate(time.Millisecond)) {
			t.Fatalf("ExpiresAt = %v, want %v truncated to milliseconds", s.ExpiresAt, expires)
		}
		got, err := h.s.FindSession(h.ctx, hookd.HashAPIKey("token-1"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "found session", s, got)
	})
	t.Run("Expiry", func(t *testing.T) {
		h := setup(t, open)
		s := session(h, user(h), "token-1", time.Now().Add(time.Minute))
		if _, err := h.s.FindSession(h.ctx, s.TokenHash, s.ExpiresAt.Add(-time.Millisecond)); err != nil {
			t.Fatalf("FindSession just before expiry: %v", err)
		}
		_, err := h.s.FindSession(h.ctx, s.TokenHash, s.ExpiresAt)
		wantCode(t, err, hookd.ENOTFOUND, "")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		h := setup(t, open)
		session(h, user(h), "token-1", time.Now().Add(time.Hour))
		_, err := h.s.FindSession(h.ctx, hookd.HashAPIKey("token-2"), time.Now())
		wantCode(t, err, hookd.ENOTFOUND, "")
	})
	t.Run("ErrUserNotFound", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		err := h.s.CreateSession(h.ctx, &hookd.Session{TokenHash: hookd.HashAPIKey("t"), UserID: "usr_nosuch", OrganizationID: o.ID, ExpiresAt: time.Now().Add(time.Hour)})
		wantCode(t, err, hookd.ENOTFOUND, "")
	})
	t.Run("Delete", func(t *testing.T) {
		h := setup(t, open)
		u := user(h)
		gone, kept := session(h, u, "gone", time.Now().Add(time.Hour)), session(h, u, "kept", time.Now().Add(time.Hour))
		if err := h.s.DeleteSession(h.ctx, gone.TokenHash); err != nil {
			t.Fatal(err)
		}
		_, err := h.s.FindSession(h.ctx, gone.TokenHash, time.Now())
		wantCode(t, err, hookd.ENOTFOUND, "")
		if err := h.s.DeleteSession(h.ctx, gone.TokenHash); err != nil {
			t.Fatalf("deleting a deleted session: %v", err)
		}
		if _, err := h.s.FindSession(h.ctx, kept.TokenHash, time.Now()); err != nil {
			t.Fatalf("the other session: %v", err)
		}
	})
}
