package hookd

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to exactly one HTTP status, in package web.
const (
	EINVALID      = "invalid_argument"  // 400: a request field is wrong
	EUNAUTHORIZED = "unauthenticated"   // 401: no or unknown credentials
	EFORBIDDEN    = "permission_denied" // 403: known caller, not allowed
	ENOTFOUND     = "not_found"         // 404: no such object, or not yours
	ECONFLICT     = "conflict"          // 409: clashes with existing state
	ETOOLARGE     = "payload_too_large" // 413: body or field over its limit
	ERATELIMIT    = "rate_limited"      // 429: slow down
	EINTERNAL     = "internal"          // 500: a bug or a failed dependency
	EUNAVAILABLE  = "unavailable"       // 503: not ready (store down, draining)
)

// Error is hookd's error vocabulary: a code that tells callers what kind of
// failure happened, a message safe to show to the API user, and, when one
// input field is at fault, the top-level name of that field.
type Error struct {
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("hookd: %s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("hookd: %s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an EINVALID *Error about one input field.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Message: fmt.Sprintf(format, args...), Field: field}
}

// ErrorCode returns the code of err when it is or wraps an *Error, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the user-facing message of err. Errors that are not
// *Error are internal and get a generic message, so that no internal detail
// (a SQL statement, a file path) reaches a user.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error"
	}
}

// ErrorField returns the field named by err, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
