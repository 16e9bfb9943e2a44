package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hookd-dev/hookd"
)

// CreateWebhook sets w.ID, w.CreatedAt and w.UpdatedAt and stores w, its
// Secret sealed with the store's key. EINVALID when the organization already
// has Config.MaxWebhooksPerOrganization webhooks; ENOTFOUND when the
// organization does not exist.
func (db *DB) CreateWebhook(ctx context.Context, w *hookd.Webhook) error {
	id, created := hookd.NewID(hookd.PrefixWebhook), now()
	events, err := json.Marshal(w.Events)
	if err != nil {
		return wrap("create webhook", err)
	}
	err = db.write(ctx, "create webhook", func(tx *sql.Tx) error {
		if err := organizationExists(ctx, tx, w.OrganizationID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhooks WHERE organization_id = ?`, w.OrganizationID).Scan(&n); err != nil {
			return err
		}
		if n >= db.maxWebhooks {
			return hookd.Errorf(hookd.EINVALID, "an organization has at most %d webhooks; delete one first", db.maxWebhooks)
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO webhooks (id, organization_id, name, url, events, secret_sealed, active, include_customers, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, w.OrganizationID, w.Name, w.URL, string(events), db.key.Seal(w.Secret), w.Active, w.IncludeCustomers,
			millis(created), millis(created))
		return err
	})
	if err != nil {
		return err
	}
	w.ID, w.CreatedAt, w.UpdatedAt, w.LastDeliveryStatus = id, created, created, ""
	w.DisabledReason, w.DisabledAt, w.ConsecutiveFailures, w.FailingSince = "", time.Time{}, 0, time.Time{}
	return nil
}

// webhookColumns are what scanWebhook reads, from webhooks aliased w. The
// last one is the status of the newest delivery, through the
// (webhook_id, id) index.
const webhookColumns = `w.id, w.organization_id, w.name, w.url, w.events, w.secret_sealed, w.active, w.include_customers,
	w.created_at, w.updated_at, w.consecutive_failures, w.failing_since, w.disabled_reason, w.disabled_at,
	(SELECT d.status FROM deliveries d WHERE d.webhook_id = w.id ORDER BY d.id DESC LIMIT 1)`

// scanWebhook reads webhookColumns and opens the secret.
func (db *DB) scanWebhook(row interface{ Scan(...any) error }) (*hookd.Webhook, error) {
	var (
		w                hookd.Webhook
		events, sealed   string
		created, updated int64
		last             sql.NullString
		since, disabled  sql.NullInt64
	)
	if err := row.Scan(&w.ID, &w.OrganizationID, &w.Name, &w.URL, &events, &sealed, &w.Active, &w.IncludeCustomers,
		&created, &updated, &w.ConsecutiveFailures, &since, &w.DisabledReason, &disabled, &last); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return nil, fmt.Errorf("webhook %s: events: %w", w.ID, err)
	}
	secret, err := db.key.Open(sealed)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: secret: %w", w.ID, err)
	}
	w.Secret = secret
	w.CreatedAt, w.UpdatedAt = fromMillis(created), fromMillis(updated)
	if since.Valid {
		w.FailingSince = fromMillis(since.Int64)
	}
	if disabled.Valid {
		w.DisabledAt = fromMillis(disabled.Int64)
	}
	w.LastDeliveryStatus = hookd.DeliveryStatus(last.String)
	return &w, nil
}

// queryer is what a read needs of *sql.DB and *sql.Tx alike.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// findWebhook loads webhook id of organization orgID. ENOTFOUND, also when
// it belongs to another organization: tenants cannot tell the two apart.
func (db *DB) findWebhook(ctx context.Context, q queryer, orgID, id string) (*hookd.Webhook, error) {
	w, err := db.scanWebhook(q.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks w WHERE w.id = ? AND w.organization_id = ?`, id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, hookd.Errorf(hookd.ENOTFOUND, "webhook not found")
	}
	return w, err
}

// FindWebhook returns webhook id of organization orgID, Secret opened and
// LastDeliveryStatus filled. ENOTFOUND, also when it belongs to another
// organization. A secret that cannot be opened (another --secret-key) is an
// internal error wrapping seal.ErrOpen.
func (db *DB) FindWebhook(ctx context.Context, orgID, id string) (*hookd.Webhook, error) {
	w, err := db.findWebhook(ctx, db.r, orgID, id)
	return w, wrap("find webhook", err)
}

// ListWebhooks returns a page of orgID's webhooks, newest first, and the
// id to pass as Page.After for the next page ("" on the last page). A
// Limit outside 1–200 is clamped (0 means the default, 50).
func (db *DB) ListWebhooks(ctx context.Context, orgID string, p hookd.Page) ([]*hookd.Webhook, string, error) {
	limit := pageLimit(p)
	query := `SELECT ` + webhookColumns + ` FROM webhooks w WHERE w.organization_id = ?`
	args := []any{orgID}
	if p.After != "" {
		query += ` AND w.id < ?`
		args = append(args, p.After)
	}
	query += ` ORDER BY w.id DESC LIMIT ?`
	args = append(args, limit+1)

	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", wrap("list webhooks", err)
	}
	defer rows.Close()
	var list []*hookd.Webhook
	for rows.Next() {
		w, err := db.scanWebhook(rows)
		if err != nil {
			return nil, "", wrap("list webhooks", err)
		}
		list = append(list, w)
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrap("list webhooks", err)
	}
	list, next := cutPage(list, limit, func(w *hookd.Webhook) string { return w.ID })
	return list, next, nil
}

// cutPage trims a list fetched with limit+1 rows to limit and returns the
// cursor of the next page: the last id kept, when there was one more row.
func cutPage[T any](list []T, limit int, id func(T) string) ([]T, string) {
	if len(list) <= limit {
		return list, ""
	}
	list = list[:limit]
	return list, id(list[limit-1])
}

// UpdateWebhook loads the webhook, calls update on it and, when update
// returns nil, stores Name, URL, Events, Secret, Active and
// IncludeCustomers with a new UpdatedAt, all in one transaction. update runs
// while the store's write lock is held, so it must be quick: no network,
// no waiting. update's error is returned as is and nothing is written.
// ENOTFOUND as FindWebhook.
func (db *DB) UpdateWebhook(ctx context.Context, orgID, id string, update func(*hookd.Webhook) error) (*hookd.Webhook, error) {
	var (
		result    *hookd.Webhook
		updateErr error
	)
	err := db.write(ctx, "update webhook", func(tx *sql.Tx) error {
		w, err := db.findWebhook(ctx, tx, orgID, id)
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
		if w.UpdatedAt.Before(orig.UpdatedAt) { // the clock went back
			w.UpdatedAt = orig.UpdatedAt
		}
		events, err := json.Marshal(w.Events)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			UPDATE webhooks SET name = ?, url = ?, events = ?, secret_sealed = ?, active = ?, include_customers = ?, updated_at = ?,
				consecutive_failures = ?, failing_since = ?, disabled_reason = ?, disabled_at = ?
			WHERE id = ?`,
			w.Name, w.URL, string(events), db.key.Seal(w.Secret), w.Active, w.IncludeCustomers, millis(w.UpdatedAt),
			w.ConsecutiveFailures, nullMillis(w.FailingSince), w.DisabledReason, nullMillis(w.DisabledAt), w.ID)
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
	return db.write(ctx, "delete webhook", func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM webhooks WHERE id = ? AND organization_id = ?`, id, orgID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return hookd.Errorf(hookd.ENOTFOUND, "webhook not found")
		} else if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT status, COUNT(*) FROM deliveries WHERE webhook_id = ? GROUP BY status`, id)
		if err != nil {
			return err
		}
		var c counts
		for rows.Next() {
			var (
				status string
				n      int
			)
			if err := rows.Scan(&status, &n); err != nil {
				rows.Close()
				return err
			}
			c.add(hookd.DeliveryStatus(status), -n)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		// ON DELETE CASCADE takes the deliveries and their attempts.
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id); err != nil {
			return err
		}
		return c.save(ctx, db, tx)
	})
}
