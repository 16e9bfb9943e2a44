package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/dispatch"
	"github.com/hookd-dev/hookd/retention"
	"github.com/hookd-dev/hookd/seal"
)

// Config is everything `hookd serve` can be told. Every field is a flag with
// an environment twin (HOOKD_ + the flag name in upper snake case); a flag
// given on the command line wins over its variable.
type Config struct {
	Listen          string
	Database        string
	AdminToken      string
	SecretKey       string
	RetrySchedule   string
	DeliveryTimeout time.Duration
	AllowHTTP       bool
	AllowPrivate    bool
	Role            string
	ValidateEvents  bool
	Dev             bool
	DataDir         string // --dev's directory

	Workers    int
	PerWebhook int
	// ReservedWorkers are kept for webhooks that answer promptly, however
	// many others hang; 0 means a quarter of Workers.
	ReservedWorkers int
	LeaseMargin     time.Duration
	ShutdownGrace   time.Duration
	LogFormat       string
	LogLevel        string
	Pprof           string // address of the profiling endpoints; "" = off

	// Retention is the age past which delivered deliveries, attempts and
	// events are pruned; 0 keeps everything.
	Retention         time.Duration
	RetentionInterval time.Duration

	// Request rate limits per credential (see web.Config): 0 = the
	// default, negative = off.
	RateLimit      float64
	RateBurst      int
	AdminRateLimit float64
	AdminRateBurst int
	// SQLiteSync is SQLite's synchronous setting: NORMAL survives a process
	// crash, FULL also a power loss, at the cost of an fsync per commit.
	SQLiteSync string
	// Endpoint health (hookd.HealthPolicy): a webhook is disabled after
	// this many failed deliveries in a row, or after failing for this
	// long; 0 turns a rule off.
	DisableAfterFailures int
	DisableAfter         time.Duration
	// MaxWebhooks is how many webhooks one organization may have: SPEC
	// §3's 100 unless the operator raises it.
	MaxWebhooks int

	// Derived by Validate.
	retry     []time.Duration
	sealKey   *seal.Key
	storeKind string // "sqlite" or "postgres"
	storePath string // the SQLite file
}

// health is the endpoint health policy of the settings.
func (c *Config) health() *hookd.HealthPolicy {
	return &hookd.HealthPolicy{MaxConsecutiveFailures: c.DisableAfterFailures, MaxFailingFor: c.DisableAfter}
}

// DefaultConfig returns SPEC §5's defaults.
func DefaultConfig() Config {
	return Config{
		Listen:          "127.0.0.1:8080",
		Database:        "sqlite:hookd-data/hookd.db",
		RetrySchedule:   dispatch.DefaultRetrySchedule,
		DeliveryTimeout: 10 * time.Second,
		Role:            "all",
		DataDir:         "hookd-data",
		Workers:         1024,
		PerWebhook:      16,
		LeaseMargin:     20 * time.Second,
		ShutdownGrace:   20 * time.Second,
		LogFormat:       "text",
		LogLevel:        "info",
		SQLiteSync:      "NORMAL",

		DisableAfterFailures: hookd.DefaultMaxConsecutiveFailures,
		DisableAfter:         hookd.DefaultMaxFailingFor,
		Retention:            retention.DefaultAge,
		RetentionInterval:    retention.DefaultInterval,
		MaxWebhooks:          hookd.MaxWebhooksPerOrganization,
	}
}

