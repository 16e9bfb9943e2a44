package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/jackc/pgx/v5"
)

// deliveryColumns are what scanDelivery reads, from deliveries d joined
// with events e and webhooks w.
const deliveryColumns = `d.id, e.id, e.type, d.webhook_id, w.organization_id, d.status, d.attempts, d.round_start,
	d.created_at, d.last_attempt_at, d.next_attempt_at, d.last_status_code`

const deliveryFrom = ` FROM deliveries d JOIN events e ON e.seq = d.event_seq JOIN webhooks w ON w.id = d.webhook_id`

// scanDelivery reads deliveryColumns.
func scanDelivery(row pgx.Row) (*hookd.Delivery, error) {
	var (
		status                   string
		lastAttempt, nextAttempt *time.Time
		lastCode                 *int32
	)
	d := &hookd.Delivery{}
	if err := row.Scan(&d.ID, &d.EventID, &d.EventType, &d.WebhookID, &d.OrganizationID, &status, &d.Attempts, &d.RoundStart,
		&d.CreatedAt, &lastAttempt, &nextAttempt, &lastCode); err != nil {
		return nil, err
	}
	d.Status, d.CreatedAt = hookd.DeliveryStatus(status), d.CreatedAt.UTC()
	d.LastAttemptAt, d.NextAttemptAt = utcPtr(lastAttempt), utcPtr(nextAttempt)
	if lastCode != nil {
		code := int(*lastCode)
		d.LastStatusCode = &code
	}
	return d, nil
}

