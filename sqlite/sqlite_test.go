package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/storetest"
)

var _ storetest.Store = (*DB)(nil)

func testKey(t testing.TB) *seal.Key {
	t.Helper()
	k, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openAt opens the database at path and closes it when the test ends.
func openAt(t testing.TB, path string, key *seal.Key) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{Path: path, Key: key})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rawStore lets the conformance suite see secrets as stored.
type rawStore struct{ *DB }

func (s rawStore) RawWebhookSecret(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := s.r.QueryRowContext(ctx, `SELECT CAST(secret_sealed AS BLOB) FROM webhooks WHERE id = ?`, id).Scan(&b)
	return b, err
}

func TestConformance(t *testing.T) {
	key := testKey(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return rawStore{openAt(t, filepath.Join(t.TempDir(), "hookd.db"), key)}
	})
}

func TestConformance_HealthPolicies(t *testing.T) {
	key := testKey(t)
	storetest.RunHealthPolicies(t, func(t *testing.T, p hookd.HealthPolicy) storetest.Store {
		db, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Key: key, Health: &p})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return db
	})
}

// TestConformance_MergeOnly runs the suite with claims that always merge
// the webhooks' deliveries, as they do when some webhook at its cap has a
// backlog: most of the suite's claims would otherwise walk.
func TestConformance_MergeOnly(t *testing.T) {
	key := testKey(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		db := openAt(t, filepath.Join(t.TempDir(), "hookd.db"), key)
		db.schedule.mergeOnly = true
		return rawStore{db}
	})
}

func TestOpen_Reopen(t *testing.T) {
	ctx, key := t.Context(), testKey(t)
	path := filepath.Join(t.TempDir(), "nested", "dir", "hookd.db") // the directory is created
	db := openAt(t, path, key)
	o := &hookd.Organization{Name: "Kept"}
	if err := db.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	db = openAt(t, path, key)
	got, err := db.FindOrganization(ctx, o.ID)
	if err != nil || got.Name != "Kept" {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
}

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hookd.db")
	all, _ := fs.Glob(migrations, "migrations/*.sql")
	n, err := Migrate(ctx, path)
	if err != nil || n != len(all) || n < 2 {
		t.Fatalf("Migrate on a new database = %d, %v; want all %d migrations applied", n, err, len(all))
	}
	if n, err = Migrate(ctx, path); err != nil || n != 0 {
		t.Fatalf("Migrate again = %d, %v; want 0", n, err)
	}
	db := openAt(t, path, testKey(t))
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestMigrate_NewerSchemaRefused(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := openAt(t, path, testKey(t))
	if _, err := db.w.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Migrate(ctx, path); err == nil || !strings.Contains(err.Error(), "9999_future.sql") {
		t.Fatalf("Migrate on a newer schema: %v, want it refused", err)
	}
}

func TestOpen_ExclusiveLock(t *testing.T) {
	ctx, key := t.Context(), testKey(t)
	path := filepath.Join(t.TempDir(), "hookd.db")
	first := openAt(t, path, key)
	_, err := Open(ctx, Config{Path: path, Key: key})
	if err == nil || !strings.Contains(err.Error(), "in use by another hookd process") {
		t.Fatalf("second Open: %v, want it refused as in use", err)
	}
	if _, err := Migrate(ctx, path); err == nil {
		t.Fatal("Migrate while the database is open succeeded")
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openAt(t, path, key)
}

func TestOpen_ClearsLeases(t *testing.T) {
	ctx, key := t.Context(), testKey(t)
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := openAt(t, path, key)
	o := &hookd.Organization{Name: "o"}
	if err := db.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	w := &hookd.Webhook{OrganizationID: o.ID, Name: "w", URL: "https://x.example.com", Events: []string{hookd.EventScanStarted}, Active: true}
	if err := db.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PublishEvents(ctx, []*hookd.Event{{OrganizationID: o.ID, Type: hookd.EventScanStarted, Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	jobs, err := db.ClaimDeliveries(ctx, now, now.Add(time.Hour), 10, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v, %v", jobs, err)
	}
	db.Close() // as if the process died with the attempt in flight

	db = openAt(t, path, key)
	again, err := db.ClaimDeliveries(ctx, time.Now(), time.Now().Add(time.Minute), 10, 10)
	if err != nil || len(again) != 1 || again[0].DeliveryID != jobs[0].DeliveryID {
		t.Fatalf("claim after reopening: %v, %v; want the delivery that was in flight", again, err)
	}
}

func TestOpen_Pragmas(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		synchronous string
		want        int
	}{{"", 1}, {"normal", 1}, {"FULL", 2}} {
		path := filepath.Join(t.TempDir(), "hookd.db")
		db, err := Open(ctx, Config{Path: path, Key: testKey(t), Synchronous: tc.synchronous})
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		var fk, sync, queryOnly int
		if err := db.r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
		}
		if err := db.w.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
		}
		if err := db.w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != tc.want {
			t.Fatalf("Synchronous %q: synchronous = %d, %v; want %d", tc.synchronous, sync, err, tc.want)
		}
		var tempStore int
		if err := db.w.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&tempStore); err != nil || tempStore != 2 {
			t.Fatalf("temp_store = %d, %v; want 2 (MEMORY)", tempStore, err)
		}
		if err := db.r.QueryRowContext(ctx, `PRAGMA query_only`).Scan(&queryOnly); err != nil || queryOnly != 1 {
			t.Fatalf("read pool query_only = %d, %v; want 1", queryOnly, err)
		}
		db.Close()
	}
}

func TestOpen_BadConfig(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	if _, err := Open(ctx, Config{Path: filepath.Join(dir, "a.db")}); err == nil {
		t.Fatal("Open without a key succeeded")
	}
	if _, err := Open(ctx, Config{Path: filepath.Join(dir, "b.db"), Key: testKey(t), Synchronous: "OFF"}); err == nil {
		t.Fatal("Open with synchronous OFF succeeded")
	}
}

func TestOpen_OddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "my data?#%20", "hookd.db")
	db := openAt(t, path, testKey(t))
	if err := db.CreateOrganization(t.Context(), &hookd.Organization{Name: "o"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not where asked: %v", err)
	}
}

