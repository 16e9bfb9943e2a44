package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/hookd-dev/hookd"
)

// CreateOrganization sets o.ID and o.CreatedAt and stores o. ENOTFOUND
// (field partner_id) when PartnerID names no organization; EINVALID (field
// partner_id) when the partner has a partner itself.
func (db *DB) CreateOrganization(ctx context.Context, o *hookd.Organization) error {
	id, created := hookd.NewID(hookd.PrefixOrganization), now()
	err := db.write(ctx, "create organization", func(tx *sql.Tx) error {
		var partner sql.NullString
		if o.PartnerID != "" {
			err := tx.QueryRowContext(ctx, `SELECT partner_id FROM organizations WHERE id = ?`, o.PartnerID).Scan(&partner)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return &hookd.Error{Code: hookd.ENOTFOUND, Message: "partner organization not found", Field: "partner_id"}
			case err != nil:
				return err
			case partner.Valid:
				return hookd.FieldErrorf("partner_id", "organization %s is itself a customer of a partner; partners are one level only", o.PartnerID)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO organizations (id, name, partner_id, created_at) VALUES (?, ?, ?, ?)`,
			id, o.Name, nullString(o.PartnerID), millis(created))
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
		partner sql.NullString
		created int64
	)
	err := db.r.QueryRowContext(ctx, `
		SELECT id, name, partner_id, created_at,
		       EXISTS (SELECT 1 FROM organizations c WHERE c.partner_id = o.id)
		FROM organizations o WHERE id = ?`, id).Scan(&o.ID, &o.Name, &partner, &created, &o.IsPartner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, hookd.Errorf(hookd.ENOTFOUND, "organization not found")
	case err != nil:
		return nil, wrap("find organization", err)
	}
	o.PartnerID, o.CreatedAt = partner.String, fromMillis(created)
	return &o, nil
}

// organizationExists is the ENOTFOUND check of methods that create objects
// of an organization, inside their transaction.
func organizationExists(ctx context.Context, tx *sql.Tx, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM organizations WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return hookd.Errorf(hookd.ENOTFOUND, "organization not found")
	}
	return err
}

// CreateAPIKey sets k.ID and k.CreatedAt and stores k, whose Prefix and
// Hash the caller made (hookd.NewAPIKey). ENOTFOUND when the organization
// does not exist.
func (db *DB) CreateAPIKey(ctx context.Context, k *hookd.APIKey) error {
	id, created := hookd.NewID(hookd.PrefixAPIKey), now()
	err := db.write(ctx, "create api key", func(tx *sql.Tx) error {
		if err := organizationExists(ctx, tx, k.OrganizationID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, organization_id, name, prefix, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			id, k.OrganizationID, k.Name, k.Prefix, k.Hash, millis(created))
		return err
	})
	if err != nil {
		return err
	}
	k.ID, k.CreatedAt = id, created
	return nil
}

// FindAPIKeys returns the keys whose Prefix is prefix, none when there are
// none; the caller compares hashes in constant time.
func (db *DB) FindAPIKeys(ctx context.Context, prefix string) ([]*hookd.APIKey, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, organization_id, name, prefix, hash, created_at FROM api_keys WHERE prefix = ? ORDER BY id`, prefix)
	if err != nil {
		return nil, wrap("find api keys", err)
	}
	defer rows.Close()
	var keys []*hookd.APIKey
	for rows.Next() {
		var (
			k       hookd.APIKey
			created int64
		)
		if err := rows.Scan(&k.ID, &k.OrganizationID, &k.Name, &k.Prefix, &k.Hash, &created); err != nil {
			return nil, wrap("find api keys", err)
		}
		k.CreatedAt = fromMillis(created)
		keys = append(keys, &k)
	}
	return keys, wrap("find api keys", rows.Err())
}

// DeleteAPIKey removes key keyID of organization orgID; it stops working at
// once. ENOTFOUND when there is no such key in that organization.
func (db *DB) DeleteAPIKey(ctx context.Context, orgID, keyID string) error {
	return db.write(ctx, "delete api key", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE id = ? AND organization_id = ?`, keyID, orgID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return hookd.Errorf(hookd.ENOTFOUND, "api key not found")
		}
		return nil
	})
}

// CreateUser sets u.ID and u.CreatedAt, normalises u.Email
// (hookd.NormalizeEmail) and stores u. ENOTFOUND when the organization does
// not exist; ECONFLICT (field email) when the email is taken.
func (db *DB) CreateUser(ctx context.Context, u *hookd.User) error {
	id, created, email := hookd.NewID(hookd.PrefixUser), now(), hookd.NormalizeEmail(u.Email)
	err := db.write(ctx, "create user", func(tx *sql.Tx) error {
		if err := organizationExists(ctx, tx, u.OrganizationID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO users (id, organization_id, email, password_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			id, u.OrganizationID, email, u.PasswordHash, millis(created))
		if isConstraint(err, uniqueViolation) {
			return &hookd.Error{Code: hookd.ECONFLICT, Message: "a user with this email already exists", Field: "email"}
		}
		return err
	})
	if err != nil {
		return err
	}
	u.ID, u.CreatedAt, u.Email = id, created, email
	return nil
}

// FindUserByEmail looks the email up in normalised form. ENOTFOUND.
func (db *DB) FindUserByEmail(ctx context.Context, email string) (*hookd.User, error) {
	return db.findUser(ctx, `email = ?`, hookd.NormalizeEmail(email))
}

// FindUser returns a user by id. ENOTFOUND.
func (db *DB) FindUser(ctx context.Context, id string) (*hookd.User, error) {
	return db.findUser(ctx, `id = ?`, id)
}

func (db *DB) findUser(ctx context.Context, where string, arg string) (*hookd.User, error) {
	var (
		u       hookd.User
		created int64
	)
	err := db.r.QueryRowContext(ctx, `SELECT id, organization_id, email, password_hash, created_at FROM users WHERE `+where, arg).
		Scan(&u.ID, &u.OrganizationID, &u.Email, &u.PasswordHash, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, hookd.Errorf(hookd.ENOTFOUND, "user not found")
	case err != nil:
		return nil, wrap("find user", err)
	}
	u.CreatedAt = fromMillis(created)
	return &u, nil
}

// nullString stores "" as NULL.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
