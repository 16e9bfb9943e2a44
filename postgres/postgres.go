// Package postgres is hookd's PostgreSQL store, for one or many hookd
// processes sharing one database, through pgx.
//
// The deliveries table is the queue. Any number of processes claim from it
// at once: a claim locks the rows it takes with SKIP LOCKED, so two claims
// never wait for each other nor take the same row, and sets a lease on
// them; a process that dies leaves leases that expire, and its deliveries
// are claimed again by whoever comes next. The per-webhook cap holds
// across processes: a claim takes a transaction-scoped advisory lock per
// webhook before counting that webhook's leases (see ClaimDeliveries).
//
// Writes that make deliveries due (PublishEvents, CreatePing, Redeliver)
// send a NOTIFY on the channel hookd_deliveries when they commit; Listen
// turns those into wake-ups for an idle dispatcher.
//
// Throughput comes from batching: PublishEvents, ClaimDeliveries and
// CompleteAttempts each take a whole batch in a few statements of one
// transaction, whatever its size.
//
// It needs PostgreSQL 13 or later (gen_random_uuid is built in from 13).
// Its connections run with the settings of plannerSettings.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/seal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is what Open needs.
type Config struct {
	// URL is a PostgreSQL connection URL or key=value string, as pgx reads
	// it: postgres://user:password@host:5432/database?sslmode=verify-full.
	URL string
	// Key seals webhook secrets on write and opens them on read. Required.
	Key *seal.Key
	// Schema, when set, is created if missing and used as the search_path
	// of every connection, so that several stores (tests, mostly) can
	// share one database. Empty: the URL's own search_path.
	Schema string
	// MaxConns bounds the connection pool; 0 means pgx's default, the
	// greater of 4 and the number of CPUs. Listen uses one more connection.
	MaxConns int32
	// Logger receives what the store cannot return to a caller: Listen's
	// lost connections, webhooks disabled automatically. Nil discards it.
	Logger *slog.Logger
	// Health says when CompleteAttempts disables a failing webhook. Nil
	// means hookd.DefaultHealthPolicy(); a policy whose fields are zero
	// never disables one.
	Health *hookd.HealthPolicy
	// MaxWebhooksPerOrganization is how many webhooks one organization may
	// have; 0 means hookd.MaxWebhooksPerOrganization (SPEC §3's 100).
	MaxWebhooksPerOrganization int
}

// DB is an open store. It satisfies the whole store contract
// (storetest.Store) and is safe for concurrent use, by any number of
// processes on the same database.
type DB struct {
	pool   *pgxpool.Pool
	key    *seal.Key
	listen *pgx.ConnConfig // the template of Listen's dedicated connection
	log    *slog.Logger
	health hookd.HealthPolicy

	maxWebhooks int // per organization; Config.MaxWebhooksPerOrganization

	closed    chan struct{} // closed by Close: stops Listen
	closeOnce sync.Once
}

// Open connects to the database, brings its schema up to date (one
// process at a time, however many start together) and returns the store.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Key == nil {
		return nil, errors.New("postgres: Config.Key is required to seal webhook secrets")
	}
	if cfg.URL == "" {
		return nil, errors.New("postgres: database URL is required")
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // pgx leaves the password out of this error
	}
	if cfg.Schema != "" {
		pcfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{cfg.Schema}.Sanitize()
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	for name, value := range plannerSettings() {
		if _, ok := pcfg.ConnConfig.RuntimeParams[name]; !ok { // the URL's own settings win
			pcfg.ConnConfig.RuntimeParams[name] = value
		}
	}

	conn, err := pgx.ConnectConfig(ctx, pcfg.ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	_, err = migrate(ctx, conn, cfg.Schema)
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}

	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	health := hookd.DefaultHealthPolicy()
	if cfg.Health != nil {
		health = *cfg.Health
	}
	return &DB{pool: pool, key: cfg.Key, listen: pcfg.ConnConfig.Copy(), log: log, health: health, closed: make(chan struct{}),
		maxWebhooks: cmp.Or(cfg.MaxWebhooksPerOrganization, hookd.MaxWebhooksPerOrganization)}, nil
}

// plannerSettings returns the session settings of the store's connections.
//
// Every query of the store is written to walk an index, and on the
// deliveries table, rewritten all day, that is the only right plan; but
// its statistics are often out of date (or absent, the first minute of a
// new database), and the planner then prefers sorting the whole backlog
// (a bitmap scan) or reading the whole table, which get slower as the
// table grows. A bitmap scan also never marks the index entries of dead
// rows as dead, so every claim would read again the entries every
// earlier claim left in the leases' index. Hence no sequential or bitmap
// scans unless nothing else is possible. And since after five runs
// PostgreSQL may switch a prepared statement (pgx prepares them all) to a
// generic plan that ignores the parameters' values, such as the "now" of a
// claim, each run is planned anew, which costs a fraction of a
// millisecond. JIT compilation, which only pays for long queries, is off:
// it would take tens of milliseconds from a claim. A setting given in the
// URL wins.
func plannerSettings() map[string]string {
	return map[string]string{
		"enable_seqscan":    "off",
		"enable_bitmapscan": "off",
		"plan_cache_mode":   "force_custom_plan",
		"jit":               "off",
	}
}

