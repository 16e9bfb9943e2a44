package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/dispatch"
	"github.com/hookd-dev/hookd/egress"
	"github.com/hookd-dev/hookd/postgres"
	"github.com/hookd-dev/hookd/retention"
	"github.com/hookd-dev/hookd/sqlite"
	"github.com/hookd-dev/hookd/tracing"
	"github.com/hookd-dev/hookd/web"
)

func runServe(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.err)
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: hookd serve [flags]\n\nRuns the API, the portal and the dispatcher. Every flag has an environment twin, HOOKD_<FLAG>.\n\nFlags:")
		fs.PrintDefaults()
	}
	cfg, err := parseConfig(fs, args, nil)
	if err != nil {
		return err
	}
	m := NewMain(cfg, io.out, io.err)
	if err := m.Run(ctx); err != nil {
		m.Close(context.Background())
		return err
	}
	<-ctx.Done()
	// SIGTERM or SIGINT: stop taking work, let attempts finish within the
	// grace period, hand back the rest, exit 0.
	grace, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	m.logger.Info("shutting down", "grace", cfg.ShutdownGrace)
	return m.Close(grace)
}

// Main is a running hookd: store, HTTP server and dispatcher. End-to-end
// tests run it in-process on port 0 with a temporary store.
type Main struct {
	Config Config
	out    io.Writer // where --dev prints its credentials
	logger *slog.Logger

	store      store
	listener   net.Listener
	server     *http.Server
	dispatcher *dispatch.Dispatcher
	serveErr   chan error
	pprof      *http.Server
	stopListen context.CancelFunc
	stopPrune  context.CancelFunc
	pruneDone  chan struct{}
	tracing    *tracing.Provider // nil when tracing is off
}

// servePprof serves Go's profiler on its own address, so that profiling is
// never reachable through the public port.
func (m *Main) servePprof(addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof (HOOKD_PPROF): %v", err)
	}
	m.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go m.pprof.Serve(ln)
	m.logger.Info("profiling endpoints on", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return nil
}

