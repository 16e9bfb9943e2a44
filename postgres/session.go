package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CreateSession stores a portal session: TokenHash, UserID, OrganizationID
// and ExpiresAt given (ExpiresAt is truncated to milliseconds), CreatedAt
// set. Sessions that have expired are deleted on the way. ENOTFOUND when
// the user does not exist; ECONFLICT when the token hash is taken.
func (db *DB) CreateSession(ctx context.Context, s *hookd.Session) error {
	created, expires := now(), ms(s.ExpiresAt)
	var b pgx.Batch
	b.Queue(`DELETE FROM sessions WHERE expires_at <= $1`, created)
	// Users are never deleted, so no row inserted means no user.
	var inserted int64
	b.Queue(`
		INSERT INTO sessions (token_hash, user_id, organization_id, created_at, expires_at)
		SELECT $1, id, $3, $4, $5 FROM users WHERE id = $2`,
		s.TokenHash, s.UserID, s.OrganizationID, created, expires).Exec(func(tag pgconn.CommandTag) error {
		inserted = tag.RowsAffected()
		return nil
	})
	// Outside a transaction, a batch runs in one implicit transaction.
	err := db.pool.SendBatch(ctx, &b).Close()
	switch {
	case isViolation(err, uniqueViolation, "sessions_pkey"):
		return hookd.Errorf(hookd.ECONFLICT, "session token already in use")
	case err != nil:
		return wrap("create session", err)
	case inserted == 0:
		return hookd.Errorf(hookd.ENOTFOUND, "user not found")
	}
	s.CreatedAt, s.ExpiresAt = created, expires
	return nil
}

// FindSession returns the session with that token hash if it has not
// expired at now (now < ExpiresAt). ENOTFOUND otherwise.
func (db *DB) FindSession(ctx context.Context, tokenHash []byte, now time.Time) (*hookd.Session, error) {
	var s hookd.Session
	err := db.pool.QueryRow(ctx, `
		SELECT token_hash, user_id, organization_id, created_at, expires_at FROM sessions
		WHERE token_hash = $1 AND expires_at > $2`, tokenHash, ms(now)).
		Scan(&s.TokenHash, &s.UserID, &s.OrganizationID, &s.CreatedAt, &s.ExpiresAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, hookd.Errorf(hookd.ENOTFOUND, "session not found or expired")
	case err != nil:
		return nil, wrap("find session", err)
	}
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return &s, nil
}

// DeleteSession removes a session (sign-out); removing one that does not
// exist is not an error.
func (db *DB) DeleteSession(ctx context.Context, tokenHash []byte) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash); err != nil {
		return wrap("delete session", err)
	}
	return nil
}
