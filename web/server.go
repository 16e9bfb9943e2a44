// Package web is hookd's HTTP front end: the JSON API of SPEC §3, the
// service endpoints (health, readiness, metrics, the OpenAPI document) and
// the portal of SPEC §4 (portal*.go). Handlers are thin: they decode, call
// an operation (ops.go) or the store, and encode. Domain rules live in
// package hookd; every error becomes an API answer in one place (error.go),
// or a page of the portal (portalError).
package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookd-dev/hookd"
)

// Store is the part of the store contract (storetest.Store) that web uses.
// Errors are *hookd.Error as documented there; anything else is internal.
type Store interface {
	Ping(ctx context.Context) error

	CreateOrganization(ctx context.Context, o *hookd.Organization) error
	FindOrganization(ctx context.Context, id string) (*hookd.Organization, error)
	CreateAPIKey(ctx context.Context, k *hookd.APIKey) error
	FindAPIKeys(ctx context.Context, prefix string) ([]*hookd.APIKey, error)
	DeleteAPIKey(ctx context.Context, orgID, keyID string) error
	CreateUser(ctx context.Context, u *hookd.User) error
	FindUserByEmail(ctx context.Context, email string) (*hookd.User, error)
	FindUser(ctx context.Context, id string) (*hookd.User, error)

	CreateSession(ctx context.Context, s *hookd.Session) error
	FindSession(ctx context.Context, tokenHash []byte, now time.Time) (*hookd.Session, error)
	DeleteSession(ctx context.Context, tokenHash []byte) error

	CreateWebhook(ctx context.Context, w *hookd.Webhook) error
	FindWebhook(ctx context.Context, orgID, id string) (*hookd.Webhook, error)
	ListWebhooks(ctx context.Context, orgID string, p hookd.Page) ([]*hookd.Webhook, string, error)
	UpdateWebhook(ctx context.Context, orgID, id string, update func(*hookd.Webhook) error) (*hookd.Webhook, error)
	DeleteWebhook(ctx context.Context, orgID, id string) error
	EnableWebhook(ctx context.Context, orgID, id string, redeliverFailed bool) (*hookd.Webhook, int, error)

	PublishEvents(ctx context.Context, events []*hookd.Event) ([]hookd.PublishResult, error)
	CreatePing(ctx context.Context, orgID, webhookID string) (*hookd.Delivery, error)
	ListDeliveries(ctx context.Context, orgID, webhookID string, status hookd.DeliveryStatus, p hookd.Page) ([]*hookd.Delivery, string, error)
	FindDelivery(ctx context.Context, orgID, webhookID, deliveryID string) (*hookd.Delivery, error)
	Redeliver(ctx context.Context, orgID, webhookID, deliveryID string) (*hookd.Delivery, error)
}

// URLChecker checks a webhook's target URL against the network policy at
// create and update (egress.Policy satisfies it). A refusal is reported to
// the caller as a 400 on the field "url".
type URLChecker interface {
	CheckURL(ctx context.Context, rawURL string) error
}

// Config is what New needs. Store and AdminToken are required; the rest
// have usable zero values.
type Config struct {
	Store      Store
	AdminToken string // the platform's bearer token; "" disables admin access
	AllowHTTP  bool   // --allow-http: http:// target URLs are accepted
	Targets    URLChecker
	// ValidateEvents checks published data against the event type's JSON
	// Schema (--validate-events).
	ValidateEvents bool
	// Notify is called after a commit that created due deliveries (publish,
	// ping, redeliver, enable with redelivery) to wake the dispatcher. May be nil.
	Notify func()
	// Metrics is served at GET /metrics without authentication. May be nil,
	// and then /metrics is a 404.
	Metrics http.Handler
	Logger  *slog.Logger // nil: discard

	// RateLimit is how many API requests per second each organization API
	// key may make, sustained; RateBurst is how many it may make at once
	// after a quiet spell. A request over the limit is answered 429
	// rate_limited with Retry-After, before it is read or does anything.
	// RateLimit 0 means DefaultRateLimit (100/s); negative turns the limit
	// off. RateBurst 0 means twice the rate.
	RateLimit float64
	RateBurst int
	// AdminRateLimit and AdminRateBurst are the same for the admin token;
	// 0 means DefaultAdminRateLimit (1000/s) and twice that, negative off.
	AdminRateLimit float64
	AdminRateBurst int

	// Tracing, when not nil, traces every API request and the fan-out of
	// published events (see package tracing). nil costs nothing.
	Tracing trace.TracerProvider
}

// Server is the HTTP handler of the API, the service endpoints and the
// portal.
type Server struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	portal *portal

	orgLimit   *rateLimiter // per organization API key; nil when off
	adminLimit *rateLimiter // for the admin token; nil when off
	tracer     trace.Tracer // nil when tracing is off
}

// New returns a Server for cfg. It panics when the route table is
// inconsistent (two routes with one pattern) or a portal template does not
// parse: both are bugs of the build, caught at start-up rather than at a
// user's click.
func New(cfg Config) *Server {
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		orgLimit:   newRateLimiter(cfg.RateLimit, cfg.RateBurst, DefaultRateLimit),
		adminLimit: newRateLimiter(cfg.AdminRateLimit, cfg.AdminRateBurst, DefaultAdminRateLimit),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Tracing != nil {
		s.tracer = cfg.Tracing.Tracer("github.com/hookd-dev/hookd/web")
	}
	p, err := s.newPortal(portalFiles)
	if err != nil {
		panic("web: portal: " + err.Error())
	}
	s.portal = p
	s.mux = s.buildMux()
	return s
}

// ServeHTTP gives the request an id, routes it, recovers from a panicking
// handler and logs one line: method, route pattern, status, duration.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := hookd.NewID("req_")
	w.Header().Set("X-Request-Id", id)
	rw := &statusWriter{ResponseWriter: w}
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))

	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "request_id", id, "panic", v)
			if rw.status == 0 {
				s.writeError(rw, r, hookd.Errorf(hookd.EINTERNAL, "internal error"))
			}
		}
		s.log.Info("request",
			"method", r.Method,
			"pattern", r.Pattern, // the route, not the path: no ids or query strings in the log
			"status", rw.code(),
			"duration", time.Since(start),
			"request_id", id)
	}()
	s.mux.ServeHTTP(rw, r)
}

type requestIDKey struct{}

// requestID returns the id ServeHTTP gave the request.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// statusWriter remembers the status written, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// notify wakes the dispatcher, if there is one to wake.
func (s *Server) notify() {
	if s.cfg.Notify != nil {
		s.cfg.Notify()
	}
}
