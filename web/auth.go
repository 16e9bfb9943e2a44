package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/hookd-dev/hookd"
)

// caller is who made a request: the platform (admin token) or an
// organization (API key). Public routes get the zero caller.
type caller struct {
	admin bool
	orgID string // the key's organization; "" for the admin
	keyID string
}

// handler is the shape of every route's handler: it gets the authenticated
// caller and returns an error for writeError instead of writing one.
type handler func(w http.ResponseWriter, r *http.Request, c caller) error

var (
	errUnauthenticated = hookd.Errorf(hookd.EUNAUTHORIZED, "missing or unknown credentials: send Authorization: Bearer <token>")
	errAdminOnly       = hookd.Errorf(hookd.EFORBIDDEN, "this endpoint needs the admin token")
	errOrgOnly         = hookd.Errorf(hookd.EFORBIDDEN, "this endpoint needs an organization API key")
)

// authorize wraps h with the access check of its route.
func (s *Server) authorize(a access, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c caller
		if a != public {
			var err error
			if c, err = s.authenticate(r); err == nil {
				// Counted before the access check: a caller hammering
				// endpoints it may not use is slowed down all the same.
				err = s.rateLimit(w, c)
			}
			if err == nil {
				switch {
				case a == admin && !c.admin:
					err = errAdminOnly
				case a == org && c.admin:
					err = errOrgOnly
				}
			}
			if err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		if err := h(w, r, c); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authenticate identifies the bearer of the request's token. Organization
// keys are looked up on every request, so a deleted key stops working at
// once; only hashes are compared, in constant time.
func (s *Server) authenticate(r *http.Request) (caller, error) {
	token, ok := bearerToken(r)
	if !ok {
		return caller{}, errUnauthenticated
	}
	if s.isAdminToken(token) {
		return caller{admin: true}, nil
	}
	prefix, hash, ok := hookd.SplitAPIKey(token)
	if !ok {
		return caller{}, errUnauthenticated
	}
	keys, err := s.cfg.Store.FindAPIKeys(r.Context(), prefix)
	if err != nil {
		return caller{}, err
	}
	for _, k := range keys {
		if subtle.ConstantTimeCompare(k.Hash, hash) == 1 {
			return caller{orgID: k.OrganizationID, keyID: k.ID}, nil
		}
	}
	return caller{}, errUnauthenticated
}

// isAdminToken compares digests rather than the tokens themselves:
// ConstantTimeCompare returns early on a length mismatch, which would tell
// an attacker the admin token's length.
func (s *Server) isAdminToken(token string) bool {
	if s.cfg.AdminToken == "" {
		return false
	}
	want, got := sha256.Sum256([]byte(s.cfg.AdminToken)), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}
