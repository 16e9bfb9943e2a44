-- Endpoint health (hookd.HealthPolicy): what CompleteAttempts counts to
-- disable a failing webhook automatically, and why and when it did.
-- Columns without a volatile default are added without rewriting a table.
ALTER TABLE webhooks
	ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
	ADD COLUMN failing_since timestamptz,           -- first failed attempt since the last success
	ADD COLUMN disabled_reason text NOT NULL DEFAULT '',
	ADD COLUMN disabled_at timestamptz;             -- NULL unless disabled automatically

-- When disabling a webhook turned this delivery from pending to failed:
-- such a delivery may have been created, and last attempted, before the
-- failures began, yet it failed while the webhook was down, and enabling
-- with redeliver_failed must find it. NULL otherwise; never indexed, read
-- only among one webhook's failed deliveries.
ALTER TABLE deliveries ADD COLUMN abandoned_at timestamptz;
