package postgres

import (
	"context"
	"errors"

	"github.com/hookd-dev/hookd"
	"github.com/jackc/pgx/v5"
)

// CreateOrganization sets o.ID and o.CreatedAt and stores o. ENOTFOUND
// (field partner_id) when PartnerID names no organization; EINVALID (field
// partner_id) when the partner has a partner itself.
func (db *DB) CreateOrganization(ctx context.Context, o *hookd.Organization) error {
	id, created := hookd.NewID(hookd.PrefixOrganization), now()
	err := db.write(ctx, "create organization", func(tx pgx.Tx) error {
		if o.PartnerID != "" {
			// An organization's partner never changes, so what this read
			// sees stays true until the insert commits.
			var partner *string
			err := tx.QueryRow(ctx, `SELECT partner_id FROM organizations WHERE id = $1`, o.PartnerID).Scan(&partner)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				return &hookd.Error{Code: hookd.ENOTFOUND, Message: "partner organization not found", Field: "partner_id"}
			case err != nil:
				return err
			case partner != nil:
				return hookd.FieldErrorf("partner_id", "organization %s is itself a customer of a partner; partners are one level only", o.PartnerID)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO organizations (id, name, partner_id, created_at) VALUES ($1, $2, $3, $4)`,
			id, o.Name, nullString(o.PartnerID), created)
		return err
	})
	if err != nil {
		return err
	}
	o.ID, o.CreatedAt, o.IsPartner = id, created, false
	return nil
}

// FindOrganization returns the organization with IsPartner filled. ENOTFOUND.
func (db *DB) FindOrganization(ctx context.Context, id string) (*hookd.Organization, error) {
	var (
		o       hookd.Organization
		partner *string
	)
	err := db.pool.QueryRow(ctx, `
		SELECT id, name, partner_id, created_at,
		       EXISTS (SELECT 1 FROM organizations c WHERE c.partner_id = o.id)
		FROM organizations o WHERE id = $1`, id).Scan(&o.ID, &o.Name, &partner, &o.CreatedAt, &o.IsPartner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, hookd.Errorf(hookd.ENOTFOUND, "organization not found")
	case err != nil:
		return nil, wrap("find organization", err)
	}
	if partner != nil {
		o.PartnerID = *partner
	}
	o.CreatedAt = o.CreatedAt.UTC()
	return &o, nil
}

// errOrganizationNotFound is the ENOTFOUND of methods that create objects
// of an organization.
func errOrganizationNotFound() error { return hookd.Errorf(hookd.ENOTFOUND, "organization not found") }

// CreateAPIKey sets k.ID and k.CreatedAt and stores k, whose Prefix and
// Hash the caller made (hookd.NewAPIKey). ENOTFOUND when the organization
// does not exist.
func (db *DB) CreateAPIKey(ctx context.Context, k *hookd.APIKey) error {
	id, created := hookd.NewID(hookd.PrefixAPIKey), now()
	// Organizations are never deleted, so the existence check and the
	// insert can be one statement: no row inserted means no organization.
	tag, err := db.pool.Exec(ctx, `
		INSERT INTO api_keys (id, organization_id, name, prefix, hash, created_at)
		SELECT $1, id, $3, $4, $5, $6 FROM organizations WHERE id = $2`,
		id, k.OrganizationID, k.Name, k.Prefix, k.Hash, created)
	switch {
	case err != nil:
		return wrap("create api key", err)
	case tag.RowsAffected() == 0:
		return errOrganizationNotFound()
	}
	k.ID, k.CreatedAt = id, created
	return nil
}

// FindAPIKeys returns the keys whose Prefix is prefix, none when there are
// none; the caller compares hashes in constant time.
func (db *DB) FindAPIKeys(ctx context.Context, prefix string) ([]*hookd.APIKey, error) {
	rows, _ := db.pool.Query(ctx, `SELECT id, organization_id, name, prefix, hash, created_at FROM api_keys WHERE prefix = $1 ORDER BY id`, prefix)
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*hookd.APIKey, error) {
		var k hookd.APIKey
		err := row.Scan(&k.ID, &k.OrganizationID, &k.Name, &k.Prefix, &k.Hash, &k.CreatedAt)
		k.CreatedAt = k.CreatedAt.UTC()
		return &k, err
	})
	if err != nil {
		return nil, wrap("find api keys", err)
	}
	return keys, nil
}

// DeleteAPIKey removes key keyID of organization orgID; it stops working at
// once. ENOTFOUND when there is no such key in that organization.
func (db *DB) DeleteAPIKey(ctx context.Context, orgID, keyID string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM api_keys WHERE id = $1 AND organization_id = $2`, keyID, orgID)
	switch {
	case err != nil:
		return wrap("delete api key", err)
	case tag.RowsAffected() == 0:
		return hookd.Errorf(hookd.ENOTFOUND, "api key not found")
	}
	return nil
}

// CreateUser sets u.ID and u.CreatedAt, normalises u.Email
// (hookd.NormalizeEmail) and stores u. ENOTFOUND when the organization does
// not exist; ECONFLICT (field email) when the email is taken.
func (db *DB) CreateUser(ctx context.Context, u *hookd.User) error {
	id, created, email := hookd.NewID(hookd.PrefixUser), now(), hookd.NormalizeEmail(u.Email)
	// As in CreateAPIKey, one statement; the organization is checked before
	// the email, since no row is inserted, and none can clash, without it.
	tag, err := db.pool.Exec(ctx, `
		INSERT INTO users (id, organization_id, email, password_hash, created_at)
		SELECT $1, id, $3, $4, $5 FROM organizations WHERE id = $2`,
		id, u.OrganizationID, email, u.PasswordHash, created)
	switch {
	case isViolation(err, uniqueViolation, "users_email_key"):
		return &hookd.Error{Code: hookd.ECONFLICT, Message: "a user with this email already exists", Field: "email"}
	case err != nil:
		return wrap("create user", err)
	case tag.RowsAffected() == 0:
		return errOrganizationNotFound()
	}
	u.ID, u.CreatedAt, u.Email = id, created, email
	return nil
}

// FindUserByEmail looks the email up in normalised form. ENOTFOUND.
func (db *DB) FindUserByEmail(ctx context.Context, email string) (*hookd.User, error) {
	return db.findUser(ctx, `email = $1`, hookd.NormalizeEmail(email))
}

// FindUser returns a user by id. ENOTFOUND.
func (db *DB) FindUser(ctx context.Context, id string) (*hookd.User, error) {
	return db.findUser(ctx, `id = $1`, id)
}

func (db *DB) findUser(ctx context.Context, where string, arg string) (*hookd.User, error) {
	var u hookd.User
	err := db.pool.QueryRow(ctx, `SELECT id, organization_id, email, password_hash, created_at FROM users WHERE `+where, arg).
		Scan(&u.ID, &u.OrganizationID, &u.Email, &u.PasswordHash, &u.CreatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, hookd.Errorf(hookd.ENOTFOUND, "user not found")
	case err != nil:
		return nil, wrap("find user", err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return &u, nil
}

// nullString stores "" as NULL.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
