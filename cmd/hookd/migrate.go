package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hookd-dev/hookd/postgres"
	"github.com/hookd-dev/hookd/sqlite"
)

func runMigrate(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.err)
	cfg := DefaultConfig()
	fs.StringVar(&cfg.Database, "database", cfg.Database, "store: sqlite:PATH or a postgres:// URL (env HOOKD_DATABASE)")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: hookd migrate [--database URL]\n\nBrings the store's schema up to date and exits.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "database" })
	if v := os.Getenv("HOOKD_DATABASE"); v != "" && !given {
		cfg.Database = v
	}
	// Validate only what migrate uses: the store's address.
	cfg.Dev = true
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Each migration is printed as it is applied: on a large store one may
	// take a while, and the operator sees which.
	var (
		where  string
		latest int
		n      int
		err    error
	)
	switch cfg.storeKind {
	case "sqlite":
		where, latest = cfg.storePath, sqlite.LatestVersion()
		n, err = sqlite.Migrate(ctx, cfg.storePath, func(m sqlite.Migration) {
			printMigration(io, where, m.Version, m.Name, m.Duration)
		})
	default:
		where, latest = "PostgreSQL", postgres.LatestVersion()
		n, err = postgres.Migrate(ctx, cfg.Database, func(m postgres.Migration) {
			printMigration(io, where, m.Version, m.Name, m.Duration)
		})
	}
	if err != nil {
		return fmt.Errorf("--database (HOOKD_DATABASE): %v", err)
	}
	if n == 0 {
		fmt.Fprintf(io.out, "%s: already up to date at version %d\n", where, latest)
	} else {
		fmt.Fprintf(io.out, "%s: schema is up to date at version %d (%d migration(s) applied)\n", where, latest, n)
	}
	return nil
}

func printMigration(io stdio, where string, version int, name string, took time.Duration) {
	fmt.Fprintf(io.out, "%s: applied version %d (%s) in %s\n", where, version, name, took.Round(time.Millisecond))
}
