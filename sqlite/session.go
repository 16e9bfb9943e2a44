package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/hookd-dev/hookd"
)

// CreateSession stores a portal session: TokenHash, UserID, OrganizationID
// and ExpiresAt given (ExpiresAt is truncated to milliseconds), CreatedAt
// set. Sessions that have expired are deleted on the way. ENOTFOUND when
// the user does not exist; ECONFLICT when the token hash is taken.
func (db *DB) CreateSession(ctx context.Context, s *hookd.Session) error {
	created, expires := now(), s.ExpiresAt.UTC().Truncate(time.Millisecond)
	err := db.write(ctx, "create session", func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, s.UserID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return hookd.Errorf(hookd.ENOTFOUND, "user not found")
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, millis(created)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, organization_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			s.TokenHash, s.UserID, s.OrganizationID, millis(created), millis(expires))
		if isConstraint(err, primaryKeyViolation) {
			return hookd.Errorf(hookd.ECONFLICT, "session token already in use")
		}
		return err
	})
	if err != nil {
		return err
	}
	s.CreatedAt, s.ExpiresAt = created, expires
	return nil
}

// FindSession returns the session with that token hash if it has not
// expired at now (now < ExpiresAt). ENOTFOUND otherwise.
func (db *DB) FindSession(ctx context.Context, tokenHash []byte, now time.Time) (*hookd.Session, error) {
	var (
		s                hookd.Session
		created, expires int64
	)
	err := db.r.QueryRowContext(ctx, `
		SELECT token_hash, user_id, organization_id, created_at, expires_at FROM sessions
		WHERE token_hash = ? AND expires_at > ?`, tokenHash, now.UnixMilli()).
		Scan(&s.TokenHash, &s.UserID, &s.OrganizationID, &created, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, hookd.Errorf(hookd.ENOTFOUND, "session not found or expired")
	case err != nil:
		return nil, wrap("find session", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMillis(created), fromMillis(expires)
	return &s, nil
}

// DeleteSession removes a session (sign-out); removing one that does not
// exist is not an error.
func (db *DB) DeleteSession(ctx context.Context, tokenHash []byte) error {
	return db.write(ctx, "delete session", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
		return err
	})
}
