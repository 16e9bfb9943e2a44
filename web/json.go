package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/hookd-dev/hookd"
)

// Body limits of the API. Event data is capped at 256 KiB by
// hookd.Event.Validate; the rest of a single event's body is small, so 512
// KiB leaves room for JSON escaping without letting a client stream
// megabytes into a decoder.
const (
	maxBodySize      = 64 << 10
	maxEventBodySize = 512 << 10
	maxBatchBodySize = hookd.MaxBatchBodySize
)

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value written is built from plain structs; this is a bug.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	// Answers carry API keys and private delivery logs: no cache keeps them.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// decodeBody reads the request body, at most limit bytes, as exactly one
// JSON value into dst, refusing unknown fields. Its errors are ready for
// writeError: 413 for a body over limit, 400 naming the top-level field for
// a wrong type or an unknown field, 400 for malformed JSON.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	return decodeStrict(http.MaxBytesReader(w, r.Body, limit), dst)
}

// readBody reads the whole request body, at most limit bytes: 413 for a
// body over limit, as decodeBody.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	// Sized from Content-Length when it is sent, so a large body is not
	// copied again each time the buffer doubles.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0), limit)+1))
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		return nil, decodeError(err)
	}
	return buf.Bytes(), nil
}

// decodeStrict decodes exactly one JSON value from rd into dst, refusing
// unknown fields.
func decodeStrict(rd io.Reader, dst any) error {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	// One value only: trailing data is a client bug better reported than ignored.
	if _, err := dec.Token(); err != io.EOF {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return decodeError(err)
		}
		return hookd.Errorf(hookd.EINVALID, "request body must hold exactly one JSON value")
	}
	return nil
}

// decodeError turns an error of encoding/json into an API error.
func decodeError(err error) error {
	var (
		maxErr  *http.MaxBytesError
		synErr  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return hookd.Errorf(hookd.ETOOLARGE, "request body must be at most %s", sizeString(maxErr.Limit))
	case errors.Is(err, io.EOF):
		return hookd.Errorf(hookd.EINVALID, "request body must be a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return hookd.Errorf(hookd.EINVALID, "request body is not valid JSON: it ends too soon")
	case errors.As(err, &synErr):
		return hookd.Errorf(hookd.EINVALID, "request body is not valid JSON (at byte %d)", synErr.Offset)
	case errors.As(err, &typeErr):
		// Field is the path from the root ("events", "sub.x"); SPEC §3
		// names the top-level field.
		field, _, _ := strings.Cut(typeErr.Field, ".")
		if field == "" {
			return hookd.Errorf(hookd.EINVALID, "request body must be a JSON object")
		}
		return hookd.FieldErrorf(field, "%s: expected %s, got %s", field, jsonKind(typeErr.Type), article(typeErr.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json reports unknown fields with a plain error.
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			return hookd.Errorf(hookd.EINVALID, "request body has an unknown field")
		}
		return hookd.FieldErrorf(name, "unknown field %q", name)
	default:
		return err // reading the body failed: the client went away, or a bug
	}
}

// jsonKind names the JSON form of a Go type, for messages.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	if t == reflect.TypeFor[json.RawMessage]() {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	default:
		return "an object"
	}
}

func article(jsonValue string) string {
	switch jsonValue {
	case "array", "object":
		return "an " + jsonValue
	case "":
		return "something else"
	}
	return "a " + jsonValue
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// list is SPEC §3's list answer.
type list[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"` // null on the last page
}

// newList converts a page of the store into a list answer; next is the
// store's Page.After for the next page, "" on the last.
func newList[S, T any](items []S, next string, conv func(S) T) list[T] {
	out := list[T]{Data: make([]T, 0, len(items))}
	for _, it := range items {
		out.Data = append(out.Data, conv(it))
	}
	if next != "" {
		c := encodeCursor(next)
		out.NextCursor = &c
	}
	return out
}

// parsePage reads ?limit= and ?cursor= for a list of objects whose ids
// start with prefix. An empty parameter counts as absent.
func parsePage(r *http.Request, prefix string) (hookd.Page, error) {
	q := r.URL.Query()
	p := hookd.Page{Limit: hookd.DefaultPageLimit}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > hookd.MaxPageLimit {
			return p, hookd.FieldErrorf("limit", "limit must be an integer from 1 to %d", hookd.MaxPageLimit)
		}
		p.Limit = n
	}
	if c := q.Get("cursor"); c != "" {
		id, ok := decodeCursor(c, prefix)
		if !ok {
			return p, hookd.FieldErrorf("cursor", "cursor is not one this list gave out")
		}
		p.After = id
	}
	return p, nil
}

// Cursors are the base64url form of the last id of a page. Opaque to
// clients, so the paging scheme can change; checked on the way back so a
// forged or mangled cursor is a 400, not a silently wrong page.
func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func decodeCursor(c, prefix string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !bytes.HasPrefix(b, []byte(prefix)) || len(b) == len(prefix) || len(b) > 64 {
		return "", false
	}
	for _, ch := range b[len(prefix):] {
		if !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'z') {
			return "", false
		}
	}
	return string(b), true
}
