package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/client"
)

// runSend is `hookd send`: it publishes one event of a catalog type to an
// organization, through the same API and client the platform uses, so that
// a developer can trigger real deliveries without writing a publisher. The
// data defaults to the catalog's example with fresh ids and times.
func runSend(ctx context.Context, args []string, std stdio) error {
	fs := flag.NewFlagSet("hookd send", flag.ContinueOnError)
	fs.SetOutput(std.err)
	typ := fs.String("type", "", "event `type`, one of: "+publishableTypes())
	org := fs.String("org", "", "`id` of the organization the event happened in (org_…)")
	server := fs.String("server", "http://127.0.0.1:8080", "base `URL` of hookd serve")
	// Empty default: the help text must not print a token taken from the
	// environment.
	token := fs.String("admin-token", "", "the server's admin `token` (default $HOOKD_ADMIN_TOKEN)")
	id := fs.String("id", "", "event `id`; publishing the same id again for the organization sends nothing new")
	data := fs.String("data", "", "the event's data: a JSON object, or @FILE to read it from FILE (@- for standard input)\n(default: the catalog's example for --type with fresh ids and times)")
	fs.Usage = func() {
		fmt.Fprint(std.err, `Usage: hookd send --type TYPE --org ORG [--server URL] [--admin-token T] [--id ID] [--data JSON|@FILE]

Publishes one event through the API (POST /v1/events), as the platform
would, and prints its id and how many deliveries it created. Every active
webhook of the organization subscribed to TYPE gets one, and so does every
such webhook of its partner that includes customers' events.

After 'hookd serve --dev', run from the same directory, --admin-token and
--org default to the dev admin token and customer organization.

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
	if fs.NArg() > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("unexpected argument %q (flags take a value: --type scan_completed)", fs.Arg(0))}
	}
	if *token == "" {
		*token = os.Getenv("HOOKD_ADMIN_TOKEN")
	}
	if *token == "" || *org == "" {
		fillFromDev(token, org)
	}

	t := hookd.LookupEventType(*typ)
	switch {
	case *typ == "":
		return &exitError{code: 2, msg: "--type is required, one of: " + publishableTypes()}
	case *typ == hookd.EventPing:
		return &exitError{code: 2, msg: "ping events are not published: send one to a webhook with POST /v1/webhooks/{id}/ping or the portal's Ping button"}
	case t == nil:
		return &exitError{code: 2, msg: fmt.Sprintf("unknown event type %q; valid types: %s", *typ, publishableTypes())}
	case *org == "":
		return &exitError{code: 2, msg: "--org is required: the id (org_…) of the organization the event happened in"}
	case *token == "":
		return &exitError{code: 2, msg: "--admin-token (or HOOKD_ADMIN_TOKEN) is required: the admin token hookd serve was started with"}
	}
	base, err := serverURL(*server)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}

	var body json.RawMessage
	if *data == "" {
		body = sampleData(t, time.Now())
	} else if body, err = readData(*data, std.in); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}

	ev, created, err := client.New(base, *token).Publish(ctx, client.EventInput{
		ID: *id, OrganizationID: *org, Type: *typ, Data: body,
	})
	if err != nil {
		return sendError(err, base)
	}
	if !created {
		fmt.Fprintf(std.out, "%s was already published for %s (id %q): nothing new sent; it created %s\n",
			ev.ID, ev.OrganizationID, *id, plural(ev.Deliveries, "delivery", "deliveries"))
		return nil
	}
	fmt.Fprintf(std.out, "published %s (%s) for %s: %s", ev.ID, ev.Type, ev.OrganizationID, plural(ev.Deliveries, "delivery", "deliveries"))
	if ev.Deliveries == 0 {
		fmt.Fprintf(std.out, " (no active webhook of the organization, or of its partner with customers' events included, subscribes to %s)", ev.Type)
	}
	fmt.Fprintln(std.out)
	return nil
}

// publishableTypes lists the catalog's types that can be published: all
// but ping.
func publishableTypes() string {
	var names []string
	for _, t := range hookd.Catalog() {
		if t.Name != hookd.EventPing {
			names = append(names, t.Name)
		}
	}
	return strings.Join(names, ", ")
}

// fillFromDev takes what is missing of the admin token and organization
// from the credentials `hookd serve --dev` keeps in the current directory,
// so that a first try needs no copying. Without that file it does nothing.
func fillFromDev(token, org *string) {
	cfg := DefaultConfig()
	st, err := loadDevState(&cfg)
	if err != nil {
		return
	}
	if *token == "" {
		*token = st.AdminToken
	}
	if *org == "" {
		*org = st.CustomerOrgID
	}
}

// serverURL checks --server, accepting host:port without a scheme.
func serverURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--server %q: want the base URL of hookd serve, e.g. http://127.0.0.1:8080", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// readData reads --data: JSON text, or @FILE, or @- for standard input. It
// checks for a JSON object here so that a typo gets a local answer.
func readData(arg string, stdin io.Reader) (json.RawMessage, error) {
	b := []byte(arg)
	if name, ok := strings.CutPrefix(arg, "@"); ok {
		var err error
		if name == "-" {
			b, err = io.ReadAll(stdin)
		} else {
			b, err = os.ReadFile(name)
		}
		if err != nil {
			return nil, fmt.Errorf("--data: %v", err)
		}
	}
	trimmed := bytes.TrimSpace(b)
	if !json.Valid(trimmed) || len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New(`--data: want a JSON object such as '{"scan_id":"scn_1"}', or @FILE`)
	}
	return trimmed, nil
}

// sampleData is t's catalog example made to look new: each id (a string
// member named *_id, such as scan_id) gets a fresh value, also where it
// appears inside other strings (a report's URL), and the times (members
// named *_at) move so that the latest is now and their spacing is kept —
// a scan still completes 42 minutes after it started. The example's text is
// edited in place, so the members keep the catalog's order.
func sampleData(t *hookd.EventType, now time.Time) json.RawMessage {
	var example map[string]any
	if err := json.Unmarshal(t.Example, &example); err != nil {
		return t.Example // the catalog is fixed at build time; its tests parse every example
	}
	ids := map[string]string{}
	var times []time.Time
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		for k, v := range m {
			switch v := v.(type) {
			case map[string]any:
				walk(v)
			case string:
				if at, err := time.Parse(time.RFC3339, v); err == nil && strings.HasSuffix(k, "_at") {
					times = append(times, at)
				} else if prefix, _, ok := strings.Cut(v, "_"); ok && strings.HasSuffix(k, "_id") {
					ids[v] = hookd.NewID(prefix + "_")
				}
			}
		}
	}
	walk(example)

	var pairs []string
	for old, fresh := range ids {
		pairs = append(pairs, old, fresh)
	}
	if len(times) > 0 {
		latest := times[0]
		for _, at := range times[1:] {
			if at.After(latest) {
				latest = at
			}
		}
		shift := now.UTC().Truncate(time.Second).Sub(latest)
		for _, at := range times {
			pairs = append(pairs, `"`+at.Format(time.RFC3339)+`"`, `"`+at.Add(shift).UTC().Format(time.RFC3339)+`"`)
		}
	}
	return json.RawMessage(strings.NewReplacer(pairs...).Replace(string(t.Example)))
}

// sendError turns a failed publish into one line with what to check.
func sendError(err error, server string) error {
	var apiErr *client.Error
	var netErr net.Error
	switch {
	case errors.As(err, &apiErr):
		switch {
		case apiErr.Status == 401:
			return fmt.Errorf("%s refused the admin token (401 %s): check --admin-token / HOOKD_ADMIN_TOKEN", server, apiErr.Code)
		case apiErr.Status == 403:
			return fmt.Errorf("%s refused the token (403 %s): --admin-token must be the server's admin token, not an organization API key", server, apiErr.Code)
		case apiErr.Status == 404 && apiErr.Field == "organization_id":
			return fmt.Errorf("no such organization on %s (404 %s): check --org", server, apiErr.Code)
		case apiErr.Code == "unknown":
			return fmt.Errorf("%s answered %d without a hookd error body: is --server the address of hookd serve?", server, apiErr.Status)
		case apiErr.Field != "":
			return fmt.Errorf("%s refused the event (%d %s): %s (field %s)", server, apiErr.Status, apiErr.Code, apiErr.Message, apiErr.Field)
		default:
			return fmt.Errorf("%s refused the event (%d %s): %s", server, apiErr.Status, apiErr.Code, apiErr.Message)
		}
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to %s: connection refused; is hookd serve running at %s? (set --server)", server, server)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case errors.As(err, &netErr):
		return fmt.Errorf("cannot reach %s: %v", server, netErr)
	default:
		return fmt.Errorf("publishing to %s: %v", server, err)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
