package signature

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// vector is one golden vector of testdata/vectors.json. The signatures were
// computed with Python's hmac module, not with this package.
type vector struct {
	Name      string `json:"name"`
	Secret    string `json:"secret"`
	Body      string `json:"body"`
	BodyHex   string `json:"body_hex"`
	Signature string `json:"signature"`
}

func (v vector) body(t *testing.T) []byte {
	t.Helper()
	if v.BodyHex == "" {
		return []byte(v.Body)
	}
	b, err := hex.DecodeString(v.BodyHex)
	if err != nil {
		t.Fatalf("vector %s: bad body_hex: %v", v.Name, err)
	}
	return b
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Vectors []vector }
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatalf("testdata/vectors.json: %v", err)
	}
	if len(file.Vectors) < 8 {
		t.Fatalf("testdata/vectors.json has %d vectors, want at least 8", len(file.Vectors))
	}
	return file.Vectors
}

func TestSign_GoldenVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			if got := Sign(v.Secret, v.body(t)); got != v.Signature {
				t.Errorf("Sign = %s\nwant   %s", got, v.Signature)
			}
			if err := Verify(v.Secret, v.body(t), v.Signature); err != nil {
				t.Errorf("Verify(golden signature) = %v, want nil", err)
			}
		})
	}
}

// TestGoldenVectors_Python recomputes every vector with a second, unrelated
// implementation, so that a wrong vector file cannot vouch for wrong code.
func TestGoldenVectors_Python(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: cannot cross-check the golden vectors against Python's hmac module")
	}
	vectors := loadVectors(t)
	var in bytes.Buffer
	for _, v := range vectors {
		// Hex on both sides keeps binary and non-ASCII bytes out of quoting.
		in.WriteString(hex.EncodeToString([]byte(v.Secret)) + " " + hex.EncodeToString(v.body(t)) + "\n")
	}
	const script = `import sys, hmac, hashlib
for line in sys.stdin:
    key, body = (bytes.fromhex(f) for f in line.split(" "))
    print("sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest())`
	cmd := exec.Command(python, "-c", script)
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	got := strings.Fields(string(out))
	if len(got) != len(vectors) {
		t.Fatalf("python3 printed %d signatures for %d vectors", len(got), len(vectors))
	}
	for i, v := range vectors {
		if got[i] != v.Signature {
			t.Errorf("%s: python3 computes %s, vectors.json says %s", v.Name, got[i], v.Signature)
		}
		if mine := Sign(v.Secret, v.body(t)); got[i] != mine {
			t.Errorf("%s: python3 computes %s, Sign %s", v.Name, got[i], mine)
		}
	}
}

// TestGoldenVectors_OpenSSL is a third implementation, for machines that
// have openssl but not python3 (and as a check on the check where both are).
func TestGoldenVectors_OpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: cannot cross-check the golden vectors against openssl dgst")
	}
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			cmd := exec.Command(openssl, "dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:"+hex.EncodeToString([]byte(v.Secret)))
			cmd.Stdin = bytes.NewReader(v.body(t))
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("openssl: %v", err)
			}
			// "HMAC-SHA2-256(stdin)= <hex>"; the label varies between versions.
			fields := strings.Fields(string(out))
			if len(fields) == 0 {
				t.Fatalf("openssl printed nothing")
			}
			if got := Prefix + fields[len(fields)-1]; got != v.Signature {
				t.Errorf("openssl computes %s, vectors.json says %s", got, v.Signature)
			}
		})
	}
}

func TestSign_Format(t *testing.T) {
	got := Sign("secret", []byte(`{"a":1}`))
	if !strings.HasPrefix(got, Prefix) {
		t.Fatalf("Sign = %q, want prefix %q", got, Prefix)
	}
	digest := strings.TrimPrefix(got, Prefix)
	if len(digest) != 64 || strings.ToLower(digest) != digest {
		t.Errorf("digest %q: want 64 lowercase hex digits", digest)
	}
}

