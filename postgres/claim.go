package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// claimable is the condition of a delivery row (no alias) that may be
// claimed at $1: pending, due, and not leased or its lease expired.
const claimable = `status = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)`

// leaseReturning leases the rows of "picked" (a CTE of ids this statement
// has locked) until $2 with a fresh random token each, if they are still
// claimable, and returns what a Job needs. A row that changed between
// the statement's snapshot and its lock is checked again in its latest
// version. The check spells "pending" as "neither delivered nor failed",
// and the rows are named by "= ANY(ARRAY())", so that the planner finds
// them by their key: given "status = 'pending'" it could pick the due
// index, whose range it walks whole, on the strength of statistics that
// in a queue are often out of date.
const leaseReturning = `
	UPDATE deliveries d SET lease_token = gen_random_uuid()::text, lease_until = $2
	FROM webhooks w, events e
	WHERE d.id = ANY(ARRAY(SELECT id FROM picked))
	  AND d.status NOT IN ('delivered', 'failed') AND d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until <= $1)
	  AND w.id = d.webhook_id AND e.seq = d.event_seq
	RETURNING d.next_attempt_at, d.id, d.webhook_id, d.attempts, d.round_start, d.lease_token,
		w.url, w.secret_sealed,
		e.seq, e.id, e.organization_id, e.type, e.created_at, e.data, e.deliveries, coalesce(e.trace_parent, '')`

// claimAnyQuery claims without a per-webhook cap: the $3 oldest due rows
// that no other transaction has locked. The lock is NO KEY UPDATE, the
// one the update takes anyway, which lets a result being recorded for an
// expired lease (KEY SHARE) be.
const claimAnyQuery = `
	WITH picked AS (
		SELECT id FROM deliveries
		WHERE ` + claimable + `
		ORDER BY next_attempt_at, id
		LIMIT $3
		FOR NO KEY UPDATE SKIP LOCKED)` + leaseReturning

// windowQuery reads the next window of a capped claim: the $4 claimable
// rows after the position ($6, $7) in due order. Each comes with whether
// this transaction holds its webhook's claim lock, or NULL when the
// webhook is left out: another claim holds its lock ($2), or its unexpired
// leases, this transaction's included, reach the cap $3. The lease count
// here may be stale; it only saves work, claimWindowQuery counts again
// under the lock. Taking a lock this transaction holds succeeds at once.
const windowQuery = `
	WITH window_rows AS (
		SELECT id, webhook_id, next_attempt_at FROM deliveries
		WHERE ` + claimable + `
		  AND (next_attempt_at, id) > ($6::timestamptz, $7::text)
		ORDER BY next_attempt_at, id
		LIMIT $4),
	hooks AS (
		SELECT webhook_id, pg_try_advisory_xact_lock($5, hashtext(webhook_id)) AS locked
		FROM (SELECT DISTINCT webhook_id FROM window_rows) w
		WHERE webhook_id <> ALL($2::text[])
		  AND (SELECT count(*) FROM deliveries l WHERE l.webhook_id = w.webhook_id AND l.lease_until > $1) < $3)
	SELECT r.id, r.webhook_id, r.next_attempt_at, h.locked
	FROM window_rows r LEFT JOIN hooks h USING (webhook_id)
	ORDER BY r.next_attempt_at, r.id`

// quotaCTE is, for each webhook of $4 (whose claim locks the transaction
// holds), how many more of its deliveries the cap $3 lets it lease.
const quotaCTE = `
	quota AS MATERIALIZED ( -- counted once per webhook, not once per row
		SELECT h.id, $3 - (SELECT count(*) FROM deliveries l WHERE l.webhook_id = h.id AND l.lease_until > $1) AS n
		FROM unnest($4::text[]) AS h (id))`

// claimWindowQuery claims, of the window rows $5 (ids, in due order) of
// webhooks $6, those of the webhooks of $4: for each webhook, its oldest
// rows up to its quota. The rows are chosen from the arrays, and only the
// chosen are locked, by key; one that is no longer claimable, or that
// another transaction holds (a redelivery, a deletion), is skipped, and
// the claim returns fewer.
const claimWindowQuery = `
	WITH ` + quotaCTE + `,
	ranked AS (
		SELECT w.id, q.n, row_number() OVER (PARTITION BY w.webhook_id ORDER BY w.i) AS rank
		FROM unnest($5::text[], $6::text[]) WITH ORDINALITY AS w (id, webhook_id, i)
		JOIN quota q ON q.id = w.webhook_id),
	picked AS (
		SELECT id FROM deliveries
		WHERE id = ANY(ARRAY(SELECT id FROM ranked WHERE rank <= n))
		FOR NO KEY UPDATE SKIP LOCKED)` + leaseReturning