// NewMain returns a Main for cfg that logs to logw.
func NewMain(cfg Config, out, logw io.Writer) *Main {
	return &Main{Config: cfg, out: out, logger: newLogger(cfg, logw)}
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// URL is the base URL the server listens on, once Run has returned.
func (m *Main) URL() string { return "http://" + m.listener.Addr().String() }

// Run validates the configuration, opens the store, and starts the HTTP
// server and the dispatcher. It returns once they run; Close stops them.
func (m *Main) Run(ctx context.Context) error {
	cfg := &m.Config
	if cfg.Dev {
		if err := prepareDev(cfg); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Traces are configured by OpenTelemetry's own variables, which
	// collectors and their docs already name, not by hookd flags.
	tp, err := tracing.Start(ctx, versionString())
	if err != nil {
		return err
	}
	var tracer trace.TracerProvider // stays nil, not a nil *Provider, when off
	if tp != nil {
		m.tracing, tracer = tp, tp
		otel.SetErrorHandler(tracing.ErrorHandler{Logger: m.logger})
		m.logger.Info("tracing: exporting spans over OTLP", "endpoint", tp.Endpoint)
	}
	store, err := openStore(ctx, cfg, m.logger)
	if err != nil {
		return err
	}
	m.store = store
	if cfg.Dev {
		if err := seedDev(ctx, cfg, store, m.out); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	dispatch.NewDeliveriesCollector(reg, store)

	if cfg.Role != "api" {
		m.dispatcher = dispatch.New(dispatch.Config{
			Store: store,
			Sender: egress.NewClient(egress.Options{
				Policy:  egress.Policy{AllowPrivate: cfg.AllowPrivate, AllowHTTP: cfg.AllowHTTP},
				Timeout: cfg.DeliveryTimeout,
			}),
			Retry:       dispatch.RetryPolicy{Schedule: cfg.retry, Jitter: 0.2},
			Timeout:     cfg.DeliveryTimeout,
			LeaseMargin: cfg.LeaseMargin,
			Workers:     cfg.Workers,
			PerWebhook:  cfg.PerWebhook,
			Reserved:    cfg.ReservedWorkers,
			Logger:      m.logger,
			Metrics:     dispatch.NewMetrics(reg),
			Tracing:     tracer,
		})
		m.dispatcher.Start()
		if l, ok := store.(listener); ok {
			// Wake on deliveries made due by other nodes (publish, ping,
			// redeliver through an api-role node).
			lctx, stop := context.WithCancel(context.Background())
			m.stopListen = stop
			go l.Listen(lctx, m.dispatcher.Notify)
		}
		if cfg.Retention > 0 {
			m.startPruner(reg)
		}
	}

	if cfg.Pprof != "" {
		if err := m.servePprof(cfg.Pprof); err != nil {
			return err
		}
	}

	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	var handler http.Handler
	if cfg.Role != "worker" {
		notify := func() {}
		if m.dispatcher != nil {
			notify = m.dispatcher.Notify
		}
		handler = web.New(web.Config{
			Store:          store,
			AdminToken:     cfg.AdminToken,
			AllowHTTP:      cfg.AllowHTTP,
			ValidateEvents: cfg.ValidateEvents,
			RateLimit:      cfg.RateLimit,
			RateBurst:      cfg.RateBurst,
			AdminRateLimit: cfg.AdminRateLimit,
			AdminRateBurst: cfg.AdminRateBurst,
			Targets:        egress.Policy{AllowPrivate: cfg.AllowPrivate, AllowHTTP: cfg.AllowHTTP},
			Notify:         notify,
			Metrics:        metrics,
			Logger:         m.logger,
			Tracing:        tracer,
		})
	} else {
		handler = serviceHandler(store, metrics)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen (HOOKD_LISTEN): %v", err)
	}
	m.listener = ln
	m.server = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	m.serveErr = make(chan error, 1)
	go func() { m.serveErr <- m.server.Serve(ln) }()
	m.logger.Info("hookd serving", "url", m.URL(), "role", cfg.Role, "store", cfg.storeKind, "version", versionString())
	return nil
}

// serviceHandler is what a worker-only node serves: health, readiness and
// metrics, so that it can be probed and scraped like the others, and
// nothing of the API.
func serviceHandler(store interface{ Ping(context.Context) error }, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := store.Ping(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"unavailable","message":"store not reachable"}}`)
			return
		}
		io.WriteString(w, `{"status":"ok"}`)
	})
	mux.Handle("GET /metrics", metrics)
	return mux
}

// Close stops taking requests and claiming work, waits for in-flight
// requests and attempts until ctx ends, hands back what is still running,
// and closes the store.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.server != nil {
		if err := m.server.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
		if err := <-m.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if m.stopListen != nil {
		m.stopListen()
	}
	if m.stopPrune != nil {
		// A batch in progress rolls back; the next start sweeps again.
		m.stopPrune()
		<-m.pruneDone
	}
	if m.dispatcher != nil {
		m.dispatcher.Stop(ctx)
	}
	if m.pprof != nil {
		m.pprof.Close()
	}
	// After the dispatcher: the last attempts' spans are flushed too.
	if err := m.tracing.Shutdown(ctx); err != nil {
		m.logger.Warn("tracing: flushing spans at exit failed", "err", err)
	}
	if m.store != nil {
		if err := m.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// store is everything serve asks of a store: what the API, the dispatcher
// and the metrics need.
type store interface {
	web.Store
	dispatch.Store
	dispatch.Counter
	retention.Store
	Close() error
}

func openStore(ctx context.Context, cfg *Config, logger *slog.Logger) (store, error) {
	if cfg.sealKey == nil {
		return nil, errors.New("--secret-key (HOOKD_SECRET_KEY) is required")
	}
	switch cfg.storeKind {
	case "sqlite":
		db, err := sqlite.Open(ctx, sqlite.Config{Path: cfg.storePath, Key: cfg.sealKey, Synchronous: cfg.SQLiteSync, Health: cfg.health(), Logger: logger,
			MaxWebhooksPerOrganization: cfg.MaxWebhooks})
		if err != nil {
			return nil, fmt.Errorf("--database (HOOKD_DATABASE): %v", err)
		}
		return db, nil
	default:
		db, err := postgres.Open(ctx, postgres.Config{URL: cfg.Database, Key: cfg.sealKey, Logger: logger, Health: cfg.health(),
			MaxWebhooksPerOrganization: cfg.MaxWebhooks})
		if err != nil {
			return nil, fmt.Errorf("--database (HOOKD_DATABASE): %v", err)
		}
		return db, nil
	}
}

// startPruner prunes what is older than --retention in the background, on
// the nodes that dispatch: an api-role node leaves it to the workers.
func (m *Main) startPruner(reg prometheus.Registerer) {
	p := &retention.Pruner{
		Store:    m.store,
		Age:      m.Config.Retention,
		Interval: m.Config.RetentionInterval,
		Logger:   m.logger,
		Metrics:  retention.NewMetrics(reg),
	}
	ctx, stop := context.WithCancel(context.Background())
	m.stopPrune, m.pruneDone = stop, make(chan struct{})
	go func() {
		defer close(m.pruneDone)
		p.Run(ctx)
	}()
}

// listener is a store that can announce new work from other processes
// (PostgreSQL's LISTEN/NOTIFY).
type listener interface {
	Listen(ctx context.Context, wake func()) error
}

func versionString() string { return hookd.Version }
