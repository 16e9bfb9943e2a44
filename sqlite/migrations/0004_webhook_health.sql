-- Endpoint health (hookd.HealthPolicy): what CompleteAttempts counts to
-- disable a failing webhook automatically, and why and when it did.
ALTER TABLE webhooks ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN failing_since INTEGER;              -- first failed attempt since the last success
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN disabled_at INTEGER;                -- NULL unless disabled automatically

-- When disabling a webhook turned this delivery from pending to failed:
-- such a delivery may have been created, and last attempted, before the
-- failures began, yet it failed while the webhook was down, and enabling
-- with redeliver_failed must find it. NULL otherwise; never indexed, read
-- only among one webhook's failed deliveries.
ALTER TABLE deliveries ADD COLUMN abandoned_at INTEGER;
