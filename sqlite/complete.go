package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/hookd-dev/hookd"
)

// CompleteAttempts logs each result's attempt and, where the job's lease
// is still the delivery's, moves the delivery to the result's status
// (Attempts = the attempt's number, LastAttemptAt = its start,
// LastStatusCode = its status code or none, NextAttemptAt when pending)
// and clears the lease, all in one transaction. A result whose lease no
// longer matches (the delivery was redelivered, or its lease expired and
// another claim took it) is logged without touching the delivery; results
// of deleted deliveries are dropped. The attempt's number is
// Attempt.Number, or Job.Attempt when that is 0; a response body is kept
// up to hookd.MaxResponseBody bytes. A result with an invalid Status, or
// pending without NextAttemptAt, is an internal error and nothing is
// written. Each result whose lease was current counts towards its
// webhook's health (hookd.HealthPolicy.Record); a webhook a rule condemns
// is disabled in the same transaction, its pending deliveries failed with
// no lease.
func (db *DB) CompleteAttempts(ctx context.Context, results []*hookd.AttemptResult) error {
	for _, r := range results {
		switch {
		case r == nil || r.Job == nil:
			return errors.New("sqlite: complete attempts: result without its job")
		case !r.Status.Valid():
			return fmt.Errorf("sqlite: complete attempts: delivery %s: invalid status %q", r.Job.DeliveryID, r.Status)
		case r.Status == hookd.DeliveryPending && r.NextAttemptAt.IsZero():
			return fmt.Errorf("sqlite: complete attempts: delivery %s: pending without a next attempt time", r.Job.DeliveryID)
		}
	}
	if len(results) == 0 {
		return nil
	}

	// The attempt is logged whatever became of the lease: it was made, and
	// the receiver may have acted on it.
	logArgs := make([]any, 0, len(results)*attemptParams)
	settleArgs := make([]any, 0, len(results)*settleParams)
	settled := make(map[[2]string]bool, len(results))
	candidates := make([]*hookd.AttemptResult, 0, len(results)) // those settleArgs holds, in order
	for i, r := range results {
		a := &r.Attempt
		number := a.Number
		if number == 0 {
			number = r.Job.Attempt
		}
		body := a.ResponseBody
		if len(body) > hookd.MaxResponseBody {
			body = body[:hookd.MaxResponseBody]
		}
		logArgs = append(logArgs, r.Job.DeliveryID, i, number, millis(a.StartedAt), a.Duration.Milliseconds(), a.StatusCode, []byte(body), a.Error)

		// A job completes once; should it come twice, the first result
		// wins, as it would one call after another.
		key := [2]string{r.Job.DeliveryID, r.Job.Lease}
		if settled[key] {
			continue
		}
		settled[key] = true
		candidates = append(candidates, r)
		var code, next sql.NullInt64
		if a.StatusCode != 0 {
			code = sql.NullInt64{Int64: int64(a.StatusCode), Valid: true}
		}
		if r.Status == hookd.DeliveryPending {
			next = nullMillis(r.NextAttemptAt)
		}
		settleArgs = append(settleArgs, r.Job.DeliveryID, r.Job.Lease, string(r.Status), number, millis(a.StartedAt), code, next)
	}

	var disabled []*hookd.Webhook
	err := db.writes.run(ctx, db, "complete attempts", len(results), func(ctx context.Context, tx *sql.Tx) error {
		disabled = nil
		err := db.chunked(ctx, tx, logAttemptQueries, attemptParams, logArgs, nil)
		if err != nil {
			return err
		}
		var c counts
		current := make(map[string]int, len(candidates)) // settled deliveries: their lease was current
		err = db.chunked(ctx, tx, settleQueries, settleParams, settleArgs, func(rows *sql.Rows) error {
			var (
				id, status, webhookID string
				next                  sql.NullInt64
			)
			if err := rows.Scan(&id, &status, &webhookID, &next); err != nil {
				return err
			}
			current[id]++
			c.move(hookd.DeliveryPending, hookd.DeliveryStatus(status)) // only a pending delivery holds a lease
			// A retry is claimable at its time, which may come before the
			// lease would have expired.
			if next.Valid {
				db.schedule.wake(next.Int64, webhookID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if disabled, err = db.recordHealth(ctx, tx, candidates, current, &c); err != nil {
			return err
		}
		return c.save(ctx, db, tx)
	}, nil)
	if err != nil {
		return err
	}
	for _, w := range disabled {
		db.log.Warn("webhook disabled automatically", "webhook_id", w.ID, "organization_id", w.OrganizationID, "reason", w.DisabledReason)
	}
	return nil
}

// Statements of completing, in the sizes of rowSizes. The rows come in a
// VALUES list: v.column1 is the delivery id.
const (
	attemptParams = 8 // delivery id, position in the call, then the attempt's columns
	settleParams  = 7 // delivery id, lease, then the delivery's new columns
)

var (
	logAttemptQueries = sized(logAttempts)
	settleQueries     = sized(settle)
)

// logAttempts inserts n attempts in the order of the call; an attempt of a
// deleted delivery finds no row to join and is dropped.
func logAttempts(n int) string {
	return `
		INSERT INTO attempts (delivery_seq, number, started_at, duration_ms, status_code, response_body, error)
		SELECT d.seq, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8
		FROM (VALUES ` + valuesList(n, attemptParams) + `) AS v JOIN deliveries d ON d.id = v.column1
		ORDER BY v.column2`
}

// settle moves n deliveries whose lease still matches to their new state
// and returns the id, status, webhook and next attempt time of each one it
// changed.
func settle(n int) string {
	return `
		UPDATE deliveries SET status = v.column3, attempts = v.column4, last_attempt_at = v.column5,
			last_status_code = v.column6, next_attempt_at = v.column7, lease_token = NULL, lease_until = NULL
		FROM (VALUES ` + valuesList(n, settleParams) + `) AS v
		WHERE deliveries.id = v.column1 AND deliveries.lease_token = v.column2
		RETURNING id, status, webhook_id, next_attempt_at`
}

// rowSizes are the numbers of rows the multi-row statements come in,
// largest first. A statement per row costs SQLite more (cursors opened and
// closed on every index, the statement reset) than the row itself; with
// these sizes 100 rows take 4 statements, and each size is prepared once.
var rowSizes = [...]int{64, 16, 4, 1}

// sized returns build's statement in each of rowSizes.
func sized(build func(rows int) string) (queries [len(rowSizes)]string) {
	for i, n := range rowSizes {
		queries[i] = build(n)
	}
	return queries
}

// valuesList is n rows of params placeholders: "(?, ?), (?, ?)".
func valuesList(n, params int) string {
	row := "(" + strings.Repeat("?, ", params-1) + "?)"
	return strings.Repeat(row+", ", n-1) + row
}

// chunked runs args, rows of params values each, through queries (one
// statement per size of rowSizes), the largest that fits at each step, and
// passes every row the statements return to fn when fn is not nil.
func (db *DB) chunked(ctx context.Context, tx *sql.Tx, queries [len(rowSizes)]string, params int, args []any, fn func(*sql.Rows) error) error {
	for len(args) > 0 {
		i := 0
		for rowSizes[i]*params > len(args) {
			i++
		}
		n := rowSizes[i] * params
		stmt, err := db.stmt(ctx, tx, queries[i])
		if err != nil {
			return err
		}
		rows, err := stmt.QueryContext(ctx, args[:n]...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if fn == nil {
				continue
			}
			if err := fn(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		args = args[n:]
	}
	return nil
}

// releaseQuery gives a lease back.
const releaseQuery = `
	UPDATE deliveries SET lease_token = NULL, lease_until = NULL WHERE id = ? AND lease_token = ?
	RETURNING webhook_id, next_attempt_at`

// ReleaseJobs clears the leases of jobs that were not attempted, so that
// their deliveries are claimed again at once. A job whose lease is no
// longer its delivery's is ignored.
func (db *DB) ReleaseJobs(ctx context.Context, jobs []*hookd.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	return db.write(ctx, "release jobs", func(tx *sql.Tx) error {
		release, err := db.stmt(ctx, tx, releaseQuery)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			var (
				webhookID string
				next      int64
			)
			err := release.QueryRowContext(ctx, j.DeliveryID, j.Lease).Scan(&webhookID, &next)
			switch {
			case errors.Is(err, sql.ErrNoRows): // no longer its lease
			case err != nil:
				return err
			default: // claimable again now, not when the lease would have expired
				db.schedule.wake(next, webhookID)
			}
		}
		return nil
	})
}
