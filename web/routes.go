package web

import (
	"net/http"
	"slices"
	"strings"
)

// access says who may call a route.
type access int

const (
	public   access = iota // no credentials: service endpoints
	admin                  // the admin token only: the platform
	org                    // an organization API key only
	adminOrg               // either: the event catalog is public knowledge to both
)

// route is one line of the API reference.
type route struct {
	method  string
	path    string // a ServeMux wildcard pattern, also the OpenAPI path
	access  access
	handler handler
}

// routes is the API, SPEC §3, in the order of its tables. The OpenAPI
// document is checked against this list by a test.
func (s *Server) routes() []route {
	return []route{
		// Admin endpoints: the platform manages tenants and publishes events.
		{"POST", "/v1/organizations", admin, s.handleCreateOrganization},
		{"GET", "/v1/organizations/{id}", admin, s.handleGetOrganization},
		{"POST", "/v1/organizations/{id}/api-keys", admin, s.handleCreateAPIKey},
		{"DELETE", "/v1/organizations/{id}/api-keys/{key_id}", admin, s.handleDeleteAPIKey},
		{"POST", "/v1/organizations/{id}/users", admin, s.handleCreateUser},
		{"POST", "/v1/events", admin, s.handlePublish},
		{"POST", "/v1/events/batch", admin, s.handlePublishBatch},

		// Organization endpoints: a tenant's own webhooks and deliveries.
		{"GET", "/v1/event-types", adminOrg, s.handleListEventTypes},
		{"GET", "/v1/event-types/{name}", adminOrg, s.handleGetEventType},
		{"POST", "/v1/webhooks", org, s.handleCreateWebhook},
		{"GET", "/v1/webhooks", org, s.handleListWebhooks},
		{"GET", "/v1/webhooks/{id}", org, s.handleGetWebhook},
		{"PATCH", "/v1/webhooks/{id}", org, s.handleUpdateWebhook},
		{"DELETE", "/v1/webhooks/{id}", org, s.handleDeleteWebhook},
		{"POST", "/v1/webhooks/{id}/ping", org, s.handlePing},
		{"POST", "/v1/webhooks/{id}/enable", org, s.handleEnableWebhook},
		{"GET", "/v1/webhooks/{id}/deliveries", org, s.handleListDeliveries},
		{"GET", "/v1/webhooks/{id}/deliveries/{delivery_id}", org, s.handleGetDelivery},
		{"POST", "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", org, s.handleRedeliver},

		// Service endpoints.
		{"GET", "/healthz", public, s.handleHealthz},
		{"GET", "/readyz", public, s.handleReadyz},
		{"GET", "/metrics", public, s.handleMetrics},
		{"GET", "/openapi.json", public, s.handleOpenAPI},
	}
}

// buildMux registers every route of the API and of the portal on a
// ServeMux, and every route's path on a second, method-less one: a request
// that matches no route but whose path a route has is a 405, not a 404.
// ServeMux would answer both in plain text; the API answers in its JSON
// error format, the portal with a page.
func (s *Server) buildMux() *http.ServeMux {
	mux, methods := http.NewServeMux(), http.NewServeMux()
	allowed := map[string][]string{}
	handle := func(method, path string, h http.Handler, refuse http.HandlerFunc) {
		mux.Handle(method+" "+path, h)
		if allowed[path] == nil {
			methods.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
				allow := allowed[path]
				if slices.Contains(allow, "GET") {
					allow = append(slices.Clone(allow), "HEAD")
				}
				w.Header().Set("Allow", strings.Join(allow, ", "))
				refuse(w, r)
			})
		}
		allowed[path] = append(allowed[path], method)
	}
	apiRefuse := func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, errMethodNotAllowed) }
	for _, rt := range s.routes() {
		h := s.authorize(rt.access, rt.handler)
		if s.tracer != nil {
			h = s.traced(rt.method+" "+rt.path, h)
		}
		handle(rt.method, rt.path, h, apiRefuse)
	}
	for _, rt := range s.portalRoutes() {
		handle(rt.method, rt.path, s.wrap(rt), s.portalMethodNotAllowed)
	}
	// "/" matches every method and path no route matches.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch _, pattern := methods.Handler(r); {
		case pattern != "":
			methods.ServeHTTP(w, r)
		case isPortalPath(r.URL.Path):
			s.portalNotFound(w, r)
		default:
			s.writeError(w, r, errNoRoute)
		}
	})
	return mux
}
