-- Listing a webhook's failed deliveries (?status=failed, the list a user
-- opens to redeliver) finds them directly, newest first, instead of
-- walking every delivery of the webhook to rule the others out. Partial,
-- so it costs a write only when a delivery fails or is redelivered, never
-- on the publish → delivered path.
CREATE INDEX deliveries_webhook_failed ON deliveries (webhook_id, id) WHERE status = 'failed';
