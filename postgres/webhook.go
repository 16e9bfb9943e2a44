package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/jackc/pgx/v5"
)

// CreateWebhook sets w.ID, w.CreatedAt and w.UpdatedAt and stores w, its
// Secret sealed with the store's key. EINVALID when the organization already
// has Config.MaxWebhooksPerOrganization webhooks; ENOTFOUND when the
// organization does not exist.
func (db *DB) CreateWebhook(ctx context.Context, w *hookd.Webhook) error {
	id, created := hookd.NewID(hookd.PrefixWebhook), now()
	err := db.write(ctx, "create webhook", func(tx pgx.Tx) error {
		// Locking the organization's row makes concurrent creations of its
		// webhooks take turns, so that two of them cannot both see 99
		// webhooks and both insert. NO KEY UPDATE does not conflict with
		// the KEY SHARE locks of foreign keys: publishing is not held up.
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM organizations WHERE id = $1 FOR NO KEY UPDATE`, w.OrganizationID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return errOrganizationNotFound()
		} else if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE organization_id = $1`, w.OrganizationID).Scan(&n); err != nil {
			return err
		}
		if n >= db.maxWebhooks {
			return hookd.Errorf(hookd.EINVALID, "an organization has at most %d webhooks; delete one first", db.maxWebhooks)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO webhooks (id, organization_id, name, url, events, secret_sealed, active, include_customers, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
			id, w.OrganizationID, w.Name, w.URL, events(w.Events), db.key.Seal(w.Secret), w.Active, w.IncludeCustomers, created)
		return err
	})
	if err != nil {
		return err
	}
	w.ID, w.CreatedAt, w.UpdatedAt, w.LastDeliveryStatus = id, created, created, ""
	w.DisabledReason, w.DisabledAt, w.ConsecutiveFailures, w.FailingSince = "", time.Time{}, 0, time.Time{}
	return nil
}

// events is a webhook's subscription as stored: a text[] that is never
// NULL.
func events(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// webhookColumns are what scanWebhook reads, from webhooks aliased w. The
// last one is the status of the newest delivery, through the
// (webhook_id, id) index.
const webhookColumns = `w.id, w.organization_id, w.name, w.url, w.events, w.secret_sealed, w.active, w.include_customers,
	w.created_at, w.updated_at, w.consecutive_failures, w.failing_since, w.disabled_reason, w.disabled_at,
	(SELECT d.status FROM deliveries d WHERE d.webhook_id = w.id ORDER BY d.id DESC LIMIT 1)`

// scanWebhook reads webhookColumns and opens the secret.
func (db *DB) scanWebhook(row pgx.Row) (*hookd.Webhook, error) {
	var (
		w      hookd.Webhook
		sealed string
		last   *string
		since  *time.Time
		off    *time.Time
	)
	if err := row.Scan(&w.ID, &w.OrganizationID, &w.Name, &w.URL, &w.Events, &sealed, &w.Active, &w.IncludeCustomers,
		&w.CreatedAt, &w.UpdatedAt, &w.ConsecutiveFailures, &since, &w.DisabledReason, &off, &last); err != nil {
		return nil, err
	}
	secret, err := db.key.Open(sealed)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: secret: %w", w.ID, err)
	}
	w.Secret = secret
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	if since != nil {
		w.FailingSince = since.UTC()
	}
	if off != nil {
		w.DisabledAt = off.UTC()
	}
	if last != nil {
		w.LastDeliveryStatus = hookd.DeliveryStatus(*last)
	}
	return &w, nil
}

// querier is what a read needs of the pool and of a transaction alike.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// findWebhook loads webhook id of organization orgID, with lock appended
// to the query ("" or a FOR clause). ENOTFOUND, also when it belongs to
// another organization: tenants cannot tell the two apart.
func (db *DB) findWebhook(ctx context.Context, q querier, orgID, id, lock string) (*hookd.Webhook, error) {
	w, err := db.scanWebhook(q.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks w WHERE w.id = $1 AND w.organization_id = $2 `+lock, id, orgID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, hookd.Errorf(hookd.ENOTFOUND, "webhook not found")
	}
	return w, err
}

// FindWebhook returns webhook id of organization orgID, Secret opened and
// LastDeliveryStatus filled. ENOTFOUND, also when it belongs to another
// organization. A secret that cannot be opened (another --secret-key) is an
// internal error wrapping seal.ErrOpen.
func (db *DB) FindWebhook(ctx context.Context, orgID, id string) (*hookd.Webhook, error) {
	w, err := db.findWebhook(ctx, db.pool, orgID, id, "")
	return w, wrap("find webhook", err)
}

// ListWebhooks returns a page of orgID's webhooks, newest first, and the
// id to pass as Page.After for the next page ("" on the last page). A
// Limit outside 1–200 is clamped (0 means the default, 50).
func (db *DB) ListWebhooks(ctx context.Context, orgID string, p hookd.Page) ([]*hookd.Webhook, string, error) {
	limit := pageLimit(p)
	// An empty After is below every id, so one query serves every page.
	rows, _ := db.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks w
		WHERE w.organization_id = $1 AND ($2 = '' OR w.id < $2)
		ORDER BY w.id DESC LIMIT $3`, orgID, p.After, limit+1)
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*hookd.Webhook, error) { return db.scanWebhook(row) })
	if err != nil {
		return nil, "", wrap("list webhooks", err)
	}
	list, next := cutPage(list, limit, func(w *hookd.Webhook) string { return w.ID })
	return list, next, nil
}

