package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/hookd-dev/hookd"
)

// eMethodNotAllowed is the one code web adds to hookd's vocabulary: a known
// path asked with a method it does not have. It is about the route, never
// about an object, so the domain has no use for it.
const eMethodNotAllowed = "method_not_allowed"

var (
	errNoRoute          = hookd.Errorf(hookd.ENOTFOUND, "no such endpoint")
	errMethodNotAllowed = hookd.Errorf(eMethodNotAllowed, "method not allowed on this endpoint")
)

// errorStatus is the one mapping from error codes to HTTP statuses.
func errorStatus(code string) int {
	switch code {
	case hookd.EINVALID:
		return http.StatusBadRequest
	case hookd.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case hookd.EFORBIDDEN:
		return http.StatusForbidden
	case hookd.ENOTFOUND:
		return http.StatusNotFound
	case eMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case hookd.ECONFLICT:
		return http.StatusConflict
	case hookd.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case hookd.ERATELIMIT:
		return http.StatusTooManyRequests
	case hookd.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// errorBody is SPEC §3's error body.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// writeError answers err in the API's error format. Errors that are not
// *hookd.Error are internal: the caller sees a generic message and the
// error goes to the log with the request's method, path and id (never its
// body or headers, which carry secrets, keys and passwords).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := hookd.ErrorCode(err)
	if code == hookd.EINTERNAL {
		attrs := []any{"method", r.Method, "path", r.URL.Path, "request_id", requestID(r.Context())}
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			s.log.Debug("request canceled by the client", attrs...) // not a fault of ours
		} else {
			s.log.Error("internal error", append(attrs, "err", err)...)
		}
	}
	if code == hookd.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hookd"`)
	}
	writeJSON(w, errorStatus(code), errorBody{Error: errorDetail{
		Code:    code,
		Message: hookd.ErrorMessage(err),
		Field:   hookd.ErrorField(err),
	}})
}
