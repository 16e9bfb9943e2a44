package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hookd-dev/hookd"
)

// deliveryColumns are what scanDelivery reads, from deliveries d joined
// with events e and webhooks w.
const deliveryColumns = `d.seq, d.id, e.id, e.type, d.webhook_id, w.organization_id, d.status, d.attempts, d.round_start,
	d.created_at, d.last_attempt_at, d.next_attempt_at, d.last_status_code`

const deliveryFrom = ` FROM deliveries d JOIN events e ON e.seq = d.event_seq JOIN webhooks w ON w.id = d.webhook_id`

// scanDelivery reads deliveryColumns; seq is the row's key, for the
// queries that follow.
func scanDelivery(row interface{ Scan(...any) error }) (d *hookd.Delivery, seq int64, err error) {
	var (
		status                   string
		created                  int64
		lastAttempt, nextAttempt sql.NullInt64
		lastCode                 sql.NullInt64
	)
	d = &hookd.Delivery{}
	if err := row.Scan(&seq, &d.ID, &d.EventID, &d.EventType, &d.WebhookID, &d.OrganizationID, &status, &d.Attempts, &d.RoundStart,
		&created, &lastAttempt, &nextAttempt, &lastCode); err != nil {
		return nil, 0, err
	}
	d.Status, d.CreatedAt = hookd.DeliveryStatus(status), fromMillis(created)
	d.LastAttemptAt, d.NextAttemptAt = timePtr(lastAttempt), timePtr(nextAttempt)
	if lastCode.Valid {
		code := int(lastCode.Int64)
		d.LastStatusCode = &code
	}
	return d, seq, nil
}

