package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// wantValid is the oracle for Verify, written from the contract rather than
// from signature.go: after trimming the white space around a header value
// (RFC 9110 §5.5), the header is exactly Prefix followed by the 64 hex
// digits of the HMAC, in either case.
func wantValid(secret string, body []byte, header string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	digest, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok || len(digest) != len(want) {
		return false
	}
	for i := range len(want) {
		c := digest[i]
		if 'A' <= c && c <= 'F' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// FuzzVerify checks Sign and Verify on arbitrary secrets, bodies and
// headers: a signature verifies, a change to any byte of the body or of the
// signature breaks it (a case change of a hex digit aside), and a header
// verifies exactly when the oracle above says so. Run it with
//
//	go test -run '^$' -fuzz FuzzVerify -fuzztime 30s ./signature
func FuzzVerify(f *testing.F) {
	f.Fuzz(func(t *testing.T, secret string, body []byte, header string, at uint, flip byte) {
		sig := Sign(secret, body)
		if err := Verify(secret, body, sig); err != nil {
			t.Fatalf("Verify(Sign(secret, body)) = %v", err)
		}
		flip |= 1 // a change, never a no-op

		if len(body) > 0 {
			tampered := append([]byte(nil), body...)
			tampered[at%uint(len(body))] ^= flip
			if err := Verify(secret, tampered, sig); err != ErrMismatch {
				t.Fatalf("Verify of a body with byte %d changed = %v, want ErrMismatch", at%uint(len(body)), err)
			}
		}

		forged := []byte(sig)
		forged[at%uint(len(forged))] ^= flip
		err := Verify(secret, body, string(forged))
		if want := wantValid(secret, body, string(forged)); (err == nil) != want {
			t.Fatalf("Verify(%q) = %v, oracle says valid=%v (Sign gave %q)", forged, err, want, sig)
		}

		err = Verify(secret, body, header)
		if want := wantValid(secret, body, header); (err == nil) != want {
			t.Fatalf("Verify(%q) = %v, oracle says valid=%v", header, err, want)
		}
		switch err {
		case nil, ErrMissing, ErrMalformed, ErrMismatch:
		default:
			t.Fatalf("Verify(%q) = %v, not one of the package's errors", header, err)
		}
		if strings.TrimSpace(header) == "" && err != ErrMissing {
			t.Fatalf("Verify(%q) = %v, want ErrMissing", header, err)
		}
	})
}