// headsQuery finds, one by one, the webhooks that have claimable rows,
// leaving out those of $2 and those at the cap $3 (this transaction's
// leases included), and returns the $4 whose oldest claimable row is
// oldest, with whether this transaction got each one's claim lock. It reads two index entries per webhook with
// pending deliveries, however many deliveries those have: the distinct
// webhooks by a skip scan of deliveries_webhook_due, and each one's first
// claimable row.
const headsQuery = `
	WITH RECURSIVE pending_hooks (webhook_id) AS (
		(SELECT webhook_id FROM deliveries WHERE status = 'pending' ORDER BY webhook_id LIMIT 1)
		UNION ALL
		SELECT (SELECT d.webhook_id FROM deliveries d
		        WHERE d.status = 'pending' AND d.webhook_id > p.webhook_id
		        ORDER BY d.webhook_id LIMIT 1)
		FROM pending_hooks p WHERE p.webhook_id IS NOT NULL),
	heads AS (
		SELECT p.webhook_id, f.next_attempt_at, f.id
		FROM pending_hooks p CROSS JOIN LATERAL (
			SELECT next_attempt_at, id FROM deliveries
			WHERE webhook_id = p.webhook_id AND ` + claimable + `
			ORDER BY next_attempt_at, id
			LIMIT 1) f
		WHERE p.webhook_id <> ALL($2::text[])
		  AND (SELECT count(*) FROM deliveries l WHERE l.webhook_id = p.webhook_id AND l.lease_until > $1) < $3
		ORDER BY f.next_attempt_at, f.id
		LIMIT $4)
	SELECT webhook_id, pg_try_advisory_xact_lock($5, hashtext(webhook_id)) FROM heads`

// claimHeadsQuery claims, for each webhook of $4, its oldest claimable rows
// up to its quota, and of those the $5 oldest.
const claimHeadsQuery = `
	WITH ` + quotaCTE + `,
	chosen AS (
		SELECT c.id FROM quota q CROSS JOIN LATERAL (
			SELECT id, next_attempt_at FROM deliveries
			WHERE webhook_id = q.id AND ` + claimable + `
			ORDER BY next_attempt_at, id
			LIMIT greatest(q.n, 0)) c
		ORDER BY c.next_attempt_at, c.id
		LIMIT $5),
	picked AS (
		SELECT id FROM deliveries
		WHERE id = ANY(ARRAY(SELECT id FROM chosen))
		FOR NO KEY UPDATE SKIP LOCKED)` + leaseReturning

// walkFactor bounds how far a capped claim walks the claimable rows in due
// order: walkFactor × limit rows. Past that, the rows it meets belong to
// webhooks at their cap (an endpoint that is slow or down, and its
// backlog), and it finds the other webhooks one by one instead.
const walkFactor = 4

// ClaimDeliveries leases up to limit pending deliveries due at now whose
// lease is absent or expired (lease_until <= now), oldest due first, until
// leaseUntil, taking at most perWebhook deliveries of any one webhook
// counting those already leased and unexpired, by any process
// (perWebhook <= 0: no cap). Each Job carries a fresh lease token, the
// webhook's URL and opened secret, and its Event; jobs of one event share
// one *hookd.Event, which callers must not modify.
//
// Any number of processes may claim at once: rows are taken with SKIP
// LOCKED, so no two claims take the same delivery and none waits for
// another. The cap is exact across processes: a claim counts a webhook's
// leases only once it holds that webhook's advisory claim lock
// (pg_try_advisory_xact_lock), and leaves a webhook whose lock another
// claim holds at that moment to that claim. A claim may therefore return
// fewer deliveries than are claimable; the next one takes them.
//
// A capped claim walks the claimable rows in due order, a window at a
// time, skipping the rows of webhooks at their cap. When the walk has read
// walkFactor × limit rows, those left are mostly the backlog of webhooks
// at their cap, so it takes the oldest rows of the other webhooks, found
// one by one: the cost of a claim follows the webhooks it serves, and one
// endpoint's backlog neither starves the others nor slows their claims.
func (db *DB) ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit, perWebhook int) ([]*hookd.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	at, until := ms(now), ms(leaseUntil)
	c := &claim{db: db, until: until}
	if perWebhook <= 0 {
		// One statement, its own transaction. Should its answer be lost,
		// the deliveries it leased wait for their leases to expire, as
		// those of a process that died.
		rows, _ := db.pool.Query(ctx, claimAnyQuery, at, until, limit)
		if err := c.scan(rows); err != nil {
			return nil, fmt.Errorf("postgres: claim deliveries: %w", err)
		}
		return c.result(), nil
	}
	err := db.write(ctx, "claim deliveries", func(tx pgx.Tx) error {
		busy, walked, err := c.walk(ctx, tx, at, limit, perWebhook)
		if err != nil || !walked {
			return err
		}
		return c.heads(ctx, tx, at, limit, perWebhook, busy)
	})
	if err != nil {
		return nil, err
	}
	return c.result(), nil
}

