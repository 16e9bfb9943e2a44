package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/postgres"
	"github.com/hookd-dev/hookd/sqlite"
)

// migrate prints one line per migration as it applies it, then the
// version the schema is at; run again, it says there was nothing to do.
func TestMigrate_SQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	testMigrate(t, "sqlite:"+path, path, sqlite.LatestVersion())
}

func TestMigrate_Postgres(t *testing.T) {
	base := os.Getenv("HOOKD_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("HOOKD_TEST_POSTGRES_URL is not set; e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	// A fresh schema, named in the URL's search_path, is an empty store.
	schema := "migrate_" + strings.ToLower(hookd.NewID(""))
	conn, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	testMigrate(t, u.String(), "PostgreSQL", postgres.LatestVersion())
}

func testMigrate(t *testing.T, database, where string, latest int) {
	t.Helper()
	migrate := func() string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"migrate", "--database", database}, stdio{strings.NewReader(""), &out, &errb}); code != 0 {
			t.Fatalf("migrate: exit %d: %s", code, errb.String())
		}
		return out.String()
	}

	lines := strings.Split(strings.TrimSpace(migrate()), "\n")
	applied := lines[:len(lines)-1]
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(where) + `: applied version (\d+) \([a-z0-9_]+\) in \d+(\.\d+)?[mµn]?s$`)
	version := 0
	for _, line := range applied {
		m := re.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %q does not match %s", line, re)
		}
		v, _ := strconv.Atoi(m[1])
		if v <= version {
			t.Fatalf("version %d applied after %d:\n%s", v, version, strings.Join(lines, "\n"))
		}
		version = v
	}
	if len(applied) < 2 || version != latest {
		t.Fatalf("first run applied up to version %d in %d lines, want every migration up to %d:\n%s", version, len(applied), latest, strings.Join(lines, "\n"))
	}
	if want := fmt.Sprintf("%s: schema is up to date at version %d (%d migration(s) applied)", where, latest, len(applied)); lines[len(lines)-1] != want {
		t.Fatalf("summary = %q, want %q", lines[len(lines)-1], want)
	}
	if got, want := strings.TrimSpace(migrate()), fmt.Sprintf("%s: already up to date at version %d", where, latest); got != want {
		t.Fatalf("second run = %q, want %q", got, want)
	}
}

// A bad store address is an error naming --database.
func TestMigrate_ErrDatabase(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "--database", "mysql://x"}, stdio{strings.NewReader(""), &out, &errb}); code == 0 || !strings.Contains(errb.String(), "--database") {
		t.Fatalf("bad database: exit %d, %q", code, errb.String())
	}
}