// UpdateWebhook loads the webhook, calls update on it and, when update
// returns nil, stores Name, URL, Events, Secret, Active and
// IncludeCustomers with a new UpdatedAt, all in one transaction. The
// webhook's row stays locked while update runs, so update must be quick:
// no network, no waiting. update's error is returned as is and nothing is
// written. ENOTFOUND as FindWebhook.
func (db *DB) UpdateWebhook(ctx context.Context, orgID, id string, update func(*hookd.Webhook) error) (*hookd.Webhook, error) {
	var (
		result    *hookd.Webhook
		updateErr error
	)
	err := db.write(ctx, "update webhook", func(tx pgx.Tx) error {
		// NO KEY UPDATE: concurrent updates take turns, publishing (which
		// holds KEY SHARE on its receivers) goes on.
		w, err := db.findWebhook(ctx, tx, orgID, id, "FOR NO KEY UPDATE OF w")
		if err != nil {
			return err
		}
		orig := *w
		if updateErr = update(w); updateErr != nil {
			return updateErr
		}
		// Identity, history and health are not the caller's to change,
		// except that making the webhook active enables it afresh.
		w.ID, w.OrganizationID, w.CreatedAt, w.LastDeliveryStatus = orig.ID, orig.OrganizationID, orig.CreatedAt, orig.LastDeliveryStatus
		w.DisabledReason, w.DisabledAt, w.ConsecutiveFailures, w.FailingSince = orig.DisabledReason, orig.DisabledAt, orig.ConsecutiveFailures, orig.FailingSince
		if w.Active && !orig.Active {
			w.Enable()
		}
		w.UpdatedAt = now()
		if w.UpdatedAt.Before(orig.UpdatedAt) { // the clock went back, or another node's is ahead
			w.UpdatedAt = orig.UpdatedAt
		}
		_, err = tx.Exec(ctx, `
			UPDATE webhooks SET name = $2, url = $3, events = $4, secret_sealed = $5, active = $6, include_customers = $7, updated_at = $8,
				consecutive_failures = $9, failing_since = $10, disabled_reason = $11, disabled_at = $12
			WHERE id = $1`,
			w.ID, w.Name, w.URL, events(w.Events), db.key.Seal(w.Secret), w.Active, w.IncludeCustomers, w.UpdatedAt,
			w.ConsecutiveFailures, nullTime(w.FailingSince), w.DisabledReason, nullTime(w.DisabledAt))
		result = w
		return err
	})
	if updateErr != nil {
		return nil, updateErr
	}
	if err != nil {
		return nil, err
	}
	return result, nil
}

// DeleteWebhook removes the webhook with its deliveries and their attempts;
// its pending deliveries are never sent, and results of attempts in flight
// are dropped. ENOTFOUND as FindWebhook.
func (db *DB) DeleteWebhook(ctx context.Context, orgID, id string) error {
	return db.write(ctx, "delete webhook", func(tx pgx.Tx) error {
		// FOR UPDATE waits for publishers holding the row (KEY SHARE) to
		// commit, and keeps new ones off it: every delivery of the webhook
		// is committed before the statement below reads them, and none is
		// added after.
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM webhooks WHERE id = $1 AND organization_id = $2 FOR UPDATE`, id, orgID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return hookd.Errorf(hookd.ENOTFOUND, "webhook not found")
		} else if err != nil {
			return err
		}
		// Lock the deliveries first, in id order, the order CompleteAttempts
		// locks them in, so that the two cannot deadlock: once this returns,
		// every attempt being recorded for them is committed, and no other
		// will be. The statements after it see those attempts.
		if _, err := tx.Exec(ctx, `SELECT FROM deliveries WHERE webhook_id = $1 ORDER BY id FOR UPDATE`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE webhook_id = $1)`, id); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `
			WITH gone AS (DELETE FROM deliveries WHERE webhook_id = $1 RETURNING status)
			SELECT status, count(*) FROM gone GROUP BY status`, id)
		var c counts
		var (
			status string
			n      int64
		)
		if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error {
			c.add(hookd.DeliveryStatus(status), -n)
			return nil
		}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id); err != nil {
			return err
		}
		return c.save(ctx, tx)
	})
}