func TestSecrets_NotInFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := openAt(t, filepath.Join(dir, "hookd.db"), testKey(t))
	o := &hookd.Organization{Name: "o"}
	if err := db.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	const secret = "needle-secret-0123456789"
	w := &hookd.Webhook{OrganizationID: o.ID, Name: "w", URL: "https://x.example.com", Events: []string{hookd.EventScanStarted}, Secret: secret, Active: true}
	if err := db.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	// Read the files only once the database is closed: closing another
	// descriptor of a file SQLite has open drops its POSIX locks.
	db.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "hookd.db*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("%s holds the secret in clear", f)
		}
	}
}

func TestSecrets_WrongKey(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := openAt(t, path, testKey(t))
	o := &hookd.Organization{Name: "o"}
	if err := db.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	w := &hookd.Webhook{OrganizationID: o.ID, Name: "w", URL: "https://x.example.com", Events: []string{hookd.EventScanStarted}, Secret: "s", Active: true}
	if err := db.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openAt(t, path, testKey(t))
	_, err := db.FindWebhook(ctx, o.ID, w.ID)
	if hookd.ErrorCode(err) != hookd.EINTERNAL || !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("FindWebhook under another key: %v, want an internal error wrapping seal.ErrOpen", err)
	}
}

// TestOpen_AfterKill kills (SIGKILL) a process that holds the database with
// a delivery in flight: while it lives, nobody else may open the file; once
// it is dead, the next Open works at once and the delivery is claimable
// again without waiting for its lease.
func TestOpen_AfterKill(t *testing.T) {
	const childEnv = "HOOKD_SQLITE_TEST_CHILD"
	if path := os.Getenv(childEnv); path != "" {
		runChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("starts a process")
	}
	ctx, key := t.Context(), seal.GenerateKey()
	path := filepath.Join(t.TempDir(), "hookd.db")
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestOpen_AfterKill$")
	cmd.Env = append(os.Environ(), childEnv+"="+path, "HOOKD_SQLITE_TEST_KEY="+key)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "claimed ") {
		cmd.Process.Kill()
		t.Fatalf("child: %q, %v", line, err)
	}
	inFlight := strings.TrimSpace(strings.TrimPrefix(line, "claimed "))

	k, _ := seal.ParseKey(key)
	if _, err := Open(ctx, Config{Path: path, Key: k}); err == nil || !strings.Contains(err.Error(), "in use by another hookd process") {
		cmd.Process.Kill()
		t.Fatalf("Open while another process holds the database: %v, want refused", err)
	}
	cmd.Process.Kill()
	cmd.Wait()

	db := openAt(t, path, k)
	jobs, err := db.ClaimDeliveries(ctx, time.Now(), time.Now().Add(time.Minute), 10, 10)
	if err != nil || len(jobs) != 1 || jobs[0].DeliveryID != inFlight {
		t.Fatalf("claim after the kill: %v, %v; want the delivery %s that was in flight", jobs, err, inFlight)
	}
}

// runChild opens the database, claims a delivery for an hour, says which
// and waits to be killed.
func runChild(t *testing.T, path string) {
	ctx := context.Background()
	key, err := seal.ParseKey(os.Getenv("HOOKD_SQLITE_TEST_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, Config{Path: path, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	o := &hookd.Organization{Name: "o"}
	if err := db.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	w := &hookd.Webhook{OrganizationID: o.ID, Name: "w", URL: "https://x.example.com", Events: []string{hookd.EventScanStarted}, Active: true}
	if err := db.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PublishEvents(ctx, []*hookd.Event{{OrganizationID: o.ID, Type: hookd.EventScanStarted, Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	jobs, err := db.ClaimDeliveries(ctx, time.Now(), time.Now().Add(time.Hour), 1, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v, %v", jobs, err)
	}
	fmt.Printf("claimed %s\n", jobs[0].DeliveryID)
	time.Sleep(time.Minute) // killed long before
}
