package signature_test

import (
	"bytes"
	"testing"

	"github.com/hookd-dev/hookd/signature"
)

// Signing runs once per attempt on the dispatcher's hot path.
func BenchmarkSign1KiB(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		signature.Sign("whsec_benchmark_secret", body)
	}
}

func BenchmarkVerify1KiB(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	sig := signature.Sign("whsec_benchmark_secret", body)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := signature.Verify("whsec_benchmark_secret", body, sig); err != nil {
			b.Fatal(err)
		}
	}
}
