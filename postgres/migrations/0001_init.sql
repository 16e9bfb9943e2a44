-- The schema of the PostgreSQL store, equivalent to the embedded one.
-- Times are timestamptz holding whole milliseconds (the store truncates
-- before writing). Ids are hookd.NewID strings in the "C" collation: byte
-- order is the order they were made in, so "ORDER BY id DESC" is newest
-- first and a page cursor is "id < $n", whatever the database's locale.

CREATE TABLE organizations (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL,
	partner_id text COLLATE "C" REFERENCES organizations (id),
	created_at timestamptz NOT NULL
);
-- IsPartner: does any organization name this one as its partner?
CREATE INDEX organizations_partner ON organizations (partner_id) WHERE partner_id IS NOT NULL;

CREATE TABLE api_keys (
	id              text COLLATE "C" PRIMARY KEY,
	organization_id text COLLATE "C" NOT NULL REFERENCES organizations (id),
	name            text NOT NULL,
	prefix          text COLLATE "C" NOT NULL,
	hash            bytea NOT NULL,
	created_at      timestamptz NOT NULL
);
CREATE INDEX api_keys_prefix ON api_keys (prefix);

CREATE TABLE users (
	id              text COLLATE "C" PRIMARY KEY,
	organization_id text COLLATE "C" NOT NULL REFERENCES organizations (id),
	email           text NOT NULL CONSTRAINT users_email_key UNIQUE, -- hookd.NormalizeEmail form
	password_hash   bytea NOT NULL,
	created_at      timestamptz NOT NULL
);

CREATE TABLE webhooks (
	id                text COLLATE "C" PRIMARY KEY,
	organization_id   text COLLATE "C" NOT NULL REFERENCES organizations (id),
	name              text NOT NULL,
	url               text NOT NULL,
	events            text[] NOT NULL,
	secret_sealed     text NOT NULL DEFAULT '', -- seal.Key.Seal of the secret; '' for none
	active            boolean NOT NULL,
	include_customers boolean NOT NULL,
	created_at        timestamptz NOT NULL,
	updated_at        timestamptz NOT NULL
);
CREATE INDEX webhooks_organization ON webhooks (organization_id, id);

-- seq is the key deliveries point at, which keeps their rows and indexes
-- small; id is the publisher's (or a generated "evt_") id, unique per
-- organization only. data is bytea, not json or jsonb: the bytes are
-- signed, so they must come back exactly as they were published.
CREATE TABLE events (
	seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id              text COLLATE "C" NOT NULL,
	organization_id text COLLATE "C" NOT NULL REFERENCES organizations (id),
	type            text NOT NULL,
	created_at      timestamptz NOT NULL,
	data            bytea NOT NULL,   -- compact JSON object
	deliveries      integer NOT NULL, -- how many deliveries publishing created
	CONSTRAINT events_organization_id_key UNIQUE (organization_id, id)
);

-- The deliveries table is the queue. A row is claimable when it is pending,
-- due (next_attempt_at <= now) and not leased (lease_until NULL or past).
-- Claims and completions rewrite rows all day, and each rewrite adds an
-- entry to every index whose predicate the row matches: the indexes are
-- the fewest the queries need.
CREATE TABLE deliveries (
	id               text COLLATE "C" PRIMARY KEY,
	event_seq        bigint NOT NULL REFERENCES events (seq),
	webhook_id       text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	status           text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
	attempts         integer NOT NULL DEFAULT 0,
	round_start      integer NOT NULL DEFAULT 0,
	created_at       timestamptz NOT NULL,
	last_attempt_at  timestamptz,
	next_attempt_at  timestamptz, -- NULL unless pending
	last_status_code integer,     -- NULL when the last attempt got no HTTP answer
	lease_token      text,
	lease_until      timestamptz
);
-- Claiming walks the pending rows in due order; delivered and failed rows,
-- the vast majority over time, are not in this index at all.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
-- One webhook's pending rows in due order: a claim finds the webhooks that
-- have claimable rows, and their oldest rows, without reading the backlog
-- of a webhook at its cap.
CREATE INDEX deliveries_webhook_due ON deliveries (webhook_id, next_attempt_at, id) WHERE status = 'pending';
-- Leased rows are few (those in flight): the per-webhook cap and NextDue
-- read them through this index.
CREATE INDEX deliveries_leased ON deliveries (webhook_id, lease_until) WHERE lease_until IS NOT NULL;
-- A webhook's deliveries newest first, its last status, and its deletion.
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);

-- seq orders a delivery's log in the order attempts were recorded. There
-- is no foreign key to deliveries: recording an attempt locks its delivery
-- (KEY SHARE) itself, and DeleteWebhook removes the attempts it orphans;
-- the key's trigger would cost a second lookup per attempt logged.
CREATE TABLE attempts (
	delivery_id   text COLLATE "C" NOT NULL,
	seq           bigint GENERATED ALWAYS AS IDENTITY,
	number        integer NOT NULL,
	started_at    timestamptz NOT NULL,
	duration_ms   bigint NOT NULL,
	status_code   integer NOT NULL, -- 0 when no HTTP answer came
	response_body bytea NOT NULL,
	error         text NOT NULL,
	PRIMARY KEY (delivery_id, seq)
);

-- Running totals of deliveries by status, so that CountDeliveries (scraped
-- by /metrics) does not scan a table that grows without bound. Every write
-- that moves deliveries adds its changes to the slot of its own server
-- process (pg_backend_pid() % 64): one shared row per status would make
-- every publish and every completion on every node queue for the same row
-- lock. The total of a status is the sum of its slots.
CREATE TABLE delivery_counts (
	status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
	slot   integer NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (status, slot)
);
