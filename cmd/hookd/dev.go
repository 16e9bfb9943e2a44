package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/seal"
)

// devState is what `serve --dev` creates once and prints at every start.
// It lives in the data directory, readable only by its owner: dev mode
// trades secrecy for a first try that just works, and says so.
type devState struct {
	AdminToken     string `json:"admin_token"`
	SecretKey      string `json:"secret_key"`
	PartnerOrgID   string `json:"partner_organization_id,omitempty"`
	CustomerOrgID  string `json:"customer_organization_id,omitempty"`
	PartnerAPIKey  string `json:"partner_api_key,omitempty"`
	CustomerAPIKey string `json:"customer_api_key,omitempty"`
	UserEmail      string `json:"user_email,omitempty"`
	UserPassword   string `json:"user_password,omitempty"`
}

func devStatePath(cfg *Config) string { return filepath.Join(cfg.DataDir, "dev-credentials.json") }

// prepareDev fills the admin token and secret key of a --dev run from the
// data directory, creating them on the first run, unless they were given.
// The secret key must survive restarts: webhook secrets sealed under it
// would be unreadable otherwise.
func prepareDev(cfg *Config) error {
	st, err := loadDevState(cfg)
	if err != nil {
		return err
	}
	if st.AdminToken == "" {
		st.AdminToken = "adm_" + randomToken(24)
	}
	if st.SecretKey == "" {
		st.SecretKey = seal.GenerateKey()
	}
	if err := saveDevState(cfg, st); err != nil {
		return err
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = st.AdminToken
	}
	if cfg.SecretKey == "" {
		cfg.SecretKey = st.SecretKey
	}
	return nil
}

func loadDevState(cfg *Config) (*devState, error) {
	var st devState
	b, err := os.ReadFile(devStatePath(cfg))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &st, nil
	case err != nil:
		return nil, fmt.Errorf("--dev: %v", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("--dev: %s is damaged (%v); delete %s to start afresh", devStatePath(cfg), err, cfg.DataDir)
	}
	return &st, nil
}

func saveDevState(cfg *Config, st *devState) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("--dev: %v", err)
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(devStatePath(cfg), b, 0o600); err != nil {
		return fmt.Errorf("--dev: %v", err)
	}
	return nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// devStore is what seeding needs of the store.
type devStore interface {
	CreateOrganization(ctx context.Context, o *hookd.Organization) error
	FindOrganization(ctx context.Context, id string) (*hookd.Organization, error)
	CreateAPIKey(ctx context.Context, k *hookd.APIKey) error
	CreateUser(ctx context.Context, u *hookd.User) error
}

// seedDev creates, on the first --dev run, a partner organization with one
// customer, an API key for each and a portal user of the customer, then
// prints them with the admin token.
func seedDev(ctx context.Context, cfg *Config, store devStore, out io.Writer) error {
	st, err := loadDevState(cfg)
	if err != nil {
		return err
	}
	if st.PartnerOrgID != "" {
		if _, err := store.FindOrganization(ctx, st.PartnerOrgID); err != nil {
			st.PartnerOrgID = "" // the store was replaced: seed it again
		}
	}
	if st.PartnerOrgID == "" {
		partner := &hookd.Organization{Name: "Demo Partner"}
		if err := store.CreateOrganization(ctx, partner); err != nil {
			return fmt.Errorf("--dev: creating the demo partner: %w", err)
		}
		customer := &hookd.Organization{Name: "Demo Customer", PartnerID: partner.ID}
		if err := store.CreateOrganization(ctx, customer); err != nil {
			return fmt.Errorf("--dev: creating the demo customer: %w", err)
		}
		st.PartnerOrgID, st.CustomerOrgID = partner.ID, customer.ID
		if st.PartnerAPIKey, err = devAPIKey(ctx, store, partner.ID); err != nil {
			return err
		}
		if st.CustomerAPIKey, err = devAPIKey(ctx, store, customer.ID); err != nil {
			return err
		}
		st.UserEmail, st.UserPassword = "demo@example.com", randomToken(12)
		hash, err := bcrypt.GenerateFromPassword([]byte(st.UserPassword), bcrypt.DefaultCost)
		if err != nil {
			return err
		}
		u := &hookd.User{OrganizationID: customer.ID, Email: st.UserEmail, PasswordHash: hash}
		if err := store.CreateUser(ctx, u); err != nil {
			return fmt.Errorf("--dev: creating the demo user: %w", err)
		}
		if err := saveDevState(cfg, st); err != nil {
			return err
		}
	}
	base := "http://" + cfg.Listen
	fmt.Fprintf(out, `
hookd --dev: demo credentials (kept in %s; not for production)
  admin token            %s
  partner organization   %s   API key %s
  customer organization  %s   API key %s
  portal user            %s / %s   (%s/login)

Try it:
  hookd listen --secret s3cret &
  curl -s -H "Authorization: Bearer %s" -d '{"name":"local","url":"http://127.0.0.1:9000/hook","events":["scan_completed"],"secret":"s3cret"}' %s/v1/webhooks
  curl -s -H "Authorization: Bearer %s" -d '{"organization_id":"%s","type":"scan_completed","data":{"scan_id":"scn_1","target":"example.com","completed_at":"2026-11-26T10:00:00Z"}}' %s/v1/events

`, devStatePath(cfg), cfg.AdminToken,
		st.PartnerOrgID, st.PartnerAPIKey, st.CustomerOrgID, st.CustomerAPIKey,
		st.UserEmail, st.UserPassword, base,
		st.CustomerAPIKey, base, cfg.AdminToken, st.CustomerOrgID, base)
	return nil
}

func devAPIKey(ctx context.Context, store devStore, orgID string) (string, error) {
	key, prefix, hash := hookd.NewAPIKey()
	k := &hookd.APIKey{OrganizationID: orgID, Name: "dev", Prefix: prefix, Hash: hash}
	if err := store.CreateAPIKey(ctx, k); err != nil {
		return "", fmt.Errorf("--dev: creating an API key: %w", err)
	}
	return key, nil
}