// flags binds c's fields to a FlagSet.
func (c *Config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to serve the API, the portal and the service endpoints on")
	fs.StringVar(&c.Database, "database", c.Database, "store: sqlite:PATH (embedded) or a postgres:// URL")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "bearer token of the platform (admin endpoints); required unless --dev")
	fs.StringVar(&c.SecretKey, "secret-key", c.SecretKey, "32 bytes, base64: encrypts webhook secrets at rest; required unless --dev")
	fs.StringVar(&c.RetrySchedule, "retry-schedule", c.RetrySchedule, "delays before each retry, increasing; its length is the number of retries")
	fs.DurationVar(&c.DeliveryTimeout, "delivery-timeout", c.DeliveryTimeout, "time a receiver has to answer one attempt")
	fs.BoolVar(&c.AllowHTTP, "allow-http", c.AllowHTTP, "accept http:// target URLs (default true with --dev)")
	fs.BoolVar(&c.AllowPrivate, "allow-private-targets", c.AllowPrivate, "allow loopback, private and other internal target addresses (default true with --dev)")
	fs.StringVar(&c.Role, "role", c.Role, "all, api (HTTP only) or worker (dispatcher only)")
	fs.BoolVar(&c.ValidateEvents, "validate-events", c.ValidateEvents, "check published data against the event type's JSON Schema")
	fs.BoolVar(&c.Dev, "dev", c.Dev, "first-try mode: embedded store in ./hookd-data, http:// and private targets allowed, demo organizations and credentials created and printed")
	fs.IntVar(&c.Workers, "workers", c.Workers, "attempts in flight at once in this process")
	fs.IntVar(&c.PerWebhook, "per-webhook-concurrency", c.PerWebhook, "attempts in flight at once to any one webhook")
	fs.IntVar(&c.ReservedWorkers, "reserved-workers", c.ReservedWorkers, "workers kept for webhooks that answer promptly, whatever the others do (0 = a quarter of --workers)")
	fs.DurationVar(&c.LeaseMargin, "lease-margin", c.LeaseMargin, "how long past the delivery timeout a dead process's claim holds its deliveries")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, "on SIGTERM, how long in-flight attempts may finish before they are handed back")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.SQLiteSync, "sqlite-synchronous", c.SQLiteSync, "embedded store only: NORMAL (an acknowledged event survives a process crash) or FULL (also a power loss; an fsync per commit)")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "requests/s allowed per organization API key (0 = default 100, negative = no limit); over it: 429 with Retry-After")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "burst allowed per API key above --rate-limit (0 = twice the rate)")
	fs.Float64Var(&c.AdminRateLimit, "admin-rate-limit", c.AdminRateLimit, "requests/s allowed for the admin token (0 = default 1000, negative = no limit)")
	fs.IntVar(&c.AdminRateBurst, "admin-rate-burst", c.AdminRateBurst, "burst allowed for the admin token (0 = twice the rate)")
	fs.IntVar(&c.DisableAfterFailures, "disable-after-failures", c.DisableAfterFailures, "disable a webhook automatically after this many failed deliveries in a row (0 = never)")
	fs.DurationVar(&c.DisableAfter, "disable-after", c.DisableAfter, "disable a webhook automatically once its deliveries have failed for this long without a success (0 = never)")
	fs.DurationVar(&c.Retention, "retention", c.Retention, "prune delivered deliveries, attempts and events older than this (0 = keep forever)")
	fs.DurationVar(&c.RetentionInterval, "retention-interval", c.RetentionInterval, "how often to prune what --retention says is old")
	fs.IntVar(&c.MaxWebhooks, "max-webhooks-per-organization", c.MaxWebhooks, "webhooks one organization may have")
	fs.StringVar(&c.Pprof, "pprof", c.Pprof, "serve Go's profiling endpoints (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off when empty")
}

// maxWebhooksCeiling bounds --max-webhooks-per-organization: one event
// makes a delivery per webhook in one transaction, so the cap is also the
// largest fan-out of a single publish.
const maxWebhooksCeiling = 100000

// envName is a flag's environment twin: --retry-schedule → HOOKD_RETRY_SCHEDULE.
func envName(flagName string) string {
	return "HOOKD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags, then fills every flag not given on the command
// line from its environment twin, then applies --dev's defaults.
func parseConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	c.flags(fs)
	if err := fs.Parse(args); err != nil {
		return c, errUsage
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := lookup(getenv, envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: invalid value %q", envName(f.Name), v)
			}
			given[f.Name] = true
		}
	})
	if err != nil {
		return c, err
	}
	if c.Dev {
		// --dev turns these on unless they were set explicitly.
		if !given["allow-http"] {
			c.AllowHTTP = true
		}
		if !given["allow-private-targets"] {
			c.AllowPrivate = true
		}
		if !given["database"] {
			c.Database = "sqlite:" + c.DataDir + "/hookd.db"
		}
	}
	return c, nil
}

func lookup(getenv func(string) string, name string) (string, bool) {
	if getenv == nil {
		return os.LookupEnv(name)
	}
	v := getenv(name)
	return v, v != ""
}

