package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/hookd-dev/hookd"
)

// SPEC §6, secret: what the store keeps of an API key is its lookup prefix
// and its SHA-256, and of a password a bcrypt hash at the default cost or
// more; neither the key nor the password itself.
func TestCredentials_StoredAsHashes(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	ctx := context.Background()

	t.Run("APIKey", func(t *testing.T) {
		prefix, _, ok := hookd.SplitAPIKey(a.key)
		if !ok {
			t.Fatalf("%q is not an API key", a.key)
		}
		keys, err := ts.store.FindAPIKeys(ctx, prefix)
		if err != nil || len(keys) != 1 {
			t.Fatalf("FindAPIKeys(%q) = %d keys, %v", prefix, len(keys), err)
		}
		sum := sha256.Sum256([]byte(a.key))
		if k := keys[0]; !bytes.Equal(k.Hash, sum[:]) || k.Prefix != prefix {
			t.Fatalf("stored prefix %q and hash %x, want %q and the key's SHA-256 %x", k.Prefix, k.Hash, prefix, sum)
		}
	})
	t.Run("Password", func(t *testing.T) {
		const password = "correct horse battery"
		ts.do("POST", "/v1/organizations/"+a.org.ID+"/users", testAdminToken, map[string]any{"email": "ada@acme.example", "password": password}).
			want(t, http.StatusCreated, nil)
		u, err := ts.store.FindUserByEmail(ctx, "ada@acme.example")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(u.PasswordHash, []byte(password)) {
			t.Fatal("the password is stored in clear")
		}
		if cost, err := bcrypt.Cost(u.PasswordHash); err != nil || cost < bcrypt.DefaultCost {
			t.Fatalf("stored hash is not bcrypt at cost ≥ %d: cost %d, %v", bcrypt.DefaultCost, cost, err)
		}
		if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) != nil {
			t.Fatal("the stored hash does not match the password")
		}
	})
}
