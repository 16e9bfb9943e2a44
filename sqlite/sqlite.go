// Package sqlite is hookd's embedded store: one SQLite file, owned by one
// hookd process, through the pure-Go driver modernc.org/sqlite.
//
// The database runs in WAL mode. Writes go through a single connection in
// BEGIN IMMEDIATE transactions, since SQLite serializes writers anyway and
// one writer never meets SQLITE_BUSY from another; reads use a separate pool
// of query-only connections that never wait for the writer. Throughput
// comes from putting many rows in one commit: PublishEvents, ClaimDeliveries
// and CompleteAttempts each take a whole batch in one transaction, and
// concurrent calls of them share one (writeGroup).
//
// A process takes an exclusive lock on "<path>.lock" for as long as the
// database is open, so two hookd processes never share a file; because of
// that, Open can safely clear every lease left by a previous process that
// died, and deliveries that were in flight are claimed again at once.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/seal"
	sqlite3 "modernc.org/sqlite/lib"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Config is what Open needs.
type Config struct {
	// Path is the database file; its directory is created if missing.
	Path string
	// Key seals webhook secrets on write and opens them on read. Required.
	Key *seal.Key
	// Synchronous is SQLite's synchronous setting: "NORMAL" (the default
	// when empty) survives a killed process but may lose the last commits
	// on a power failure; "FULL" survives both at the cost of one fsync
	// per commit.
	Synchronous string
	// Health says when CompleteAttempts disables a failing webhook. Nil
	// means hookd.DefaultHealthPolicy(); a policy whose fields are zero
	// never disables one.
	Health *hookd.HealthPolicy
	// Logger receives a line for each webhook disabled automatically. Nil
	// discards it.
	Logger *slog.Logger
	// MaxWebhooksPerOrganization is how many webhooks one organization may
	// have; 0 means hookd.MaxWebhooksPerOrganization (SPEC §3's 100).
	MaxWebhooksPerOrganization int
}

// readConns is the size of the read pool: reads never block the writer in
// WAL mode, and a few connections let the API answer while the dispatcher
// claims and completes.
const readConns = 4

// busyTimeout is how long a statement waits for a lock held by another
// connection (a checkpoint, or the writer for a reader starting a
// transaction) before failing.
const busyTimeout = 5 * time.Second

// DB is an open store. It satisfies the whole store contract
// (storetest.Store) and is safe for concurrent use.
type DB struct {
	w      *sql.DB // one connection: every write transaction
	r      *sql.DB // query-only pool
	key    *seal.Key
	lock   *os.File
	health hookd.HealthPolicy
	log    *slog.Logger

	maxWebhooks int // per organization; Config.MaxWebhooksPerOrganization

	// schedule is when each webhook with pending deliveries has work due,
	// kept by the writes for ClaimDeliveries.
	schedule schedule

	// writes commits concurrent writes of the hot paths together.
	writes writeGroup

	// stmts are the statements of the hot paths (publish, claim, complete),
	// prepared once on the write connection: parsing SQL costs modernc's
	// SQLite more than running these statements does. Read-only after Open.
	stmts map[string]*sql.Stmt

	// nextDue is NextDue's statement, prepared on the read pool.
	nextDue *sql.Stmt

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating it if needed) the database at cfg.Path, applies
// pending migrations, takes the process's exclusive lock on the file and
// clears leases left by a previous process. It fails when another process
// has the database open.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Key == nil {
		return nil, errors.New("sqlite: Config.Key is required to seal webhook secrets")
	}
	w, lock, _, err := openWriter(ctx, cfg.Path, cfg.Synchronous)
	if err != nil {
		return nil, err
	}
	db := &DB{w: w, lock: lock, key: cfg.Key, health: hookd.DefaultHealthPolicy(), log: cfg.Logger,
		maxWebhooks: cmp.Or(cfg.MaxWebhooksPerOrganization, hookd.MaxWebhooksPerOrganization)}
	if cfg.Health != nil {
		db.health = *cfg.Health
	}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}

	// One process owns the file (the lock above), so no lease in it belongs
	// to a live dispatcher: whatever was in flight when the previous owner
	// died is due again now.
	if _, err := w.ExecContext(ctx, `UPDATE deliveries SET lease_token = NULL, lease_until = NULL WHERE lease_until IS NOT NULL`); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: clear stale leases: %w", err)
	}

	db.stmts = make(map[string]*sql.Stmt, len(hotQueries))
	for _, q := range hotQueries {
		s, err := w.PrepareContext(ctx, q)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: prepare %.40q: %w", q, err)
		}
		db.stmts[q] = s
	}

	dsn, err := dsn(cfg.Path, "_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()), "_query_only", "1")
	if err != nil {
		db.Close()
		return nil, err
	}
	if db.r, err = sql.Open("sqlite", dsn); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	db.r.SetMaxOpenConns(readConns)
	db.r.SetMaxIdleConns(readConns)
	if err := db.r.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	if db.nextDue, err = db.r.PrepareContext(ctx, nextDueQuery); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: prepare next due: %w", err)
	}
	return db, nil
}

