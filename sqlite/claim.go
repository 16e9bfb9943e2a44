package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookd-dev/hookd"
)

// ClaimDeliveries leases up to limit pending deliveries due at now whose
// lease is absent or expired (lease_until <= now), oldest due first, until
// leaseUntil, taking at most perWebhook deliveries of any one webhook
// counting those already leased and unexpired (perWebhook <= 0: no cap).
// Each Job carries a fresh lease token (random for the claim, made unique
// per job), the webhook's URL and opened secret, and its Event; jobs of
// one event share one *hookd.Event, which callers must not modify.
//
// Its cost follows what it takes and the deliveries in flight, not the
// backlog: see pick.
func (db *DB) ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit, perWebhook int) ([]*hookd.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	nowMS, until := now.UnixMilli(), fromMillis(leaseUntil.UnixMilli())
	var jobs []*hookd.Job
	err := db.writes.run(ctx, db, "claim deliveries", limit, func(ctx context.Context, tx *sql.Tx) error {
		jobs = nil
		leases, err := db.leasedPerWebhook(ctx, tx, nowMS)
		if err != nil {
			return err
		}
		picked, err := db.pick(ctx, tx, nowMS, millis(until), limit, perWebhook, leases)
		if err != nil || len(picked) == 0 {
			return err
		}
		jobs, err = db.lease(ctx, tx, picked, until)
		return err
	}, db.schedule.invalidate) // on a rollback: the schedule counts on leases it undid
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

const leasedQuery = `
	SELECT webhook_id, COUNT(*), MIN(lease_until), MIN(next_attempt_at) FROM deliveries INDEXED BY deliveries_leased
	WHERE lease_until > ? GROUP BY webhook_id`

// leased are a webhook's deliveries whose lease has not expired: they are
// in flight and count against the cap.
type leased struct {
	n      int
	first  int64 // the earliest expiry: a delivery may be claimable again then
	oldest int64 // the earliest next attempt time: its place in due order then
}

// leasedPerWebhook reads, per webhook, the deliveries whose lease has not
// expired at now. Leased rows are few (those in flight) and have their own
// index.
func (db *DB) leasedPerWebhook(ctx context.Context, tx *sql.Tx, nowMS int64) (map[string]leased, error) {
	q, err := db.stmt(ctx, tx, leasedQuery)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, nowMS)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]leased{}
	for rows.Next() {
		var (
			id string
			l  leased
		)
		if err := rows.Scan(&id, &l.n, &l.first, &l.oldest); err != nil {
			return nil, err
		}
		m[id] = l
	}
	return m, rows.Err()
}

// Statements of leasing.
const (
	leaseQuery = `
		UPDATE deliveries SET lease_token = ?1 || '.' || seq, lease_until = ?2
		WHERE seq IN (SELECT value FROM json_each(?3))
		RETURNING seq, lease_token, id, webhook_id, event_seq, attempts, round_start`
	targetsQuery   = `SELECT id, url, secret_sealed FROM webhooks WHERE id IN (SELECT value FROM json_each(?))`
	jobEventsQuery = `SELECT seq, id, organization_id, type, created_at, data, deliveries, coalesce(trace_parent, '') FROM events WHERE seq IN (SELECT value FROM json_each(?))`
)

