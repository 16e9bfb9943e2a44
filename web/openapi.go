package web

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3.1 description of the API. A test keeps
// it and the route table in step.
//
//go:embed openapi.json
var openAPIDocument []byte

// GET /openapi.json
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request, _ caller) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(openAPIDocument)
	return nil
}
