-- The schema of the embedded store. Times are INTEGER unix milliseconds (UTC).
-- Ids are hookd.NewID strings: time-ordered, so "ORDER BY id DESC" is newest
-- first and a page cursor is "id < ?".

CREATE TABLE organizations (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	partner_id TEXT REFERENCES organizations (id),
	created_at INTEGER NOT NULL
);
-- IsPartner: does any organization name this one as its partner?
CREATE INDEX organizations_partner ON organizations (partner_id) WHERE partner_id IS NOT NULL;

CREATE TABLE api_keys (
	id              TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL REFERENCES organizations (id),
	name            TEXT NOT NULL,
	prefix          TEXT NOT NULL,
	hash            BLOB NOT NULL,
	created_at      INTEGER NOT NULL
);
CREATE INDEX api_keys_prefix ON api_keys (prefix);

CREATE TABLE users (
	id              TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL REFERENCES organizations (id),
	email           TEXT NOT NULL UNIQUE, -- hookd.NormalizeEmail form
	password_hash   BLOB NOT NULL,
	created_at      INTEGER NOT NULL
);

CREATE TABLE webhooks (
	id                TEXT PRIMARY KEY,
	organization_id   TEXT NOT NULL REFERENCES organizations (id),
	name              TEXT NOT NULL,
	url               TEXT NOT NULL,
	events            TEXT NOT NULL,             -- JSON array of event types
	secret_sealed     TEXT NOT NULL DEFAULT '',  -- seal.Key.Seal of the secret; '' for none
	active            INTEGER NOT NULL,
	include_customers INTEGER NOT NULL,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL
);
CREATE INDEX webhooks_organization ON webhooks (organization_id, id);

-- seq is the rowid: deliveries point at it, which keeps their rows and
-- indexes small; id is the publisher's (or a generated "evt_") id, unique
-- per organization only.
CREATE TABLE events (
	seq             INTEGER PRIMARY KEY,
	id              TEXT NOT NULL,
	organization_id TEXT NOT NULL REFERENCES organizations (id),
	type            TEXT NOT NULL,
	created_at      INTEGER NOT NULL,
	data            BLOB NOT NULL,    -- compact JSON object
	deliveries      INTEGER NOT NULL, -- how many deliveries publishing created
	UNIQUE (organization_id, id)
);

-- The deliveries table is the queue. A row is claimable when it is pending,
-- due (next_attempt_at <= now) and not leased (lease_until NULL or past).
CREATE TABLE deliveries (
	seq              INTEGER PRIMARY KEY,
	id               TEXT NOT NULL UNIQUE,
	event_seq        INTEGER NOT NULL REFERENCES events (seq),
	webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
	attempts         INTEGER NOT NULL DEFAULT 0,
	round_start      INTEGER NOT NULL DEFAULT 0,
	created_at       INTEGER NOT NULL,
	last_attempt_at  INTEGER,
	next_attempt_at  INTEGER, -- NULL unless pending
	last_status_code INTEGER, -- NULL when the last attempt got no HTTP answer
	lease_token      TEXT,
	lease_until      INTEGER
);
-- Claiming walks the pending rows in due order; delivered and failed rows,
-- the vast majority over time, are not in this index at all.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
-- Leased rows are few (those in flight): the per-webhook cap, NextDue and
-- the lease reset at start-up read them through this index.
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE lease_until IS NOT NULL;
-- A webhook's deliveries newest first, its last status, and the cascade
-- when a webhook is deleted.
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);

CREATE TABLE attempts (
	delivery_seq  INTEGER NOT NULL REFERENCES deliveries (seq) ON DELETE CASCADE,
	number        INTEGER NOT NULL,
	started_at    INTEGER NOT NULL,
	duration_ms   INTEGER NOT NULL,
	status_code   INTEGER NOT NULL, -- 0 when no HTTP answer came
	response_body BLOB NOT NULL,
	error         TEXT NOT NULL
);
CREATE INDEX attempts_delivery ON attempts (delivery_seq);

-- Running totals of deliveries by status, kept by every write that changes
-- them, so that CountDeliveries (scraped by /metrics) does not scan a table
-- that grows without bound.
CREATE TABLE delivery_counts (
	status TEXT PRIMARY KEY,
	n      INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO delivery_counts (status, n) VALUES ('pending', 0), ('delivered', 0), ('failed', 0);
