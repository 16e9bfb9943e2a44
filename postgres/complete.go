package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/jackc/pgx/v5"
)

// completeQuery logs the attempts of results, in the order given; results
// of deleted deliveries find no row and are dropped. KEY SHARE keeps each
// delivery from being deleted until its attempt is in (attempts have no
// foreign key, see the migration); a delivery whose deletion commits
// while the statement waits for it is skipped.
const completeQuery = `
	INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, response_body, error)
	SELECT d.id, a.number, a.started_at, a.duration_ms, a.status_code, a.response_body, a.error
	FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::bigint[], $5::int[], $6::bytea[], $7::text[])
		WITH ORDINALITY AS a (id, number, started_at, duration_ms, status_code, response_body, error, i)
	JOIN deliveries d ON d.id = a.id
	ORDER BY a.i
	FOR KEY SHARE OF d`

// settleQuery moves each delivery whose lease is still the job's to the
// result's status, clears the lease, and adds the moves to the counts of
// this server process (see saveCounts), in one statement.
const settleQuery = `
	WITH settled AS (
		UPDATE deliveries d SET status = r.status, attempts = r.number, last_attempt_at = r.started_at,
			last_status_code = nullif(r.status_code, 0),
			next_attempt_at = CASE WHEN r.status = 'pending' THEN r.next_attempt_at END,
			lease_token = NULL, lease_until = NULL
		FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::int[], $7::timestamptz[])
			AS r (id, lease, status, number, started_at, status_code, next_attempt_at)
		WHERE d.id = r.id AND d.lease_token = r.lease
		RETURNING r.id, r.lease, r.status),
	moved (status, n) AS (
		SELECT status, count(*) FROM settled GROUP BY status
		UNION ALL
		SELECT 'pending', -count(*) FROM settled),
	counted AS (
		INSERT INTO delivery_counts AS c (status, slot, n)
		SELECT status, pg_backend_pid() % 64, sum(n) FROM moved
		GROUP BY status HAVING sum(n) <> 0
		ORDER BY status
		ON CONFLICT (status, slot) DO UPDATE SET n = c.n + excluded.n)
	SELECT id, lease FROM settled`

