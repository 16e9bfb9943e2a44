package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/storetest"
	"github.com/jackc/pgx/v5"
)

var _ storetest.Store = (*DB)(nil)

// testURL is the database the tests use, from HOOKD_TEST_POSTGRES_URL; the
// test is skipped without it.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("HOOKD_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("HOOKD_TEST_POSTGRES_URL not set: skipping PostgreSQL store tests")
	}
	return u
}

func testKey(t testing.TB) *seal.Key {
	t.Helper()
	k, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// freshSchema returns the name of a schema no test has used, dropped with
// everything in it when the test ends. Open creates it.
func freshSchema(t testing.TB, dbURL string) string {
	t.Helper()
	name := "hookd_test_" + strings.ToLower(rand.Text()[:16])
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// openSchema opens the store on schema and closes it when the test ends.
func openSchema(t testing.TB, dbURL, schema string, key *seal.Key) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{URL: dbURL, Key: key, Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openFresh opens the store on a fresh schema.
func openFresh(t testing.TB) *DB {
	t.Helper()
	u := testURL(t)
	return openSchema(t, u, freshSchema(t, u), testKey(t))
}

// withParam returns dbURL with a query parameter set; pgx passes unknown
// ones to the server as run-time parameters (search_path, application_name).
func withParam(t testing.TB, dbURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("HOOKD_TEST_POSTGRES_URL must be a postgres:// URL for this test: %v", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// rawStore lets the conformance suite see secrets as stored.
type rawStore struct{ *DB }

func (s rawStore) RawWebhookSecret(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT convert_to(secret_sealed, 'UTF8') FROM webhooks WHERE id = $1`, id).Scan(&b)
	return b, err
}

func TestConformance(t *testing.T) {
	u, key := testURL(t), testKey(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return rawStore{openSchema(t, u, freshSchema(t, u), key)}
	})
}

func TestConformance_HealthPolicies(t *testing.T) {
	u, key := testURL(t), testKey(t)
	storetest.RunHealthPolicies(t, func(t *testing.T, p hookd.HealthPolicy) storetest.Store {
		db, err := Open(t.Context(), Config{URL: u, Key: key, Schema: freshSchema(t, u), Health: &p})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return db
	})
}

func TestOpen_Reopen(t *testing.T) {
	u, key := testURL(t), testKey(t)
	schema := freshSchema(t, u)
	db := openSchema(t, u, schema, key)
	o := &hookd.Organization{Name: "Kept"}
	if err := db.CreateOrganization(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	db = openSchema(t, u, schema, key)
	got, err := db.FindOrganization(t.Context(), o.ID)
	if err != nil || got.Name != "Kept" {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
}

func TestOpen_BadConfig(t *testing.T) {
	u := testURL(t)
	ctx := t.Context()
	if _, err := Open(ctx, Config{URL: u}); err == nil {
		t.Fatal("Open without a key succeeded")
	}
	if _, err := Open(ctx, Config{Key: testKey(t)}); err == nil {
		t.Fatal("Open without a URL succeeded")
	}
	if _, err := Open(ctx, Config{URL: "postgres://nobody:secret-pw@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", Key: testKey(t)}); err == nil {
		t.Fatal("Open on a closed port succeeded")
	} else if strings.Contains(err.Error(), "secret-pw") {
		t.Fatalf("the error shows the password: %v", err)
	}
}

func TestMigrate(t *testing.T) {
	u := testURL(t)
	ctx := t.Context()
	schema := freshSchema(t, u)
	createSchema(t, u, schema)
	schemaURL := withParam(t, u, "search_path", schema)

	n, err := Migrate(ctx, schemaURL)
	if err != nil || n < 1 {
		t.Fatalf("Migrate on an empty schema = %d, %v; want every migration applied", n, err)
	}
	if n, err = Migrate(ctx, schemaURL); err != nil || n != 0 {
		t.Fatalf("Migrate again = %d, %v; want 0", n, err)
	}
	db := openSchema(t, u, schema, testKey(t))
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// Each migration is recorded once; Open found nothing to do.
	all, _ := migrations.ReadDir("migrations")
	var rows int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != len(all) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", rows, err, len(all))
	}
}

func createSchema(t testing.TB, dbURL, schema string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
}

func TestMigrate_Concurrent(t *testing.T) {
	u, key := testURL(t), testKey(t)
	ctx := t.Context()
	schema := freshSchema(t, u)
	schemaURL := withParam(t, u, "search_path", schema)

	// Six processes starting together on an empty database: three Open
	// (which also creates the schema) and three hookd migrate.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied int
		errs    []error
	)
	for i := range 6 {
		wg.Go(func() {
			if i%2 == 0 {
				db, err := Open(ctx, Config{URL: u, Key: key, Schema: schema})
				if err == nil {
					db.Close()
				}
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			// Migrate needs the schema to exist: wait until an Open made it.
			for {
				n, err := Migrate(ctx, schemaURL)
				if err != nil && strings.Contains(err.Error(), "no schema has been selected") && ctx.Err() == nil {
					continue
				}
				mu.Lock()
				applied += n
				errs = append(errs, err)
				mu.Unlock()
				return
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Open and Migrate: %v", err)
	}
	db := openSchema(t, u, schema, key)
	var names []string
	rows, _ := db.pool.Query(ctx, `SELECT name FROM schema_migrations ORDER BY name`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	all, _ := migrations.ReadDir("migrations")
	if len(names) != len(all) {
		t.Fatalf("schema_migrations = %v, want each of the %d migrations once", names, len(all))
	}
	if applied > len(all) {
		t.Fatalf("Migrate calls applied %d migrations in all, more than the %d there are", applied, len(all))
	}
	if n, err := Migrate(ctx, schemaURL); err != nil || n != 0 {
		t.Fatalf("Migrate afterwards = %d, %v; want 0", n, err)
	}
}

func TestMigrate_NewerSchemaRefused(t *testing.T) {
	u, key := testURL(t), testKey(t)
	ctx := t.Context()
	schema := freshSchema(t, u)
	db := openSchema(t, u, schema, key)
	if _, err := db.pool.Exec(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_future.sql', now())`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Migrate(ctx, withParam(t, u, "search_path", schema)); err == nil || !strings.Contains(err.Error(), "9999_future.sql") {
		t.Fatalf("Migrate on a newer schema: %v, want it refused", err)
	}
	if _, err := Open(ctx, Config{URL: u, Key: key, Schema: schema}); err == nil || !strings.Contains(err.Error(), "9999_future.sql") {
		t.Fatalf("Open on a newer schema: %v, want it refused", err)
	}
}

func TestSecrets_WrongKey(t *testing.T) {
	u := testURL(t)
	ctx := t.Context()
	schema := freshSchema(t, u)
	db := openSchema(t, u, schema, testKey(t))
	o := &hookd.Organization{Name: "o"}
	if err := db.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	w := &hookd.Webhook{OrganizationID: o.ID, Name: "w", URL: "https://x.example.com", Events: []string{hookd.EventScanStarted}, Secret: "s", Active: true}
	if err := db.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	other := openSchema(t, u, schema, testKey(t))
	_, err := other.FindWebhook(ctx, o.ID, w.ID)
	if hookd.ErrorCode(err) != hookd.EINTERNAL || !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("FindWebhook under another key: %v, want an internal error wrapping seal.ErrOpen", err)
	}
}