// findDelivery loads delivery id of webhook webhookID of organization
// orgID. ENOTFOUND unless all three match.
func findDelivery(ctx context.Context, q queryer, orgID, webhookID, id string) (*hookd.Delivery, int64, error) {
	d, seq, err := scanDelivery(q.QueryRowContext(ctx, `SELECT `+deliveryColumns+deliveryFrom+`
		WHERE d.id = ? AND d.webhook_id = ? AND w.organization_id = ?`, id, webhookID, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, hookd.Errorf(hookd.ENOTFOUND, "delivery not found")
	}
	return d, seq, err
}

// ListDeliveries returns a page of a webhook's deliveries, newest first,
// only those with status when status is not "", and the id to pass as
// Page.After for the next page ("" on the last page). A Limit outside
// 1–200 is clamped. ENOTFOUND as FindWebhook; EINVALID (field status) for
// an unknown status.
func (db *DB) ListDeliveries(ctx context.Context, orgID, webhookID string, status hookd.DeliveryStatus, p hookd.Page) ([]*hookd.Delivery, string, error) {
	if status != "" && !status.Valid() {
		return nil, "", hookd.FieldErrorf("status", "status must be pending, delivered or failed")
	}
	limit := pageLimit(p)
	var list []*hookd.Delivery
	err := db.read(ctx, "list deliveries", func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM webhooks WHERE id = ? AND organization_id = ?`, webhookID, orgID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return hookd.Errorf(hookd.ENOTFOUND, "webhook not found")
		} else if err != nil {
			return err
		}
		// The range on (webhook_id, id) serves the page directly; a status
		// filter is checked row by row along it, except failed, which has
		// an index of its own (migration 0007).
		query := `SELECT ` + deliveryColumns + deliveryFrom + ` WHERE d.webhook_id = ?`
		args := []any{webhookID}
		if status != "" {
			// A literal, checked by Valid above: the planner can use the
			// partial index of failed deliveries only for a status it
			// sees when preparing the statement, not for a parameter.
			query += ` AND d.status = '` + string(status) + `'`
		}
		if p.After != "" {
			query += ` AND d.id < ?`
			args = append(args, p.After)
		}
		query += ` ORDER BY d.id DESC LIMIT ?`
		args = append(args, limit+1)
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, _, err := scanDelivery(rows)
			if err != nil {
				return err
			}
			list = append(list, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, "", err
	}
	list, next := cutPage(list, limit, func(d *hookd.Delivery) string { return d.ID })
	return list, next, nil
}

// FindDelivery returns one delivery with Event and AttemptLog (oldest
// first) filled. ENOTFOUND unless the delivery belongs to that webhook of
// that organization.
func (db *DB) FindDelivery(ctx context.Context, orgID, webhookID, deliveryID string) (*hookd.Delivery, error) {
	var d *hookd.Delivery
	err := db.read(ctx, "find delivery", func(tx *sql.Tx) error {
		var (
			seq int64
			err error
		)
		if d, seq, err = findDelivery(ctx, tx, orgID, webhookID, deliveryID); err != nil {
			return err
		}
		if d.Event, err = scanEvent(tx.QueryRowContext(ctx, `
			SELECT e.id, e.organization_id, e.type, e.created_at, e.data, e.deliveries
			FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.seq = ?`, seq)); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `
			SELECT number, started_at, duration_ms, status_code, response_body, error
			FROM attempts WHERE delivery_seq = ? ORDER BY rowid`, seq)
		if err != nil {
			return err
		}
		defer rows.Close()
		d.AttemptLog = []*hookd.Attempt{}
		for rows.Next() {
			a := &hookd.Attempt{DeliveryID: d.ID}
			var started, durationMS int64
			var body []byte
			if err := rows.Scan(&a.Number, &started, &durationMS, &a.StatusCode, &body, &a.Error); err != nil {
				return err
			}
			a.StartedAt, a.Duration, a.ResponseBody = fromMillis(started), msDuration(durationMS), string(body)
			d.AttemptLog = append(d.AttemptLog, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Redeliver makes the delivery pending again, due now, with a fresh round
// (RoundStart = Attempts) and no lease, so that a dispatcher still holding
// the old lease cannot change it any more; the delivery keeps its id and
// its attempt log. ENOTFOUND as FindDelivery.
func (db *DB) Redeliver(ctx context.Context, orgID, webhookID, deliveryID string) (*hookd.Delivery, error) {
	var d *hookd.Delivery
	err := db.write(ctx, "redeliver", func(tx *sql.Tx) error {
		old, seq, err := findDelivery(ctx, tx, orgID, webhookID, deliveryID)
		if err != nil {
			return err
		}
		t := now()
		if _, err := tx.ExecContext(ctx, `
			UPDATE deliveries SET status = 'pending', round_start = attempts, next_attempt_at = ?, lease_token = NULL, lease_until = NULL
			WHERE seq = ?`, millis(t), seq); err != nil {
			return err
		}
		db.schedule.wake(millis(t), webhookID)
		var c counts
		c.move(old.Status, hookd.DeliveryPending)
		if err := c.save(ctx, db, tx); err != nil {
			return err
		}
		d = old
		d.Status, d.RoundStart, d.NextAttemptAt = hookd.DeliveryPending, old.Attempts, &t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// counts are changes to the delivery_counts totals made by one transaction,
// saved with it.
type counts [3]int

func (c *counts) add(s hookd.DeliveryStatus, n int) {
	switch s {
	case hookd.DeliveryPending:
		c[0] += n
	case hookd.DeliveryDelivered:
		c[1] += n
	case hookd.DeliveryFailed:
		c[2] += n
	}
}

// move records one delivery going from one status to another.
func (c *counts) move(from, to hookd.DeliveryStatus) {
	c.add(from, -1)
	c.add(to, 1)
}

const addCountQuery = `UPDATE delivery_counts SET n = n + ? WHERE status = ?`

func (c *counts) save(ctx context.Context, db *DB, tx *sql.Tx) error {
	for i, s := range [...]hookd.DeliveryStatus{hookd.DeliveryPending, hookd.DeliveryDelivered, hookd.DeliveryFailed} {
		if c[i] == 0 {
			continue
		}
		add, err := db.stmt(ctx, tx, addCountQuery)
		if err != nil {
			return err
		}
		if _, err := add.ExecContext(ctx, c[i], string(s)); err != nil {
			return fmt.Errorf("delivery counts: %w", err)
		}
	}
	return nil
}

// CountDeliveries returns how many deliveries have each status; every
// status is in the map, with 0 when none has it. It reads running totals,
// not the deliveries table, so it costs the same however many there are.
func (db *DB) CountDeliveries(ctx context.Context) (map[hookd.DeliveryStatus]int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT status, n FROM delivery_counts`)
	if err != nil {
		return nil, wrap("count deliveries", err)
	}
	defer rows.Close()
	m := map[hookd.DeliveryStatus]int{hookd.DeliveryPending: 0, hookd.DeliveryDelivered: 0, hookd.DeliveryFailed: 0}
	for rows.Next() {
		var (
			s string
			n int
		)
		if err := rows.Scan(&s, &n); err != nil {
			return nil, wrap("count deliveries", err)
		}
		m[hookd.DeliveryStatus(s)] = n
	}
	return m, wrap("count deliveries", rows.Err())
}