// Validate checks every setting and derives the parsed forms. Its error
// names the setting at fault in one line.
func (c *Config) Validate() error {
	if c.Listen == "" {
		return fmt.Errorf("--listen (HOOKD_LISTEN) must be an address such as 127.0.0.1:8080")
	}
	switch db := c.Database; {
	case strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://"):
		c.storeKind = "postgres"
	case strings.HasPrefix(db, "sqlite:"):
		c.storeKind, c.storePath = "sqlite", strings.TrimPrefix(strings.TrimPrefix(db, "sqlite:"), "//")
		if c.storePath == "" {
			return fmt.Errorf("--database (HOOKD_DATABASE): sqlite: needs a file path, e.g. sqlite:hookd-data/hookd.db")
		}
	default:
		return fmt.Errorf("--database (HOOKD_DATABASE) must be sqlite:PATH or a postgres:// URL, got %q", db)
	}
	switch strings.ToUpper(c.SQLiteSync) {
	case "NORMAL", "FULL":
		c.SQLiteSync = strings.ToUpper(c.SQLiteSync)
	default:
		return fmt.Errorf("--sqlite-synchronous (HOOKD_SQLITE_SYNCHRONOUS) must be NORMAL or FULL, got %q", c.SQLiteSync)
	}
	if c.AdminToken == "" && !c.Dev {
		return fmt.Errorf("--admin-token (HOOKD_ADMIN_TOKEN) is required (or run with --dev)")
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return fmt.Errorf("--admin-token (HOOKD_ADMIN_TOKEN) must be at least 16 characters")
	}
	if c.SecretKey == "" && !c.Dev {
		return fmt.Errorf("--secret-key (HOOKD_SECRET_KEY) is required: 32 random bytes in base64, e.g. from `openssl rand -base64 32`")
	}
	if c.SecretKey != "" {
		k, err := seal.ParseKey(c.SecretKey)
		if err != nil {
			return fmt.Errorf("--secret-key (HOOKD_SECRET_KEY) must be 32 bytes in base64, e.g. from `openssl rand -base64 32`")
		}
		c.sealKey = k
	}
	retry, err := dispatch.ParseRetrySchedule(c.RetrySchedule)
	if err != nil {
		return fmt.Errorf("--retry-schedule (HOOKD_RETRY_SCHEDULE): %v", err)
	}
	c.retry = retry
	if c.DeliveryTimeout <= 0 || c.DeliveryTimeout > 5*time.Minute {
		return fmt.Errorf("--delivery-timeout (HOOKD_DELIVERY_TIMEOUT) must be between 1ms and 5m, got %s", c.DeliveryTimeout)
	}
	switch c.Role {
	case "all", "api", "worker":
	default:
		return fmt.Errorf("--role (HOOKD_ROLE) must be all, api or worker, got %q", c.Role)
	}
	if c.storeKind == "sqlite" && c.Role != "all" {
		return fmt.Errorf("--role (HOOKD_ROLE) %s needs PostgreSQL: the embedded store belongs to one process, which must run both roles", c.Role)
	}
	if c.Workers < 1 || c.Workers > 10000 {
		return fmt.Errorf("--workers (HOOKD_WORKERS) must be between 1 and 10000, got %d", c.Workers)
	}
	if c.ReservedWorkers < 0 || c.ReservedWorkers >= c.Workers {
		return fmt.Errorf("--reserved-workers (HOOKD_RESERVED_WORKERS) must be between 0 (a quarter of --workers) and --workers − 1 (%d), got %d", c.Workers-1, c.ReservedWorkers)
	}
	if c.PerWebhook < 1 {
		return fmt.Errorf("--per-webhook-concurrency (HOOKD_PER_WEBHOOK_CONCURRENCY) must be at least 1, got %d", c.PerWebhook)
	}
	if c.MaxWebhooks < 1 || c.MaxWebhooks > maxWebhooksCeiling {
		return fmt.Errorf("--max-webhooks-per-organization (HOOKD_MAX_WEBHOOKS_PER_ORGANIZATION) must be between 1 and %d, got %d", maxWebhooksCeiling, c.MaxWebhooks)
	}
	if c.RateBurst < 0 || c.AdminRateBurst < 0 {
		return fmt.Errorf("--rate-burst and --admin-rate-burst (HOOKD_RATE_BURST, HOOKD_ADMIN_RATE_BURST) must not be negative")
	}
	if c.LeaseMargin <= 0 {
		return fmt.Errorf("--lease-margin (HOOKD_LEASE_MARGIN) must be positive, got %s", c.LeaseMargin)
	}
	if c.ShutdownGrace < 0 {
		return fmt.Errorf("--shutdown-grace (HOOKD_SHUTDOWN_GRACE) must not be negative")
	}
	if c.DisableAfterFailures < 0 {
		return fmt.Errorf("--disable-after-failures (HOOKD_DISABLE_AFTER_FAILURES) must be 0 (never) or more, got %d", c.DisableAfterFailures)
	}
	if c.DisableAfter < 0 {
		return fmt.Errorf("--disable-after (HOOKD_DISABLE_AFTER) must be 0 (never) or a positive duration such as 24h, got %s", c.DisableAfter)
	}
	if c.Retention < 0 {
		return fmt.Errorf("--retention (HOOKD_RETENTION) must not be negative (0 keeps everything), got %s", c.Retention)
	}
	if c.RetentionInterval <= 0 {
		return fmt.Errorf("--retention-interval (HOOKD_RETENTION_INTERVAL) must be positive, got %s", c.RetentionInterval)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format (HOOKD_LOG_FORMAT) must be text or json, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level (HOOKD_LOG_LEVEL) must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return nil
}