// walk claims window by window in due order until limit is reached, the
// claimable rows run out, or it has read walkFactor × limit rows; walked
// reports the last, with the webhooks whose lock another claim holds.
func (c *claim) walk(ctx context.Context, tx pgx.Tx, at time.Time, limit, perWebhook int) (busy []string, walked bool, err error) {
	var (
		fromAt = pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
		fromID = ""
		id     string
		hook   string
		due    time.Time
		locked *bool
	)
	busy = []string{}
	for read := 0; len(c.jobs) < limit; {
		if read >= walkFactor*limit {
			return busy, true, nil
		}
		remaining := limit - len(c.jobs)
		rows, _ := tx.Query(ctx, windowQuery, at, busy, perWebhook, remaining, lockClaim, fromAt, fromID)
		var (
			window, windowHooks, lockedHooks []string
			seen                             = map[string]bool{}
			n                                int
		)
		if _, err := pgx.ForEachRow(rows, []any{&id, &hook, &due, &locked}, func() error {
			n++
			fromAt, fromID = pgtype.Timestamptz{Time: due, Valid: true}, id
			switch {
			case locked == nil: // at its cap, or busy
			case !*locked:
				if !seen[hook] {
					busy = append(busy, hook)
				}
			default:
				if !seen[hook] {
					lockedHooks = append(lockedHooks, hook)
				}
				window, windowHooks = append(window, id), append(windowHooks, hook)
			}
			seen[hook] = true
			return nil
		}); err != nil {
			return nil, false, err
		}
		if n == 0 {
			return busy, false, nil // nothing more is claimable
		}
		read += n
		if len(window) > 0 {
			rows, _ = tx.Query(ctx, claimWindowQuery, at, c.until, perWebhook, lockedHooks, window, windowHooks)
			if err := c.scan(rows); err != nil {
				return nil, false, err
			}
		}
	}
	return busy, false, nil
}

// heads claims the oldest rows of webhooks found one by one, leaving out
// those of skip, until limit is reached or none is left. Each webhook is
// served once: it gives all its quota allows, or all it has.
func (c *claim) heads(ctx context.Context, tx pgx.Tx, at time.Time, limit, perWebhook int, skip []string) error {
	for len(c.jobs) < limit {
		remaining := limit - len(c.jobs)
		rows, _ := tx.Query(ctx, headsQuery, at, skip, perWebhook, remaining, lockClaim)
		var (
			hook   string
			got    bool
			found  int
			locked []string
		)
		if _, err := pgx.ForEachRow(rows, []any{&hook, &got}, func() error {
			found++
			skip = append(skip, hook)
			if got {
				locked = append(locked, hook)
			}
			return nil
		}); err != nil {
			return err
		}
		if found == 0 {
			return nil
		}
		if len(locked) > 0 {
			rows, _ = tx.Query(ctx, claimHeadsQuery, at, c.until, perWebhook, locked, remaining)
			if err := c.scan(rows); err != nil {
				return err
			}
		}
	}
	return nil
}

// claim collects the jobs of one ClaimDeliveries.
type claim struct {
	db      *DB
	until   time.Time
	jobs    []*hookd.Job
	order   map[*hookd.Job]time.Time // due time, for result
	secrets map[string]string        // sealed → opened, once per webhook
	events  map[int64]*hookd.Event   // by seq, shared by the jobs of one event
}

// scan reads the rows of leaseReturning into jobs, opening each webhook's
// secret once.
func (c *claim) scan(rows pgx.Rows) error {
	if c.order == nil {
		c.order, c.secrets, c.events = map[*hookd.Job]time.Time{}, map[string]string{}, map[int64]*hookd.Event{}
	}
	defer rows.Close()
	for rows.Next() {
		var (
			due      time.Time
			j        = &hookd.Job{LeaseUntil: c.until}
			attempts int
			sealed   string
			eventSeq int64
			e        hookd.Event
			data     []byte
		)
		if err := rows.Scan(&due, &j.DeliveryID, &j.WebhookID, &attempts, &j.RoundStart, &j.Lease,
			&j.URL, &sealed,
			&eventSeq, &e.ID, &e.OrganizationID, &e.Type, &e.CreatedAt, &data, &e.Deliveries, &e.TraceParent); err != nil {
			return err
		}
		j.Attempt = attempts + 1
		secret, ok := c.secrets[sealed]
		if !ok {
			var err error
			if secret, err = c.db.key.Open(sealed); err != nil {
				return fmt.Errorf("webhook %s: secret: %w", j.WebhookID, err)
			}
			c.secrets[sealed] = secret
		}
		j.Secret = secret
		if j.Event = c.events[eventSeq]; j.Event == nil {
			e.CreatedAt, e.Data = e.CreatedAt.UTC(), data
			j.Event, c.events[eventSeq] = &e, &e
		}
		c.order[j] = due
		c.jobs = append(c.jobs, j)
	}
	return rows.Err()
}

// result returns the jobs in due order, as the rows were walked.
func (c *claim) result() []*hookd.Job {
	slices.SortFunc(c.jobs, func(x, y *hookd.Job) int {
		return cmp.Or(c.order[x].Compare(c.order[y]), cmp.Compare(x.DeliveryID, y.DeliveryID))
	})
	return c.jobs
}
