-- Claiming serves each webhook from its own oldest due deliveries: a webhook
-- at its cap, however large its backlog, is skipped with one lookup instead
-- of a walk over its rows, and a webhook's due rows are found without
-- reading other webhooks' rows. The rowid (seq) is the index's last column,
-- which orders a webhook's deliveries due at the same time.
-- deliveries_due stays: NextDue needs the earliest pending row of all.
CREATE INDEX deliveries_webhook_due ON deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