// findDelivery loads delivery id of webhook webhookID of organization
// orgID, with lock appended to the query. ENOTFOUND unless all three match.
func findDelivery(ctx context.Context, q querier, orgID, webhookID, id, lock string) (*hookd.Delivery, error) {
	d, err := scanDelivery(q.QueryRow(ctx, `SELECT `+deliveryColumns+deliveryFrom+`
		WHERE d.id = $1 AND d.webhook_id = $2 AND w.organization_id = $3 `+lock, id, webhookID, orgID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, hookd.Errorf(hookd.ENOTFOUND, "delivery not found")
	}
	return d, err
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
	err := db.read(ctx, "list deliveries", func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM webhooks WHERE id = $1 AND organization_id = $2`, webhookID, orgID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return hookd.Errorf(hookd.ENOTFOUND, "webhook not found")
		} else if err != nil {
			return err
		}
		// The range on (webhook_id, id) serves the page directly; a status
		// filter is checked row by row along it, except failed, which has an
		// index of its own (migration 0006). The query is built for the
		// filters given rather than with "$n = '' OR …", so that a cached
		// generic plan still walks that range.
		query := `SELECT ` + deliveryColumns + deliveryFrom + ` WHERE d.webhook_id = $1`
		args := []any{webhookID}
		if status != "" {
			// A literal, checked by Valid above: a generic plan can use
			// the partial index of failed deliveries only for a status
			// it sees when planning, not for a parameter.
			query += ` AND d.status = '` + string(status) + `'`
		}
		if p.After != "" {
			args = append(args, p.After)
			query += fmt.Sprintf(` AND d.id < $%d`, len(args))
		}
		args = append(args, limit+1)
		query += fmt.Sprintf(` ORDER BY d.id DESC LIMIT $%d`, len(args))
		rows, _ := tx.Query(ctx, query, args...)
		list, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*hookd.Delivery, error) { return scanDelivery(row) })
		return err
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
	err := db.read(ctx, "find delivery", func(tx pgx.Tx) error {
		var err error
		if d, err = findDelivery(ctx, tx, orgID, webhookID, deliveryID, ""); err != nil {
			return err
		}
		if d.Event, err = scanEvent(tx.QueryRow(ctx, `
			SELECT e.id, e.organization_id, e.type, e.created_at, e.data, e.deliveries
			FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = $1`, d.ID)); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `
			SELECT number, started_at, duration_ms, status_code, response_body, error
			FROM attempts WHERE delivery_id = $1 ORDER BY seq`, d.ID)
		d.AttemptLog, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*hookd.Attempt, error) {
			a := &hookd.Attempt{DeliveryID: d.ID}
			var (
				durationMS int64
				body       []byte
			)
			err := row.Scan(&a.Number, &a.StartedAt, &durationMS, &a.StatusCode, &body, &a.Error)
			a.StartedAt, a.Duration, a.ResponseBody = a.StartedAt.UTC(), time.Duration(durationMS)*time.Millisecond, string(body)
			return a, err
		})
		if d.AttemptLog == nil {
			d.AttemptLog = []*hookd.Attempt{}
		}
		return err
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
	err := db.write(ctx, "redeliver", func(tx pgx.Tx) error {
		old, err := findDelivery(ctx, tx, orgID, webhookID, deliveryID, "FOR NO KEY UPDATE OF d")
		if err != nil {
			return err
		}
		t := now()
		if _, err := tx.Exec(ctx, `
			UPDATE deliveries SET status = 'pending', round_start = attempts, next_attempt_at = $2, lease_token = NULL, lease_until = NULL
			WHERE id = $1`, old.ID, t); err != nil {
			return err
		}
		var c counts
		c.move(old.Status, hookd.DeliveryPending)
		if err := c.save(ctx, tx); err != nil {
			return err
		}
		if err := notify(ctx, tx); err != nil {
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

// channel is the NOTIFY channel of new due deliveries; see Listen.
const channel = "hookd_deliveries"

// notify tells listening dispatchers, when tx commits, that deliveries are
// due. PostgreSQL folds identical notifications of one transaction into one.
func notify(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, channel)
	return err
}

// counts are changes to the delivery_counts totals made by one
// transaction, saved with it, indexed like statuses.
type counts [3]int64

func (counts) statuses() [3]hookd.DeliveryStatus {
	return [3]hookd.DeliveryStatus{hookd.DeliveryPending, hookd.DeliveryDelivered, hookd.DeliveryFailed}
}

func (c *counts) add(s hookd.DeliveryStatus, n int64) {
	for i, cs := range c.statuses() {
		if cs == s {
			c[i] += n
		}
	}
}

// move records one delivery going from one status to another.
func (c *counts) move(from, to hookd.DeliveryStatus) {
	c.add(from, -1)
	c.add(to, 1)
}

// saveCounts adds to the slots of this server process (see the migration).
// Rows are written in a fixed order so that two transactions sharing a
// slot queue rather than deadlock, and callers save last in their
// transaction, so that a transaction holding a slot waits for nothing
// else.
const saveCounts = `
	INSERT INTO delivery_counts AS c (status, slot, n)
	SELECT s, pg_backend_pid() % 64, n FROM unnest($1::text[], $2::bigint[]) AS d (s, n)
	WHERE n <> 0
	ORDER BY s
	ON CONFLICT (status, slot) DO UPDATE SET n = c.n + excluded.n`

func (c *counts) args() (statuses []string, deltas []int64, nonzero bool) {
	for i, s := range c.statuses() {
		statuses, deltas = append(statuses, string(s)), append(deltas, c[i])
		nonzero = nonzero || c[i] != 0
	}
	return statuses, deltas, nonzero
}

func (c *counts) save(ctx context.Context, tx pgx.Tx) error {
	statuses, deltas, nonzero := c.args()
	if !nonzero {
		return nil
	}
	if _, err := tx.Exec(ctx, saveCounts, statuses, deltas); err != nil {
		return fmt.Errorf("delivery counts: %w", err)
	}
	return nil
}

// queue adds the save to a batch instead, when there is something to save.
func (c *counts) queue(b *pgx.Batch) {
	if statuses, deltas, nonzero := c.args(); nonzero {
		b.Queue(saveCounts, statuses, deltas)
	}
}

// CountDeliveries returns how many deliveries have each status; every
// status is in the map, with 0 when none has it. It sums running totals,
// not the deliveries table, so it costs the same however many there are.
func (db *DB) CountDeliveries(ctx context.Context) (map[hookd.DeliveryStatus]int, error) {
	m := map[hookd.DeliveryStatus]int{hookd.DeliveryPending: 0, hookd.DeliveryDelivered: 0, hookd.DeliveryFailed: 0}
	rows, _ := db.pool.Query(ctx, `SELECT status, sum(n)::bigint FROM delivery_counts GROUP BY status`)
	var (
		status string
		n      int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		m[hookd.DeliveryStatus(status)] = int(n)
		return nil
	}); err != nil {
		return nil, wrap("count deliveries", err)
	}
	return m, nil
}