func TestVerify(t *testing.T) {
	const secret = "It's a Secret to Everybody"
	body := []byte("Hello, World!")
	const good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	tests := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   error
	}{
		{"OK", secret, body, good, nil},
		{"OK/UpperCaseHex", secret, body, "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), nil},
		{"OK/SurroundingSpace", secret, body, " " + good + "\t", nil},
		{"OK/EmptyBody", secret, nil, Sign(secret, nil), nil},
		{"ErrMismatch/WrongSecret", "It's a Secret to Nobody", body, good, ErrMismatch},
		{"ErrMismatch/TamperedBody", secret, []byte("Hello, World?"), good, ErrMismatch},
		{"ErrMismatch/TrailingNewlineInBody", secret, []byte("Hello, World!\n"), good, ErrMismatch},
		{"ErrMismatch/OneDigitChanged", secret, body, good[:len(good)-1] + "f", ErrMismatch},
		{"ErrMissing", secret, body, "", ErrMissing},
		{"ErrMissing/OnlySpace", secret, body, "   ", ErrMissing},
		{"ErrMalformed/NoPrefix", secret, body, strings.TrimPrefix(good, "sha256="), ErrMalformed},
		{"ErrMalformed/OtherAlgorithm", secret, body, "sha1=" + strings.TrimPrefix(good, "sha256="), ErrMalformed},
		{"ErrMalformed/UpperCasePrefix", secret, body, "SHA256=" + strings.TrimPrefix(good, "sha256="), ErrMalformed},
		{"ErrMalformed/TooShort", secret, body, good[:len(good)-2], ErrMalformed},
		{"ErrMalformed/TooLong", secret, body, good + "00", ErrMalformed},
		{"ErrMalformed/NotHex", secret, body, good[:len(good)-1] + "g", ErrMalformed},
		{"ErrMalformed/PrefixOnly", secret, body, "sha256=", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(tt.secret, tt.body, tt.header); err != tt.want {
				t.Errorf("Verify(%q) = %v, want %v", tt.header, err, tt.want)
			}
		})
	}
}

func TestVerifier_Handler(t *testing.T) {
	const secret = "whsec_test"
	body := []byte(`{"id":"evt_1","type":"scan_completed","data":{"scan_id":"scn_1"}}`)

	tests := []struct {
		name       string
		max        int64
		body       []byte
		header     string // the signature header; "-" for none
		chunked    bool   // hide the length, as a streamed body would
		wantStatus int
		wantNext   bool
	}{
		{"OK", 0, body, Sign(secret, body), false, http.StatusOK, true},
		{"OK/Chunked", 0, body, Sign(secret, body), true, http.StatusOK, true},
		{"OK/ExactlyAtLimit", int64(len(body)), body, Sign(secret, body), true, http.StatusOK, true},
		{"OK/EmptyBody", 0, nil, Sign(secret, nil), false, http.StatusOK, true},
		{"ErrMissing", 0, body, "-", false, http.StatusUnauthorized, false},
		{"ErrMalformed", 0, body, "md5=abc", false, http.StatusUnauthorized, false},
		{"ErrMismatch/WrongSecret", 0, body, Sign("other", body), false, http.StatusUnauthorized, false},
		{"ErrMismatch/TamperedBody", 0, append([]byte(" "), body...), Sign(secret, body), false, http.StatusUnauthorized, false},
		{"TooLarge/ContentLength", int64(len(body) - 1), body, Sign(secret, body), false, http.StatusRequestEntityTooLarge, false},
		{"TooLarge/Chunked", int64(len(body) - 1), body, Sign(secret, body), true, http.StatusRequestEntityTooLarge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var called bool
			var seen, seenAgain []byte
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				seen, _ = io.ReadAll(r.Body)
				rc, err := r.GetBody()
				if err != nil {
					t.Errorf("GetBody: %v", err)
					return
				}
				seenAgain, _ = io.ReadAll(rc)
				w.WriteHeader(http.StatusOK)
			})
			h := (&Verifier{Secret: secret, MaxBodyBytes: tt.max}).Handler(next)

			var rd io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				rd = io.MultiReader(rd) // hides the length from httptest
			}
			req := httptest.NewRequest(http.MethodPost, "/hooks", rd)
			if tt.header != "-" {
				req.Header.Set(Header, tt.header)
			}
			if tt.chunked && req.ContentLength != -1 {
				t.Fatalf("test setup: ContentLength = %d, want -1", req.ContentLength)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", rec.Code, tt.wantStatus, rec.Body)
			}
			if called != tt.wantNext {
				t.Fatalf("next called = %v, want %v", called, tt.wantNext)
			}
			if !called {
				if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("refusal Content-Type = %q, want text/plain", ct)
				}
				return
			}
			if !bytes.Equal(seen, tt.body) || !bytes.Equal(seenAgain, tt.body) {
				t.Errorf("next read %q, then %q; want the raw body %q both times", seen, seenAgain, tt.body)
			}
		})
	}
}

func TestVerifier_Handler_EmptySecretPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Handler with an empty Secret did not panic")
		}
	}()
	(&Verifier{}).Handler(http.NotFoundHandler())
}

func TestErrors_Distinct(t *testing.T) {
	errs := []error{ErrMissing, ErrMalformed, ErrMismatch}
	for i, a := range errs {
		for j, b := range errs {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v matches %v", a, b)
			}
		}
	}
}