// Migration is one schema migration, as Migrate reports it once applied.
type Migration struct {
	Version  int    // the number its file name starts with
	Name     string // the file name without the number and ".sql"
	Duration time.Duration
}

// LatestVersion is the version of the newest migration this hookd knows:
// the schema's version once Migrate or Open has run.
func LatestVersion() int { return latestVersion(migrations) }

// Migrate brings the schema of the database at path up to date, the way
// Open does, and closes it. It returns how many migrations it applied (0
// when the schema was current), and calls each progress function after
// each migration it applies. Like Open, it fails while another process
// has the database open.
func Migrate(ctx context.Context, path string, progress ...func(Migration)) (applied int, err error) {
	w, lock, applied, err := openWriter(ctx, path, "", progress...)
	if err != nil {
		return 0, err
	}
	err = w.Close()
	if uerr := unlock(lock); err == nil {
		err = uerr
	}
	return applied, err
}

// openWriter locks path, opens its write connection in WAL mode and
// migrates the schema.
func openWriter(ctx context.Context, path, synchronous string, progress ...func(Migration)) (w *sql.DB, lock *os.File, applied int, err error) {
	switch synchronous = strings.ToUpper(synchronous); synchronous {
	case "":
		synchronous = "NORMAL"
	case "NORMAL", "FULL":
	default:
		return nil, nil, 0, fmt.Errorf("sqlite: synchronous must be NORMAL or FULL, not %q", synchronous)
	}
	if path == "" {
		return nil, nil, 0, errors.New("sqlite: database path is required")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, nil, 0, fmt.Errorf("sqlite: create directory of %s: %w", path, err)
	}
	if lock, err = lockFile(path); err != nil {
		return nil, nil, 0, fmt.Errorf("sqlite: %w", err)
	}
	defer func() {
		if err != nil {
			if w != nil {
				w.Close()
			}
			unlock(lock)
		}
	}()

	dsn, err := dsn(path,
		"_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()),
		"_journal_mode", "WAL",
		"_synchronous", synchronous,
		"_foreign_keys", "1",
		"_txlock", "immediate",
		"_pragma", "cache_size(-32000)",
		// Multi-row statements inside a transaction keep a statement
		// journal, to undo just the statement should it fail. It is
		// needed for no recovery after a crash (the WAL is), so it may
		// live in memory: on disk it cost a pwrite per page, the largest
		// share of the writer's system calls.
		"_pragma", "temp_store(MEMORY)",
	)
	if err != nil {
		return nil, nil, 0, err
	}
	if w, err = sql.Open("sqlite", dsn); err != nil {
		return nil, nil, 0, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	// Setting journal_mode fails silently where WAL is impossible (some
	// network file systems); readers would then block the writer.
	var mode string
	if err := w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return nil, nil, 0, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, nil, 0, fmt.Errorf("sqlite: %s: journal mode is %q, WAL is required", path, mode)
	}
	if applied, err = migrate(ctx, w, progress); err != nil {
		return nil, nil, 0, fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}
	return w, lock, applied, nil
}

// dsn is the driver's name for path with the given query parameters. The
// path goes in a file: URI, escaped, so that a '?' or '#' in it is a file
// name character and not the start of the parameters.
func dsn(path string, params ...string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("sqlite: %s: %w", path, err)
	}
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		q.Add(params[i], params[i+1])
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String(), nil
}

//go:embed migrations/*.sql
var migrations embed.FS

// migrate applies, in name order, each embedded migration not yet recorded
// in schema_migrations, one transaction per migration.
func migrate(ctx context.Context, w *sql.DB, progress []func(Migration)) (int, error) {
	if _, err := w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name       TEXT PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return 0, err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return 0, err
	}
	sort.Strings(names)

	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[filepath.Base(n)] = true
	}
	rows, err := w.QueryContext(ctx, `SELECT name FROM schema_migrations`)
	if err != nil {
		return 0, err
	}
	done := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return 0, err
		}
		done[n] = true
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	// An older binary must not run on a schema it does not know: it would
	// write rows that miss what the newer code relies on.
	for n := range done {
		if !known[n] {
			return 0, fmt.Errorf("the database has migration %s, unknown to this hookd %s: upgrade hookd", n, hookd.Version)
		}
	}

	applied := 0
	for _, path := range names {
		name := filepath.Base(path)
		if done[name] {
			continue
		}
		script, err := migrations.ReadFile(path)
		if err != nil {
			return applied, err
		}
		start := time.Now()
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return applied, err
		}
		if _, err := tx.ExecContext(ctx, string(script)); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("%s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`, name, time.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("%s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return applied, fmt.Errorf("%s: %w", name, err)
		}
		applied++
		m := parseMigration(name)
		m.Duration = time.Since(start)
		for _, p := range progress {
			p(m)
		}
	}
	return applied, nil
}