// Migration is one schema migration, as Migrate reports it once applied.
type Migration struct {
	Version  int    // the number its file name starts with
	Name     string // the file name without the number and ".sql"
	Duration time.Duration
}

// LatestVersion is the version of the newest migration this hookd knows:
// the schema's version once Migrate or Open has run.
func LatestVersion() int {
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	latest := 0
	for _, n := range names {
		latest = max(latest, parseMigration(path.Base(n)).Version)
	}
	return latest
}

// parseMigration reads a migration's version and name from its file name,
// "0002_sessions.sql".
func parseMigration(file string) Migration {
	num, name, _ := strings.Cut(strings.TrimSuffix(file, ".sql"), "_")
	v, _ := strconv.Atoi(num)
	return Migration{Version: v, Name: name}
}

// Migrate brings the schema of the database at url up to date, the way
// Open does, and returns how many migrations it applied (0 when the schema
// was current), calling each progress function after each migration it
// applies. It is safe to run while hookd processes use the database, and
// concurrently with itself.
func Migrate(ctx context.Context, url string, progress ...func(Migration)) (applied int, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	applied, err = migrate(ctx, conn, "", progress...)
	if err != nil {
		return applied, fmt.Errorf("postgres: migrate: %w", err)
	}
	return applied, nil
}

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock classes: the first key of the two-key form of
// pg_advisory_xact_lock, so that hookd's locks stay apart from each other
// (and, as far as one can tell, from other applications' locks).
const (
	lockMigrate int32 = 0x686b6d00 // "hkm": the second key is a hash of the schema
	lockClaim   int32 = 0x686b6300 // "hkc": the second key is a hash of the webhook id
	lockPrune   int32 = 0x686b7000 // "hkp": the second key is 0
)

// lockSchema serializes migrations of one schema across every process:
// CREATE ... IF NOT EXISTS is not safe against itself, and two processes
// must not both apply the same migration. The lock is released when the
// transaction ends.
const lockSchema = `SELECT pg_advisory_xact_lock($1, hashtext(coalesce(nullif($2, ''), current_schema(), '')))`

// migrate applies, in name order, each embedded migration not yet recorded
// in schema_migrations, one transaction per migration, each under the
// schema's advisory lock. schema, when not "", is created first.
func migrate(ctx context.Context, conn *pgx.Conn, schema string, progress ...func(Migration)) (int, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return 0, err
	}
	sort.Strings(names)
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[path.Base(n)] = true
	}

	done := map[string]bool{}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockSchema, lockMigrate, schema); err != nil {
			return err
		}
		if schema != "" {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			name       text PRIMARY KEY,
			applied_at timestamptz NOT NULL
		)`); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT name FROM schema_migrations`)
		applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range applied {
			done[n] = true
		}
		return err
	})
	if err != nil {
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
	for _, file := range names {
		name := path.Base(file)
		if done[name] {
			continue
		}
		script, err := migrations.ReadFile(file)
		if err != nil {
			return applied, err
		}
		ran, start := false, time.Now()
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, lockSchema, lockMigrate, schema); err != nil {
				return err
			}
			// Another process may have applied it while we waited for the lock.
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, name).Scan(&exists); err != nil || exists {
				return err
			}
			if _, err := tx.Exec(ctx, string(script)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ($1, now())`, name); err != nil {
				return err
			}
			ran = true
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("%s: %w", name, err)
		}
		if ran {
			applied++
			m := parseMigration(name)
			m.Duration = time.Since(start)
			for _, p := range progress {
				p(m)
			}
		}
	}
	return applied, nil
}

// Close closes every connection of the pool and stops Listen. It is
// idempotent.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.closed)
		db.pool.Close()
	})
	return nil
}

// Ping checks that the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// write runs fn in one transaction and commits it when fn returns nil.
// Errors other than *hookd.Error are wrapped with op.
func (db *DB) write(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %s: begin: %w", op, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return wrap(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: %s: commit: %w", op, err)
	}
	return nil
}

// read runs fn in one read-only, repeatable-read transaction, so that its
// queries see one snapshot.
func (db *DB) read(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: %s: begin: %w", op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
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
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// SQLSTATE codes the store turns into hookd errors.
const (
	uniqueViolation = "23505"
)

// isViolation reports whether err is the violation, with the given
// SQLSTATE, of the named constraint.
func isViolation(err error, code, constraint string) bool {
	var perr *pgconn.PgError
	return errors.As(err, &perr) && perr.Code == code && perr.ConstraintName == constraint
}

// now is the store's clock, truncated to what the contract keeps.
func now() time.Time { return ms(time.Now()) }

// ms is t in UTC truncated to milliseconds: how every time is written, so
// that what a method returns equals what later reads return.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// nullTime stores a zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = ms(t)
	return &t
}

// utcPtr reads a nullable time in UTC.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
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

// cutPage trims a list fetched with limit+1 rows to limit and returns the
// cursor of the next page: the last id kept, when there was one more row.
func cutPage[T any](list []T, limit int, id func(T) string) ([]T, string) {
	if len(list) <= limit {
		return list, ""
	}
	list = list[:limit]
	return list, id(list[limit-1])
}
