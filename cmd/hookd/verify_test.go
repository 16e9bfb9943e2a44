package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyCommand(t *testing.T) {
	// GitHub's documented example, which hookd's signatures share.
	const (
		secret = "It's a Secret to Everybody"
		body   = "Hello, World!"
		good   = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	)
	dir := t.TempDir()
	file := filepath.Join(dir, "body.json")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		args      []string
		stdin     string
		wantCode  int
		wantOut   string // exact stdout
		wantErrIn string // a part of stderr; "" means stderr must be empty
	}{
		{"Valid/File", []string{"--secret", secret, "--signature", good, file}, "", 0, "valid\n", ""},
		{"Valid/Stdin", []string{"--secret", secret, "--signature", good}, body, 0, "valid\n", ""},
		{"Valid/StdinDash", []string{"--secret=" + secret, "--signature=" + good, "-"}, body, 0, "valid\n", ""},
		{"Valid/UpperCaseHex", []string{"--secret", secret, "--signature", "sha256=" + strings.ToUpper(good[7:]), file}, "", 0, "valid\n", ""},
		{"Invalid/WrongSecret", []string{"--secret", "nope", "--signature", good, file}, "", 1, "", "hookd verify: invalid signature\n"},
		{"Invalid/TamperedBody", []string{"--secret", secret, "--signature", good}, body + "\n", 1, "", "invalid signature"},
		{"Invalid/Malformed", []string{"--secret", secret, "--signature", good[7:], file}, "", 1, "", "invalid signature: want sha256="},
		{"ErrUsage/MissingSecret", []string{"--signature", good, file}, "", 2, "", "--secret is required"},
		{"ErrUsage/MissingSignature", []string{"--secret", secret, file}, "", 2, "", "--signature is required"},
		{"ErrUsage/UnknownFlag", []string{"--secret", secret, "--signature", good, "--bogus", file}, "", 2, "", "flag provided but not defined: -bogus"},
		{"ErrUsage/TwoFiles", []string{"--secret", secret, "--signature", good, file, file}, "", 2, "", "at most one FILE"},
		{"ErrRead/NoSuchFile", []string{"--secret", secret, "--signature", good, filepath.Join(dir, "absent.json")}, "", 2, "", "no such file or directory"},
		{"Help", []string{"-h"}, "", 0, "", "Usage: hookd verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			code := run(context.Background(), append([]string{"verify"}, tt.args...), stdio{strings.NewReader(tt.stdin), &out, &errw})
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, errw.String())
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tt.wantOut)
			}
			switch {
			case tt.wantErrIn == "" && errw.Len() != 0:
				t.Errorf("stderr %q, want nothing", errw.String())
			case !strings.Contains(errw.String(), tt.wantErrIn):
				t.Errorf("stderr %q, want it to contain %q", errw.String(), tt.wantErrIn)
			}
			if tt.wantCode == 1 && strings.Count(errw.String(), "\n") != 1 {
				t.Errorf("stderr %q, want exactly one line", errw.String())
			}
		})
	}
}
