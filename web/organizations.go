package web

import (
	"context"
	"net/http"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hookd-dev/hookd"
)

// organizationJSON is SPEC §3's organization object.
type organizationJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	PartnerID *string   `json:"partner_id"` // null when it has no partner
	CreatedAt time.Time `json:"created_at"`
}

func toOrganizationJSON(o *hookd.Organization) organizationJSON {
	out := organizationJSON{ID: o.ID, Name: o.Name, CreatedAt: o.CreatedAt.UTC()}
	if o.PartnerID != "" {
		out.PartnerID = &o.PartnerID
	}
	return out
}

// POST /v1/organizations {name, partner_id?}
func (s *Server) handleCreateOrganization(w http.ResponseWriter, r *http.Request, _ caller) error {
	var in struct {
		Name      string `json:"name"`
		PartnerID string `json:"partner_id"`
	}
	if err := decodeBody(w, r, maxBodySize, &in); err != nil {
		return err
	}
	o := &hookd.Organization{Name: in.Name, PartnerID: in.PartnerID}
	if err := o.Validate(); err != nil {
		return err
	}
	if err := s.cfg.Store.CreateOrganization(r.Context(), o); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toOrganizationJSON(o))
	return nil
}

// GET /v1/organizations/{id}
func (s *Server) handleGetOrganization(w http.ResponseWriter, r *http.Request, _ caller) error {
	o, err := s.cfg.Store.FindOrganization(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toOrganizationJSON(o))
	return nil
}

// apiKeyJSON is the answer to an API key's creation, the only time the key
// itself is shown.
type apiKeyJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

// POST /v1/organizations/{id}/api-keys {name}
func (s *Server) handleCreateAPIKey(w http.ResponseWriter, r *http.Request, _ caller) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeBody(w, r, maxBodySize, &in); err != nil {
		return err
	}
	key, prefix, hash := hookd.NewAPIKey()
	k := &hookd.APIKey{OrganizationID: r.PathValue("id"), Name: in.Name, Prefix: prefix, Hash: hash}
	if err := k.Validate(); err != nil {
		return err
	}
	if err := s.cfg.Store.CreateAPIKey(r.Context(), k); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apiKeyJSON{ID: k.ID, Name: k.Name, Key: key, CreatedAt: k.CreatedAt.UTC()})
	return nil
}

// DELETE /v1/organizations/{id}/api-keys/{key_id}
func (s *Server) handleDeleteAPIKey(w http.ResponseWriter, r *http.Request, _ caller) error {
	if err := s.cfg.Store.DeleteAPIKey(r.Context(), r.PathValue("id"), r.PathValue("key_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// userJSON is SPEC §3's user object: a portal login.
type userJSON struct {
	ID             string `json:"id"`
	Email          string `json:"email"`
	OrganizationID string `json:"organization_id"`
}

// POST /v1/organizations/{id}/users {email, password}
func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, _ caller) error {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decodeBody(w, r, maxBodySize, &in); err != nil {
		return err
	}
	u, err := s.createUser(r.Context(), r.PathValue("id"), in.Email, in.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, userJSON{ID: u.ID, Email: u.Email, OrganizationID: u.OrganizationID})
	return nil
}

// createUser creates a portal login, its password kept only as a bcrypt
// hash. EINVALID (email, password); ENOTFOUND; ECONFLICT (email) when the
// email is taken.
func (s *Server) createUser(ctx context.Context, orgID, email, password string) (*hookd.User, error) {
	if err := hookd.ValidateUser(email, password); err != nil {
		return nil, err
	}
	// Refuse an unknown organization before paying for bcrypt.
	if _, err := s.cfg.Store.FindOrganization(ctx, orgID); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	u := &hookd.User{OrganizationID: orgID, Email: hookd.NormalizeEmail(email), PasswordHash: hash}
	if err := s.cfg.Store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}
