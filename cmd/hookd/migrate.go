package main

import (
	"context"
	"flag"
	"fmt"
	"os"

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
	switch cfg.storeKind {
	case "sqlite":
		n, err := sqlite.Migrate(ctx, cfg.storePath)
		if err != nil {
			return fmt.Errorf("--database (HOOKD_DATABASE): %v", err)
		}
		fmt.Fprintf(io.out, "%s: %d migration(s) applied; schema is up to date\n", cfg.storePath, n)
		return nil
	default:
		n, err := postgres.Migrate(ctx, cfg.Database)
		if err != nil {
			return fmt.Errorf("--database (HOOKD_DATABASE): %v", err)
		}
		fmt.Fprintf(io.out, "PostgreSQL: %d migration(s) applied; schema is up to date\n", n)
		return nil
	}
}