// healthQuery locks the webhooks of a call's results, in id order (the
// order DeleteWebhook and EnableWebhook lock a webhook before its
// deliveries, and the order two calls lock theirs), and reads their
// health. NO KEY UPDATE leaves publishing, which holds KEY SHARE on its
// receivers, free; completions for one webhook take turns, which keeps
// its count exact across nodes, and a webhook's lock is always taken
// before its deliveries', so disabling one (which fails its pending
// deliveries) cannot deadlock with another completion.
const healthQuery = `
	SELECT id, organization_id, active, consecutive_failures, failing_since, disabled_at FROM webhooks
	WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`

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
// written.
//
// Each result whose lease was current counts towards its webhook's health
// (hookd.HealthPolicy.Record); a webhook a rule condemns is disabled in
// the same transaction, its pending deliveries failed with no lease.
//
// The whole slice costs one batch of three statements over arrays (lock
// and read the webhooks' health, log, settle) in one transaction, and a
// second batch only when some webhook's health changed.
func (db *DB) CompleteAttempts(ctx context.Context, results []*hookd.AttemptResult) error {
	for _, r := range results {
		switch {
		case r == nil || r.Job == nil:
			return errors.New("postgres: complete attempts: result without its job")
		case !r.Status.Valid():
			return fmt.Errorf("postgres: complete attempts: delivery %s: invalid status %q", r.Job.DeliveryID, r.Status)
		case r.Status == hookd.DeliveryPending && r.NextAttemptAt.IsZero():
			return fmt.Errorf("postgres: complete attempts: delivery %s: pending without a next attempt time", r.Job.DeliveryID)
		}
	}
	if len(results) == 0 {
		return nil
	}
	// Rows are locked in id order, as DeleteWebhook locks them, so that
	// the two cannot deadlock; the sort is stable, so that two attempts of
	// one delivery are logged in the order given.
	results = slices.Clone(results)
	slices.SortStableFunc(results, func(x, y *hookd.AttemptResult) int { return cmp.Compare(x.Job.DeliveryID, y.Job.DeliveryID) })

	n := len(results)
	var (
		ids, leases, statuses, bodies, errs = make([]string, n), make([]string, n), make([]string, n), make([][]byte, n), make([]string, n)
		numbers, codes                      = make([]int32, n), make([]int32, n)
		started, next                       = make([]time.Time, n), make([]time.Time, n)
		durations                           = make([]int64, n)
	)
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
		ids[i], leases[i], statuses[i], bodies[i], errs[i] = r.Job.DeliveryID, r.Job.Lease, string(r.Status), []byte(body), a.Error
		numbers[i], codes[i], durations[i] = int32(number), int32(a.StatusCode), a.Duration.Milliseconds()
		started[i], next[i] = ms(a.StartedAt), ms(r.NextAttemptAt)
	}
	var hookIDs []string
	for _, r := range results {
		hookIDs = append(hookIDs, r.Job.WebhookID)
	}
	slices.Sort(hookIDs)
	hookIDs = slices.Compact(hookIDs)

	var disabled []*hookd.Webhook
	err := db.write(ctx, "complete attempts", func(tx pgx.Tx) error {
		disabled = nil
		var b pgx.Batch
		hooks := make(map[string]*hookd.Webhook, len(hookIDs))
		b.Queue(healthQuery, hookIDs).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					w          hookd.Webhook
					since, off *time.Time
				)
				if err := rows.Scan(&w.ID, &w.OrganizationID, &w.Active, &w.ConsecutiveFailures, &since, &off); err != nil {
					return err
				}
				if since != nil {
					w.FailingSince = since.UTC()
				}
				if off != nil {
					w.DisabledAt = off.UTC()
				}
				hooks[w.ID] = &w
			}
			return rows.Err()
		})
		// The attempt is logged whatever became of the lease: it was made,
		// and the receiver may have acted on it.
		b.Queue(completeQuery, ids, numbers, started, durations, codes, bodies, errs)
		current := make(map[[2]string]bool, n)
		b.Queue(settleQuery, ids, leases, statuses, numbers, started, codes, next).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var key [2]string
				if err := rows.Scan(&key[0], &key[1]); err != nil {
					return err
				}
				current[key] = true
			}
			return rows.Err()
		})
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return err
		}
		var err error
		disabled, err = db.recordHealth(ctx, tx, results, hooks, current)
		return err
	})
	if err != nil {
		return err
	}
	for _, w := range disabled {
		db.log.Warn("webhook disabled automatically", "webhook_id", w.ID, "organization_id", w.OrganizationID, "reason", w.DisabledReason)
	}
	return nil
}

// ReleaseJobs clears the leases of jobs that were not attempted, so that
// their deliveries are claimed again at once. A job whose lease is no
// longer its delivery's is ignored.
func (db *DB) ReleaseJobs(ctx context.Context, jobs []*hookd.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	jobs = slices.Clone(jobs) // locked in id order, as in CompleteAttempts
	slices.SortFunc(jobs, func(x, y *hookd.Job) int { return cmp.Compare(x.DeliveryID, y.DeliveryID) })
	ids, leases := make([]string, len(jobs)), make([]string, len(jobs))
	for i, j := range jobs {
		ids[i], leases[i] = j.DeliveryID, j.Lease
	}
	if _, err := db.pool.Exec(ctx, `
		UPDATE deliveries d SET lease_token = NULL, lease_until = NULL
		FROM unnest($1::text[], $2::text[]) AS r (id, lease)
		WHERE d.id = r.id AND d.lease_token = r.lease`, ids, leases); err != nil {
		return fmt.Errorf("postgres: release jobs: %w", err)
	}
	return nil
}

// NextDue returns when the earliest pending delivery becomes claimable (its
// next attempt time, or its lease expiry when later), and false when
// nothing is pending. It reads the unleased rows in due order and the
// leased ones, few, through their own index, so its cost does not grow
// with the backlog.
func (db *DB) NextDue(ctx context.Context) (time.Time, bool, error) {
	var at *time.Time
	// least() ignores NULLs: either part may have no row.
	err := db.pool.QueryRow(ctx, `
		SELECT least(
			(SELECT next_attempt_at FROM deliveries
			 WHERE status = 'pending' AND lease_until IS NULL
			 ORDER BY next_attempt_at LIMIT 1),
			(SELECT min(greatest(next_attempt_at, lease_until)) FROM deliveries
			 WHERE lease_until IS NOT NULL AND status = 'pending'))`).Scan(&at)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("postgres: next due: %w", err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return at.UTC(), true, nil
}
