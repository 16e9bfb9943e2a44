package postgres

import (
	"context"
	"slices"

	"github.com/hookd-dev/hookd"
	"github.com/jackc/pgx/v5"
)

// recordHealth counts the results whose lease was current (current holds
// their delivery id and lease) towards their webhooks' health under
// db.health, in the order given, and disables the webhooks a rule
// condemns: inactive, their pending deliveries failed with no lease. hooks
// are the results' webhooks, locked by healthQuery. It returns the
// webhooks it disabled.
func (db *DB) recordHealth(ctx context.Context, tx pgx.Tx, results []*hookd.AttemptResult, hooks map[string]*hookd.Webhook, current map[[2]string]bool) ([]*hookd.Webhook, error) {
	t := now()
	var changed, disabled []*hookd.Webhook
	for _, r := range results {
		key := [2]string{r.Job.DeliveryID, r.Job.Lease}
		w := hooks[r.Job.WebhookID]
		if !current[key] || w == nil {
			continue
		}
		delete(current, key) // a result given twice counts once, as it settled once
		wasOff := !w.DisabledAt.IsZero()
		if db.health.Record(w, r, t) && !slices.Contains(changed, w) {
			changed = append(changed, w)
		}
		if !wasOff && !w.DisabledAt.IsZero() {
			disabled = append(disabled, w)
		}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	var b pgx.Batch
	for _, w := range changed {
		off := slices.Contains(disabled, w)
		b.Queue(`
			UPDATE webhooks SET active = $2, consecutive_failures = $3, failing_since = $4, disabled_reason = $5, disabled_at = $6,
				updated_at = CASE WHEN $7 THEN greatest(updated_at, $8) ELSE updated_at END
			WHERE id = $1`,
			w.ID, w.Active, w.ConsecutiveFailures, nullTime(w.FailingSince), w.DisabledReason, nullTime(w.DisabledAt), off, t)
	}
	var c counts
	for _, w := range disabled {
		// Leases go too: a dispatcher still attempting one of these can
		// record its attempt, not move the delivery. The rows are locked in
		// id order, as everywhere.
		b.Queue(`
			WITH pending AS (
				SELECT id FROM deliveries WHERE webhook_id = $1 AND status = 'pending' ORDER BY id FOR NO KEY UPDATE),
			abandoned AS (
				UPDATE deliveries d SET status = 'failed', next_attempt_at = NULL, lease_token = NULL, lease_until = NULL, abandoned_at = $2
				FROM pending p WHERE d.id = p.id AND d.status = 'pending'
				RETURNING 1)
			SELECT count(*) FROM abandoned`, w.ID, t).QueryRow(func(row pgx.Row) error {
			var n int64
			if err := row.Scan(&n); err != nil {
				return err
			}
			c.add(hookd.DeliveryPending, -n)
			c.add(hookd.DeliveryFailed, n)
			return nil
		})
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, err
	}
	return disabled, c.save(ctx, tx)
}

// EnableWebhook makes the webhook active again, clears its disabled
// reason and starts its health afresh. With redeliverFailed, when the
// webhook had been disabled automatically, the failed deliveries of the
// run of failures that disabled it (created, last attempted or failed by
// the disabling at or after FailingSince) are made pending again as
// Redeliver does, in the same transaction; it returns how many.
// ENOTFOUND as FindWebhook.
func (db *DB) EnableWebhook(ctx context.Context, orgID, id string, redeliverFailed bool) (*hookd.Webhook, int, error) {
	var (
		result *hookd.Webhook
		n      int64
	)
	err := db.write(ctx, "enable webhook", func(tx pgx.Tx) error {
		// Locked before its deliveries, as CompleteAttempts and
		// DeleteWebhook lock it.
		w, err := db.findWebhook(ctx, tx, orgID, id, "FOR NO KEY UPDATE OF w")
		if err != nil {
			return err
		}
		since := w.FailingSince
		wasOff := !w.DisabledAt.IsZero()
		w.Enable()
		t := now()
		if t.After(w.UpdatedAt) { // else the clock went back, or another node's is ahead
			w.UpdatedAt = t
		}
		if _, err := tx.Exec(ctx, `
			UPDATE webhooks SET active = true, consecutive_failures = 0, failing_since = NULL, disabled_reason = '', disabled_at = NULL, updated_at = $2
			WHERE id = $1`, w.ID, w.UpdatedAt); err != nil {
			return err
		}
		n, result = 0, w
		if !redeliverFailed || !wasOff || since.IsZero() {
			return nil
		}
		if err := tx.QueryRow(ctx, `
			WITH failed AS (
				SELECT id FROM deliveries
				WHERE webhook_id = $1 AND status = 'failed'
				  AND (created_at >= $3 OR last_attempt_at >= $3 OR abandoned_at >= $3)
				ORDER BY id FOR NO KEY UPDATE),
			redelivered AS (
				UPDATE deliveries d SET status = 'pending', round_start = d.attempts, next_attempt_at = $2, lease_token = NULL, lease_until = NULL
				FROM failed f WHERE d.id = f.id AND d.status = 'failed'
				RETURNING 1)
			SELECT count(*) FROM redelivered`, w.ID, t, since).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		var c counts
		c.add(hookd.DeliveryFailed, -n)
		c.add(hookd.DeliveryPending, n)
		if err := c.save(ctx, tx); err != nil {
			return err
		}
		return notify(ctx, tx)
	})
	if err != nil {
		return nil, 0, err
	}
	return result, int(n), nil
}
