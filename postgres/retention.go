package postgres

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/jackc/pgx/v5"
)

// Statements of Prune, over the events with seq in ($1, $2] and the
// cutoff $3.
const (
	pruneWalkQuery = `SELECT seq, created_at FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`

	// Attempts are only ever inserted by others, never locked, so this
	// waits for nothing but DeleteWebhook removing the same rows; it runs
	// before Prune locks any delivery so that it cannot wait for a
	// transaction that waits for Prune.
	pruneOldAttemptsQuery = `
		DELETE FROM attempts a USING deliveries d
		WHERE d.event_seq > $1 AND d.event_seq <= $2 AND a.delivery_id = d.id AND a.started_at < $3
			AND a.seq < (SELECT max(b.seq) FROM attempts b WHERE b.delivery_id = a.delivery_id)`

	// The lock re-reads each row: a delivery redelivered meanwhile is
	// pending again and stays. SKIP LOCKED leaves rows that a Redeliver, a
	// DeleteWebhook or a late CompleteAttempts holds to a later run, so
	// that pruning never makes them wait; the id order is theirs.
	pruneLockDeliveredQuery = `
		SELECT id FROM deliveries
		WHERE event_seq > $1 AND event_seq <= $2 AND status = 'delivered' AND last_attempt_at < $3
		ORDER BY id FOR UPDATE SKIP LOCKED`

	pruneEventsQuery = `
		DELETE FROM events e
		WHERE seq > $1 AND seq <= $2 AND created_at < $3
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq)`
)

// Prune deletes what is older than before among at most limit events,
// from the cursor after on, in one transaction; see storetest.Store. The
// cursor is the seq of the last event looked at.
//
// One node prunes at a time: a call that finds another node's call under
// way (a transaction-scoped advisory lock) does nothing and returns an
// empty result without a cursor, so the other node's walk goes on alone.
func (db *DB) Prune(ctx context.Context, before time.Time, after string, limit int) (hookd.PruneResult, error) {
	var res hookd.PruneResult
	if limit < 1 {
		return res, errors.New("postgres: prune: limit must be at least 1")
	}
	var from int64
	if after != "" {
		var err error
		if from, err = strconv.ParseInt(after, 10, 64); err != nil || from < 0 {
			return res, errors.New("postgres: prune: bad cursor")
		}
	}
	cutoff := ms(before)
	err := db.write(ctx, "prune", func(tx pgx.Tx) error {
		res = hookd.PruneResult{}
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, 0)`, lockPrune).Scan(&mine); err != nil || !mine {
			return err
		}
		to, more, err := pruneRange(ctx, tx, from, cutoff, limit)
		if err != nil || to == from {
			return err
		}
		if more {
			res.Next = strconv.FormatInt(to, 10)
		}

		tag, err := tx.Exec(ctx, pruneOldAttemptsQuery, from, to, cutoff)
		if err != nil {
			return err
		}
		res.Attempts = int(tag.RowsAffected())

		rows, _ := tx.Query(ctx, pruneLockDeliveredQuery, from, to, cutoff)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			// Attempts have no foreign key (see the first migration): they
			// go explicitly, after the lock, so that one logged meanwhile
			// goes too.
			if tag, err = tx.Exec(ctx, `DELETE FROM attempts WHERE delivery_id = ANY($1)`, ids); err != nil {
				return err
			}
			res.Attempts += int(tag.RowsAffected())
			if tag, err = tx.Exec(ctx, `DELETE FROM deliveries WHERE id = ANY($1)`, ids); err != nil {
				return err
			}
			res.Deliveries = int(tag.RowsAffected())
		}

		if tag, err = tx.Exec(ctx, pruneEventsQuery, from, to, cutoff); err != nil {
			return err
		}
		res.Events = int(tag.RowsAffected())
		var c counts
		c.add(hookd.DeliveryDelivered, -int64(res.Deliveries))
		return c.save(ctx, tx)
	})
	if err != nil {
		return hookd.PruneResult{}, err
	}
	return res, nil
}

// pruneRange reads up to limit events after seq from, in seq order, and
// returns the seq of the last one published before cutoff (from when
// none) and whether there may be more to look at: false once an event at
// or after the cutoff, or the end of the table, is reached. Seq follows
// publishing closely (two publishes committing out of order may swap),
// so the walk stops at the first young event rather than read every
// recent one; an old event it leaves behind is taken by the next run.
func pruneRange(ctx context.Context, tx pgx.Tx, from int64, cutoff time.Time, limit int) (to int64, more bool, err error) {
	rows, _ := tx.Query(ctx, pruneWalkQuery, from, limit)
	defer rows.Close()
	to, n := from, 0
	for rows.Next() {
		var (
			seq     int64
			created time.Time
		)
		if err := rows.Scan(&seq, &created); err != nil {
			return from, false, err
		}
		if !created.Before(cutoff) {
			rows.Close()
			return to, false, rows.Err()
		}
		to, n = seq, n+1
	}
	return to, n == limit, rows.Err()
}