// parseMigration reads a migration's version and name from its file name,
// "0003_deliveries_webhook_due.sql".
func parseMigration(file string) Migration {
	base := strings.TrimSuffix(file, ".sql")
	num, name, _ := strings.Cut(base, "_")
	v, _ := strconv.Atoi(num)
	return Migration{Version: v, Name: name}
}

func latestVersion(fsys fs.FS) int {
	names, _ := fs.Glob(fsys, "migrations/*.sql")
	latest := 0
	for _, n := range names {
		latest = max(latest, parseMigration(filepath.Base(n)).Version)
	}
	return latest
}

// Close closes the database and releases the file lock. It is idempotent.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		var errs []error
		if db.nextDue != nil {
			errs = append(errs, db.nextDue.Close())
		}
		if db.r != nil {
			errs = append(errs, db.r.Close())
		}
		for _, s := range db.stmts {
			errs = append(errs, s.Close())
		}
		// The writer closes last: the last connection to close checkpoints
		// the WAL into the database file.
		errs = append(errs, db.w.Close(), unlock(db.lock))
		if err := errors.Join(errs...); err != nil {
			db.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return db.closeErr
}

// Ping checks that the database answers a query that reads the file.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// write runs fn in one write transaction (BEGIN IMMEDIATE, so it holds the
// write lock from its first statement and never has to be retried) and
// commits it when fn returns nil. Errors other than *hookd.Error are
// wrapped with op.
func (db *DB) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: begin: %w", op, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return wrap(op, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: commit: %w", op, err)
	}
	return nil
}

// hotQueries are prepared once, at Open.
var hotQueries = slices.Concat(
	[]string{findEventQuery, partnerQuery, receiversQuery},
	insertEventQueries[:], insertDeliveryQueries[:],
	[]string{leasedQuery, walkQuery, readOnQuery}, firstReadQueries[:],
	[]string{leaseQuery, targetsQuery, jobEventsQuery},
	logAttemptQueries[:], settleQueries[:],
	[]string{releaseQuery, addCountQuery, healthQuery, saveHealthQuery},
	[]string{savepointQuery, rollbackToQuery, releaseSavepointQuery},
)

// stmt returns query as a statement of tx: the one prepared at Open when
// query is one of hotQueries, else a statement prepared for tx alone.
// Either way it is closed with tx.
func (db *DB) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if s, ok := db.stmts[query]; ok {
		return tx.StmtContext(ctx, s), nil
	}
	return tx.PrepareContext(ctx, query)
}

// read runs fn in one read transaction, so that its queries see one
// snapshot.
func (db *DB) read(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: %s: begin: %w", op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return wrap(op, err)
	}
	return nil
}

// wrap adds the operation's name to internal errors and returns hookd
// errors as they are.
func wrap(op string, err error) error {
	var herr *hookd.Error
	if err == nil || errors.As(err, &herr) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// isConstraint reports whether err is the violation of a constraint of the
// given extended result code (sqlite3.SQLITE_CONSTRAINT_UNIQUE, …).
func isConstraint(err error, code int) bool {
	var serr interface{ Code() int }
	return errors.As(err, &serr) && serr.Code() == code
}

// SQLite's extended result codes of the constraints the store maps to
// hookd errors.
const (
	uniqueViolation     = sqlite3.SQLITE_CONSTRAINT_UNIQUE
	primaryKeyViolation = sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
)

// now is the store's clock, truncated to what the database keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// millis is how times are stored: INTEGER unix milliseconds.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis turns a stored time back into a UTC time.Time equal to the one
// that was written.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// nullMillis stores a zero time as NULL.
func nullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// timePtr reads a nullable stored time.
func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMillis(v.Int64)
	return &t
}

// pageLimit is p.Limit clamped to 1–200, the default when unset.
func pageLimit(p hookd.Page) int {
	switch {
	case p.Limit <= 0:
		return hookd.DefaultPageLimit
	case p.Limit > hookd.MaxPageLimit:
		return hookd.MaxPageLimit
	}
	return p.Limit
}

// msDuration reads a duration stored in whole milliseconds.
func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
