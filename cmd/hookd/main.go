// Command hookd is the webhook service: one binary whose subcommands run the
// server, migrate its store, and help developers receive and verify
// deliveries. Each subcommand lives in its own file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/hookd-dev/hookd"
)

// stdio is what a subcommand reads from and writes to; tests pass buffers.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// command runs one subcommand with the arguments after its name.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, io stdio) error
}

func commands() []command {
	return []command{
		{"serve", "run the API, the portal and the dispatcher", runServe},
		{"migrate", "bring the store's schema up to date and exit", runMigrate},
		{"rotate-key", "re-encrypt every webhook secret under a new --secret-key", runRotateKey},
		{"listen", "a local receiver that prints and verifies deliveries", runListen},
		{"verify", "verify a delivery body's signature (exit 0 valid, 1 invalid)", runVerify},
		{"send", "publish a sample event of a catalog type, to trigger real deliveries", runSend},
		{"bench", "measure ingest, deliveries/s, latency and memory on this machine", runBench},
	}
}

func main() {
	// `go install …@vX.Y.Z` records the module version in the binary; use
	// it when the build did not inject one with -ldflags -X.
	if info, ok := debug.ReadBuildInfo(); ok && hookd.Version == hookd.DevVersion {
		if v := info.Main.Version; v != "" && v != "(devel)" {
			hookd.Version = strings.TrimPrefix(v, "v")
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr}))
}

// exitError ends the process with a chosen code and, unless msg is empty,
// a one-line message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// errUsage is returned after a FlagSet already printed its own message.
var errUsage = &exitError{code: 2}

func run(ctx context.Context, args []string, io stdio) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(io.err)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintln(io.out, "hookd", hookd.Version)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], io)
		var ee *exitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			if ee.msg != "" {
				fmt.Fprintln(io.err, "hookd "+c.name+": "+ee.msg)
			}
			return ee.code
		default:
			fmt.Fprintln(io.err, "hookd "+c.name+": "+err.Error())
			return 1
		}
	}
	fmt.Fprintf(io.err, "hookd: unknown command %q (run 'hookd help' for the list)\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "hookd — signed, retried, logged webhook deliveries.")
	fmt.Fprintln(w, "\nUsage: hookd <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'hookd <command> -h' for a command's flags. 'hookd --version' prints the version.")
}
