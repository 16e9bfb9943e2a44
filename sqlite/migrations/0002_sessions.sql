-- Portal sessions. Only the SHA-256 of a session's token is stored, so a
-- copy of the database cannot be replayed as a login.
CREATE TABLE sessions (
	token_hash      BLOB PRIMARY KEY,
	user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	organization_id TEXT NOT NULL REFERENCES organizations (id),
	created_at      INTEGER NOT NULL,
	expires_at      INTEGER NOT NULL
) WITHOUT ROWID;
-- Expired sessions are swept when new ones are created.
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);
