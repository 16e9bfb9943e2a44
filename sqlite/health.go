package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/hookd-dev/hookd"
)

// Statements of endpoint health: a webhook's health as stored, and
// changed.
const (
	healthQuery     = `SELECT organization_id, active, consecutive_failures, failing_since, disabled_at FROM webhooks WHERE id = ?`
	saveHealthQuery = `
		UPDATE webhooks SET active = ?, consecutive_failures = ?, failing_since = ?, disabled_reason = ?, disabled_at = ?,
			updated_at = CASE WHEN ? THEN max(updated_at, ?) ELSE updated_at END
		WHERE id = ?`
)

// recordHealth counts the results whose lease was current (current holds
// how many of each delivery's results settled; in a call with two results
// of one delivery under different leases, it cannot tell which one did
// and counts the first) towards their webhooks' health under db.health,
// in the order given, and disables the webhooks a rule condemns: inactive,
// their pending deliveries failed with no lease. It returns the webhooks
// it disabled; c takes the deliveries it moved.
func (db *DB) recordHealth(ctx context.Context, tx *sql.Tx, results []*hookd.AttemptResult, current map[string]int, c *counts) ([]*hookd.Webhook, error) {
	if len(current) == 0 {
		return nil, nil
	}
	load, err := db.stmt(ctx, tx, healthQuery)
	if err != nil {
		return nil, err
	}
	t := now()
	hooks := map[string]*hookd.Webhook{}
	var changed, disabled []*hookd.Webhook
	for _, r := range results {
		if current[r.Job.DeliveryID] == 0 {
			continue
		}
		current[r.Job.DeliveryID]--
		w := hooks[r.Job.WebhookID]
		if w == nil {
			w = &hookd.Webhook{ID: r.Job.WebhookID}
			var since, off sql.NullInt64
			if err := load.QueryRowContext(ctx, w.ID).Scan(&w.OrganizationID, &w.Active, &w.ConsecutiveFailures, &since, &off); err != nil {
				return nil, fmt.Errorf("webhook %s: health: %w", w.ID, err) // its delivery settled: it exists
			}
			if since.Valid {
				w.FailingSince = fromMillis(since.Int64)
			}
			if off.Valid {
				w.DisabledAt = fromMillis(off.Int64)
			}
			hooks[w.ID] = w
		}
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
	save, err := db.stmt(ctx, tx, saveHealthQuery)
	if err != nil {
		return nil, err
	}
	for _, w := range changed {
		off := slices.Contains(disabled, w)
		if _, err := save.ExecContext(ctx, w.Active, w.ConsecutiveFailures, nullMillis(w.FailingSince), w.DisabledReason, nullMillis(w.DisabledAt),
			off, millis(t), w.ID); err != nil {
			return nil, err
		}
	}
	for _, w := range disabled {
		// Leases go too: a dispatcher still attempting one of these can
		// record its attempt, not move the delivery.
		res, err := tx.ExecContext(ctx, `
			UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, lease_token = NULL, lease_until = NULL, abandoned_at = ?
			WHERE webhook_id = ? AND status = 'pending'`, millis(t), w.ID)
		if err != nil {
			return nil, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, err
		}
		c.add(hookd.DeliveryPending, -int(n))
		c.add(hookd.DeliveryFailed, int(n))
	}
	return disabled, nil
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
		n      int
	)
	err := db.write(ctx, "enable webhook", func(tx *sql.Tx) error {
		w, err := db.findWebhook(ctx, tx, orgID, id)
		if err != nil {
			return err
		}
		since := w.FailingSince
		wasOff := !w.DisabledAt.IsZero()
		w.Enable()
		t := now()
		if t.After(w.UpdatedAt) { // else the clock went back
			w.UpdatedAt = t
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE webhooks SET active = 1, consecutive_failures = 0, failing_since = NULL, disabled_reason = '', disabled_at = NULL, updated_at = ?
			WHERE id = ?`, millis(w.UpdatedAt), w.ID); err != nil {
			return err
		}
		n, result = 0, w
		if !redeliverFailed || !wasOff || since.IsZero() {
			return nil
		}
		res, err := tx.ExecContext(ctx, `
			UPDATE deliveries SET status = 'pending', round_start = attempts, next_attempt_at = ?1, lease_token = NULL, lease_until = NULL
			WHERE webhook_id = ?2 AND status = 'failed'
			  AND (created_at >= ?3 OR last_attempt_at >= ?3 OR abandoned_at >= ?3)`, millis(t), w.ID, millis(since))
		if err != nil {
			return err
		}
		affected, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n = int(affected); n > 0 {
			db.schedule.wake(millis(t), w.ID)
			var c counts
			c.add(hookd.DeliveryFailed, -n)
			c.add(hookd.DeliveryPending, n)
			return c.save(ctx, db, tx)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return result, n, nil
}
