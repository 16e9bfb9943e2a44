package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/hookd-dev/hookd"
)

// Statements of Prune, over the events with seq in (?, ?] and the cutoff.
const (
	pruneWalkQuery = `SELECT seq, created_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?`

	pruneDeliveredAttemptsQuery = `
		DELETE FROM attempts WHERE delivery_seq IN (
			SELECT seq FROM deliveries
			WHERE event_seq > ? AND event_seq <= ? AND status = 'delivered' AND last_attempt_at < ?)`

	pruneDeliveredQuery = `
		DELETE FROM deliveries
		WHERE event_seq > ? AND event_seq <= ? AND status = 'delivered' AND last_attempt_at < ?`

	// The newest attempt of a delivery is the one with the greatest rowid,
	// the order FindDelivery lists them in.
	pruneOldAttemptsQuery = `
		DELETE FROM attempts
		WHERE delivery_seq IN (SELECT seq FROM deliveries WHERE event_seq > ? AND event_seq <= ?)
			AND started_at < ?
			AND rowid < (SELECT max(a.rowid) FROM attempts a WHERE a.delivery_seq = attempts.delivery_seq)`

	pruneEventsQuery = `
		DELETE FROM events
		WHERE seq > ? AND seq <= ? AND created_at < ?
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq)`
)

// Prune deletes what is older than before among at most limit events,
// from the cursor after on, in one write transaction; see storetest.Store.
// The cursor is the seq of the last event looked at. The write lock is
// held for the whole call, so limit is what keeps dispatch waiting little:
// a call does a handful of statements over the events' range of seq.
func (db *DB) Prune(ctx context.Context, before time.Time, after string, limit int) (hookd.PruneResult, error) {
	var res hookd.PruneResult
	if limit < 1 {
		return res, errors.New("sqlite: prune: limit must be at least 1")
	}
	var from int64
	if after != "" {
		var err error
		if from, err = strconv.ParseInt(after, 10, 64); err != nil || from < 0 {
			return res, errors.New("sqlite: prune: bad cursor")
		}
	}
	cutoff := millis(before)
	err := db.write(ctx, "prune", func(tx *sql.Tx) error {
		res = hookd.PruneResult{}
		to, more, err := pruneRange(ctx, tx, from, cutoff, limit)
		if err != nil || to == from {
			return err
		}
		if more {
			res.Next = strconv.FormatInt(to, 10)
		}
		exec := func(query string) (int, error) {
			r, err := tx.ExecContext(ctx, query, from, to, cutoff)
			if err != nil {
				return 0, err
			}
			n, err := r.RowsAffected()
			return int(n), err
		}
		n, err := exec(pruneDeliveredAttemptsQuery)
		if err != nil {
			return err
		}
		res.Attempts += n
		if res.Deliveries, err = exec(pruneDeliveredQuery); err != nil {
			return err
		}
		if n, err = exec(pruneOldAttemptsQuery); err != nil {
			return err
		}
		res.Attempts += n
		if res.Events, err = exec(pruneEventsQuery); err != nil {
			return err
		}
		var c counts
		c.add(hookd.DeliveryDelivered, -res.Deliveries)
		return c.save(ctx, db, tx)
	})
	if err != nil {
		return hookd.PruneResult{}, err
	}
	return res, nil
}

// pruneRange reads up to limit events after seq from, in seq order, and
// returns the seq of the last one published before cutoff (from when
// none) and whether there may be more to look at: false once an event at
// or after the cutoff, or the end of the table, is reached. Events are
// numbered in the order they are published, so the walk stops at the
// first young one rather than read every recent event.
func pruneRange(ctx context.Context, tx *sql.Tx, from, cutoff int64, limit int) (to int64, more bool, err error) {
	rows, err := tx.QueryContext(ctx, pruneWalkQuery, from, limit)
	if err != nil {
		return from, false, err
	}
	defer rows.Close()
	to, n := from, 0
	for rows.Next() {
		var seq, created int64
		if err := rows.Scan(&seq, &created); err != nil {
			return from, false, err
		}
		if created >= cutoff {
			return to, false, rows.Close()
		}
		to, n = seq, n+1
	}
	return to, n == limit, rows.Err()
}
