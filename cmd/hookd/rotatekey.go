package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/hookd-dev/hookd/seal"
)

// resealer is a store that can move its webhook secrets to a new key.
type resealer interface {
	ResealSecrets(ctx context.Context, next *seal.Key) (int, error)
	Close() error
}

func runRotateKey(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("rotate-key", flag.ContinueOnError)
	fs.SetOutput(io.err)
	cfg := DefaultConfig()
	var next string
	fs.StringVar(&cfg.Database, "database", cfg.Database, "store: sqlite:PATH or a postgres:// URL (env HOOKD_DATABASE)")
	fs.StringVar(&cfg.SecretKey, "secret-key", "", "the key the secrets are sealed under now (env HOOKD_SECRET_KEY)")
	fs.StringVar(&next, "new-secret-key", "", "the key to seal them under: 32 bytes, base64 (env HOOKD_NEW_SECRET_KEY)")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: hookd rotate-key --secret-key OLD --new-secret-key NEW [--database URL]\n\nRe-encrypts every webhook secret under a new --secret-key, in one transaction.\nStop every hookd serve on the store first, then start them with the new key.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, dst := range map[string]*string{"database": &cfg.Database, "secret-key": &cfg.SecretKey, "new-secret-key": &next} {
		if v := os.Getenv(envName(name)); v != "" && !given[name] {
			*dst = v
		}
	}
	if cfg.SecretKey == "" {
		return fmt.Errorf("--secret-key (HOOKD_SECRET_KEY) is required: the key the secrets are sealed under now")
	}
	newKey, err := seal.ParseKey(next)
	if err != nil {
		return fmt.Errorf("--new-secret-key (HOOKD_NEW_SECRET_KEY) must be 32 bytes in base64, e.g. from `openssl rand -base64 32`")
	}
	if next == cfg.SecretKey {
		return fmt.Errorf("--new-secret-key is the same as --secret-key: nothing to rotate")
	}
	cfg.Dev = true // validate only the store's address and the old key
	if err := cfg.Validate(); err != nil {
		return err
	}
	st, err := openStore(ctx, &cfg, newLogger(cfg, io.err))
	if err != nil {
		return err
	}
	defer st.Close()
	r, ok := st.(resealer)
	if !ok {
		return fmt.Errorf("--database: this store cannot re-seal secrets")
	}
	n, err := r.ResealSecrets(ctx, newKey)
	if err != nil {
		return fmt.Errorf("nothing changed: %v (is --secret-key the key the store was written with?)", err)
	}
	fmt.Fprintf(io.out, "%d webhook secret(s) re-sealed under the new key; start hookd with --secret-key set to it\n", n)
	return nil
}
