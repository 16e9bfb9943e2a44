-- Portal sessions. Only the SHA-256 of a session's token is stored, so a
-- copy of the database cannot be replayed as a login.
CREATE TABLE sessions (
	token_hash      bytea PRIMARY KEY,
	user_id         text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	organization_id text COLLATE "C" NOT NULL REFERENCES organizations (id),
	created_at      timestamptz NOT NULL,
	expires_at      timestamptz NOT NULL
);
-- Expired sessions are swept when new ones are created.
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);
