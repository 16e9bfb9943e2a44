package seal_test

import (
	"strings"
	"testing"

	"github.com/hookd-dev/hookd/seal"
)

func TestKey_SealOpen(t *testing.T) {
	k, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"", "s", "whsec_" + strings.Repeat("x", 250)} {
		sealed := k.Seal(plain)
		if len(plain) > 8 && strings.Contains(sealed, plain) {
			t.Fatalf("sealed value contains the plaintext")
		}
		got, err := k.Open(sealed)
		if err != nil || got != plain {
			t.Fatalf("Open(Seal(%q)) = %q, %v", plain, got, err)
		}
	}
	if a, b := k.Seal("same"), k.Seal("same"); a == b {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
}

func TestKey_OpenRefusesOtherKeyAndTampering(t *testing.T) {
	k1, _ := seal.ParseKey(seal.GenerateKey())
	k2, _ := seal.ParseKey(seal.GenerateKey())
	sealed := k1.Seal("secret")
	if _, err := k2.Open(sealed); err != seal.ErrOpen {
		t.Fatalf("open under another key: err = %v, want ErrOpen", err)
	}
	tampered := sealed[:len(sealed)-2] + "AA"
	if _, err := k1.Open(tampered); err != seal.ErrOpen {
		t.Fatalf("open tampered: err = %v, want ErrOpen", err)
	}
	if _, err := k1.Open("plain-text"); err != seal.ErrOpen {
		t.Fatalf("open unsealed: err = %v, want ErrOpen", err)
	}
}

func TestParseKey_Errors(t *testing.T) {
	for _, s := range []string{"", "not base64!!", "c2hvcnQ=" /* "short" */} {
		if _, err := seal.ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) succeeded", s)
		}
	}
}
