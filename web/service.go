package web

import (
	"net/http"

	"github.com/hookd-dev/hookd"
)

// GET /healthz: the process is alive and serving.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request, _ caller) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// GET /readyz: the store answers, so requests can be served.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ caller) error {
	if err := s.cfg.Store.Ping(r.Context()); err != nil {
		s.log.Warn("not ready: store unreachable", "request_id", requestID(r.Context()), "err", err)
		return hookd.Errorf(hookd.EUNAVAILABLE, "the store is not reachable")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// GET /metrics: Prometheus text format, served by the handler in Config.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, _ caller) error {
	if s.cfg.Metrics == nil {
		return errNoRoute
	}
	s.cfg.Metrics.ServeHTTP(w, r)
	return nil
}