// lease sets a fresh lease on each picked delivery and builds its Job. It
// runs three statements whatever the number of jobs: the update, then the
// webhooks and the events the jobs need, each loaded once.
func (db *DB) lease(ctx context.Context, tx *sql.Tx, picked []int64, until time.Time) ([]*hookd.Job, error) {
	seqs, err := json.Marshal(picked)
	if err != nil {
		return nil, err
	}
	// One random token per claim, made unique per job by the row's seq: a
	// later claim of the same row has another token.
	token := rand.Text()
	update, err := db.stmt(ctx, tx, leaseQuery)
	if err != nil {
		return nil, err
	}
	rows, err := update.QueryContext(ctx, token, millis(until), string(seqs))
	if err != nil {
		return nil, err
	}
	bySeq := make(map[int64]*hookd.Job, len(picked))
	eventOf := make(map[*hookd.Job]int64, len(picked))
	webhookIDs, eventSeqs := []string{}, []int64{}
	for rows.Next() {
		j := &hookd.Job{LeaseUntil: until}
		var seq, eventSeq int64
		var attempts int
		if err := rows.Scan(&seq, &j.Lease, &j.DeliveryID, &j.WebhookID, &eventSeq, &attempts, &j.RoundStart); err != nil {
			rows.Close()
			return nil, err
		}
		j.Attempt = attempts + 1
		bySeq[seq], eventOf[j] = j, eventSeq
		webhookIDs, eventSeqs = append(webhookIDs, j.WebhookID), append(eventSeqs, eventSeq)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}

	type target struct{ url, secret string }
	targets := map[string]target{}
	err = db.queryEach(ctx, tx, targetsQuery, webhookIDs,
		func(rows *sql.Rows) error {
			var id, sealed string
			var t target
			if err := rows.Scan(&id, &t.url, &sealed); err != nil {
				return err
			}
			if t.secret, err = db.key.Open(sealed); err != nil {
				return fmt.Errorf("webhook %s: secret: %w", id, err)
			}
			targets[id] = t
			return nil
		})
	if err != nil {
		return nil, err
	}
	events := map[int64]*hookd.Event{}
	err = db.queryEach(ctx, tx, jobEventsQuery, eventSeqs,
		func(rows *sql.Rows) error {
			var seq int64
			var e hookd.Event
			var created int64
			var data []byte
			if err := rows.Scan(&seq, &e.ID, &e.OrganizationID, &e.Type, &created, &data, &e.Deliveries, &e.TraceParent); err != nil {
				return err
			}
			e.CreatedAt, e.Data = fromMillis(created), data
			events[seq] = &e
			return nil
		})
	if err != nil {
		return nil, err
	}

	jobs := make([]*hookd.Job, 0, len(picked))
	for _, seq := range picked { // in due order
		j := bySeq[seq]
		if j == nil {
			return nil, fmt.Errorf("delivery row %d vanished while leased", seq)
		}
		t, ok := targets[j.WebhookID]
		if j.Event = events[eventOf[j]]; !ok || j.Event == nil {
			return nil, fmt.Errorf("delivery %s: webhook or event missing", j.DeliveryID)
		}
		j.URL, j.Secret = t.url, t.secret
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// queryEach runs query with keys, as a JSON array, for its one parameter
// and calls fn on each row.
func (db *DB) queryEach(ctx context.Context, tx *sql.Tx, query string, keys any, fn func(*sql.Rows) error) error {
	arg, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	q, err := db.stmt(ctx, tx, query)
	if err != nil {
		return err
	}
	rows, err := q.QueryContext(ctx, string(arg))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// nextDueQuery is NextDue's statement: the next attempt time of the first
// unleased pending delivery in due order, and the earliest time a leased
// one becomes claimable again. One statement, so both come from one
// snapshot without a transaction around them.
const nextDueQuery = `
	SELECT
		(SELECT next_attempt_at FROM deliveries INDEXED BY deliveries_due
		 WHERE status = 'pending' AND lease_until IS NULL
		 ORDER BY next_attempt_at LIMIT 1),
		(SELECT MIN(MAX(next_attempt_at, lease_until)) FROM deliveries INDEXED BY deliveries_leased
		 WHERE lease_until IS NOT NULL AND status = 'pending')`

// NextDue returns when the earliest pending delivery becomes claimable (its
// next attempt time, or its lease expiry when later), and false when
// nothing is pending. It reads the unleased rows in due order and the
// leased ones, few, through their own index, so its cost does not grow
// with the backlog.
//
// The dispatcher asks after every claim that left it idle, so the query
// is prepared once, on the read pool (see Open).
func (db *DB) NextDue(ctx context.Context) (time.Time, bool, error) {
	var unleased, leased sql.NullInt64
	if err := db.nextDue.QueryRowContext(ctx).Scan(&unleased, &leased); err != nil {
		return time.Time{}, false, wrap("next due", err)
	}
	switch {
	case unleased.Valid && leased.Valid:
		return fromMillis(min(unleased.Int64, leased.Int64)), true, nil
	case unleased.Valid:
		return fromMillis(unleased.Int64), true, nil
	case leased.Valid:
		return fromMillis(leased.Int64), true, nil
	}
	return time.Time{}, false, nil
}
