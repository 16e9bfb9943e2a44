// Package signature signs and verifies hookd webhook deliveries.
//
// Every delivery of a webhook that has a secret carries the header
//
//	X-CG-Hook-Signature: sha256=<lowercase hex of HMAC-SHA256(secret, raw body)>
//
// A receiver recomputes the HMAC over the exact bytes it received, before
// any JSON decoding, and compares in constant time. Verify does that for one
// body; Verifier wraps an http.Handler so that only correctly signed
// requests reach it. The package uses the standard library only, so
// receivers can import it without pulling in the rest of hookd.
package signature

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
)

// Header is the request header that carries a delivery's signature.
const Header = "X-CG-Hook-Signature"

// Prefix starts every signature; it names the algorithm.
const Prefix = "sha256="

// DefaultMaxBodyBytes is the largest body a Verifier reads when its
// MaxBodyBytes is zero: 10 MiB, far above any hookd delivery (event data is
// capped at 256 KiB).
const DefaultMaxBodyBytes = 10 << 20

// Errors returned by Verify. They are distinct so that a receiver can log
// why a request was refused; all three mean the request must be rejected.
var (
	ErrMissing   = errors.New("signature: missing " + Header + " header")
	ErrMalformed = errors.New("signature: malformed signature: want " + Prefix + " followed by 64 hex digits")
	ErrMismatch  = errors.New("signature: signature does not match the body")
)

// Sign returns the signature of body under secret: Prefix followed by the
// lowercase hex HMAC-SHA256 of body keyed with secret. It is the value of
// the Header on a delivery.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	sum := mac.Sum(nil)
	out := make([]byte, len(Prefix)+hex.EncodedLen(len(sum)))
	copy(out, Prefix)
	hex.Encode(out[len(Prefix):], sum)
	return string(out)
}

// Verify reports whether header is a valid signature of body under secret.
// It returns nil when it is, ErrMissing when header is empty, ErrMalformed
// when header is not Prefix followed by 64 hex digits (either case), and
// ErrMismatch otherwise. The comparison takes the same time wherever the
// first differing byte is, so timing does not leak the expected signature.
func Verify(secret string, body []byte, header string) error {
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrMissing
	}
	digest, ok := strings.CutPrefix(header, Prefix)
	if !ok || len(digest) != hex.EncodedLen(sha256.Size) {
		return ErrMalformed
	}
	got, err := hex.DecodeString(digest)
	if err != nil {
		return ErrMalformed
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	// Comparing raw MACs rather than hex strings is what makes upper-case
	// hex acceptable without a case-folding step that could leak timing.
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrMismatch
	}
	return nil
}

// Verifier is an HTTP middleware that lets through only requests whose body
// is correctly signed with Secret. The zero value is not usable: Secret must
// be set.
type Verifier struct {
	// Secret is the webhook's secret, as entered in hookd.
	Secret string
	// MaxBodyBytes bounds the body read; 0 means DefaultMaxBodyBytes.
	// Larger requests are answered 413 without being verified.
	MaxBodyBytes int64
}

// Handler returns a handler that reads the request body (at most
// MaxBodyBytes), verifies its signature and then calls next with a request
// whose Body yields exactly the bytes that were verified. It answers
// 401 with a short plain-text reason when the signature is missing or
// invalid, 413 when the body is too large and 400 when the body cannot be
// read; next is not called in those cases.
//
// Handler panics when Secret is empty: an empty key authenticates nothing,
// and failing at start-up beats accepting forged requests.
func (v *Verifier) Handler(next http.Handler) http.Handler {
	if v.Secret == "" {
		panic("signature: Verifier.Secret is empty")
	}
	secret, limit := v.Secret, v.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		// One byte past the limit tells "exactly at the limit" from "over it"
		// when the length was not announced (chunked bodies).
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			http.Error(w, "cannot read request body", http.StatusBadRequest)
			return
		}
		if int64(len(body)) > limit {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		switch err := Verify(secret, body, r.Header.Get(Header)); err {
		case nil:
		case ErrMissing:
			http.Error(w, "missing "+Header+" header", http.StatusUnauthorized)
			return
		case ErrMalformed:
			http.Error(w, "malformed signature", http.StatusUnauthorized)
			return
		default:
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		// A shallow copy, as http.MaxBytesHandler does: handlers must not
		// modify the request they were given.
		r2 := *r
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r2.ContentLength = int64(len(body))
		next.ServeHTTP(w, &r2)
	})
}
