package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hookd-dev/hookd/signature"
)

// runVerify is `hookd verify --secret S --signature H [FILE]`: it checks a
// delivery body (FILE, or standard input when FILE is absent or "-")
// against its X-CG-Hook-Signature value. Exit status 0 and "valid" when the
// signature matches; 1 when it does not; 2 for usage and read errors.
func runVerify(_ context.Context, args []string, std stdio) error {
	fs := flag.NewFlagSet("hookd verify", flag.ContinueOnError)
	fs.SetOutput(std.err)
	secret := fs.String("secret", "", "the webhook's `secret` (required)")
	sig := fs.String("signature", "", "the X-CG-Hook-Signature `value`, sha256=… (required)")
	fs.Usage = func() {
		fmt.Fprint(std.err, `Usage: hookd verify --secret S --signature H [FILE]

Checks that H is the signature of the body in FILE (standard input when FILE
is absent or "-") under the secret S: exit status 0 and "valid" when it is,
1 when it is not, 2 on a usage or read error. The body must be the exact
bytes received, before any JSON parsing.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	switch {
	case *secret == "":
		return &exitError{code: 2, msg: "--secret is required"}
	case *sig == "":
		return &exitError{code: 2, msg: "--signature is required"}
	case fs.NArg() > 1:
		return &exitError{code: 2, msg: "at most one FILE (flags go before it)"}
	}

	var body []byte
	var err error
	if name := fs.Arg(0); name == "" || name == "-" {
		body, err = io.ReadAll(std.in)
	} else {
		body, err = os.ReadFile(name)
	}
	if err != nil {
		return &exitError{code: 2, msg: err.Error()} // e.g. "open body.json: no such file or directory"
	}

	switch err := signature.Verify(*secret, body, *sig); err {
	case nil:
		fmt.Fprintln(std.out, "valid")
		return nil
	case signature.ErrMalformed:
		return &exitError{code: 1, msg: "invalid signature: want sha256= followed by 64 hex digits"}
	default:
		return &exitError{code: 1, msg: "invalid signature"}
	}
}
