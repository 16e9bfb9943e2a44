package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// sendRun runs `hookd send args…` and returns its exit code and output.
func sendRun(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errw bytes.Buffer
	code = run(context.Background(), append([]string{"send"}, args...), stdio{strings.NewReader(stdin), &out, &errw})
	return code, out.String(), errw.String()
}

// sendFixture is a running hookd with an organization whose webhook takes
// every publishable type and hands each body it receives to the test.
type sendFixture struct {
	m      *Main
	orgID  string
	key    string
	bodies chan []byte
}

func newSendFixture(t *testing.T) *sendFixture {
	t.Helper()
	t.Chdir(t.TempDir()) // no hookd-data/dev-credentials.json to fall back on
	m := testServer(t, func(c *Config) { c.ValidateEvents = true })
	f := &sendFixture{m: m, bodies: make(chan []byte, 10)}
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.bodies <- b
	}))
	t.Cleanup(rc.Close)
	var org struct{ ID string }
	api(t, m.URL(), m.Config.AdminToken, "POST", "/v1/organizations", map[string]any{"name": "Acme"}, 201, &org)
	var k struct{ Key string }
	api(t, m.URL(), m.Config.AdminToken, "POST", "/v1/organizations/"+org.ID+"/api-keys", map[string]any{"name": "ci"}, 201, &k)
	api(t, m.URL(), k.Key, "POST", "/v1/webhooks", map[string]any{"name": "all", "url": rc.URL + "/hook",
		"events": strings.Split(publishableTypes(), ", ")}, 201, nil)
	f.orgID, f.key = org.ID, k.Key
	return f
}

// args are the flags every successful send needs.
func (f *sendFixture) args(more ...string) []string {
	return append([]string{"--server", f.m.URL(), "--admin-token", f.m.Config.AdminToken, "--org", f.orgID}, more...)
}

// received waits for the next delivery body and decodes it.
func (f *sendFixture) received(t *testing.T) (ev struct {
	ID   string
	Type string
	Data map[string]any
}) {
	t.Helper()
	select {
	case b := <-f.bodies:
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("delivery body %s: %v", b, err)
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
	}
	return ev
}

var publishedLine = regexp.MustCompile(`^published (\S+) \((\w+)\) for (org_\w+): 1 delivery\n$`)

// Every publishable type goes out with the catalog's example, made fresh:
// new ids, times ending now with their spacing kept, and data the server
// finds valid against the type's schema (--validate-events is on).
func TestSend_CatalogExamples(t *testing.T) {
	f := newSendFixture(t)
	start := time.Now().Add(-time.Second)
	for _, typ := range strings.Split(publishableTypes(), ", ") {
		t.Run(typ, func(t *testing.T) {
			code, out, errw := sendRun(t, "", f.args("--type", typ)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errw)
			}
			m := publishedLine.FindStringSubmatch(out)
			if m == nil || m[2] != typ || m[3] != f.orgID {
				t.Fatalf("stdout %q, want %q", out, "published evt_… ("+typ+") for "+f.orgID+": 1 delivery")
			}
			ev := f.received(t)
			if ev.ID != m[1] || ev.Type != typ {
				t.Fatalf("delivered %s %s, want %s %s", ev.ID, ev.Type, m[1], typ)
			}
			var example map[string]any
			json.Unmarshal(hookd.LookupEventType(typ).Example, &example)
			var latest time.Time
			for k, v := range ev.Data {
				switch {
				case strings.HasSuffix(k, "_id"):
					if v == example[k] {
						t.Errorf("data.%s = %v, the catalog's value; want a fresh id", k, v)
					}
				case strings.HasSuffix(k, "_at"):
					at, err := time.Parse(time.RFC3339, v.(string))
					if err != nil {
						t.Errorf("data.%s = %v, want an RFC 3339 time", k, v)
					}
					if at.After(latest) {
						latest = at
					}
				}
			}
			if len(ev.Data) != len(example) {
				t.Errorf("data has %d members, the example %d: %v", len(ev.Data), len(example), ev.Data)
			}
			if !latest.IsZero() && (latest.Before(start.Truncate(time.Second)) || latest.After(time.Now())) {
				t.Errorf("latest time in data = %s, want now", latest)
			}
			switch typ {
			case hookd.EventScanCompleted:
				started, _ := time.Parse(time.RFC3339, ev.Data["started_at"].(string))
				completed, _ := time.Parse(time.RFC3339, ev.Data["completed_at"].(string))
				if completed.Sub(started) != 42*time.Minute {
					t.Errorf("scan took %s, want the example's 42m", completed.Sub(started))
				}
			case hookd.EventReportGenerated:
				if url := ev.Data["url"].(string); !strings.HasSuffix(url, "/"+ev.Data["report_id"].(string)) {
					t.Errorf("report url %s does not end with the fresh report_id %s", url, ev.Data["report_id"])
				}
			}
		})
	}
}

// --data replaces the example, inline or from a file; --id makes a second
// send a no-op that says so.
func TestSend_DataAndID(t *testing.T) {
	f := newSendFixture(t)
	file := filepath.Join(t.TempDir(), "data.json")
	os.WriteFile(file, []byte(`{"scan_id":"from-file","target":"a","completed_at":"2026-01-02T03:04:05Z"}`+"\n"), 0o600)

	for _, tc := range []struct {
		name, data, stdin, wantScan string
	}{
		{"Inline", `{"scan_id":"inline","target":"a","completed_at":"2026-01-02T03:04:05Z"}`, "", "inline"},
		{"File", "@" + file, "", "from-file"},
		{"Stdin", "@-", `{"scan_id":"stdin","target":"a","completed_at":"2026-01-02T03:04:05Z"}`, "stdin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errw := sendRun(t, tc.stdin, f.args("--type", "scan_completed", "--data", tc.data)...)
			if code != 0 || !publishedLine.MatchString(out) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errw)
			}
			if ev := f.received(t); ev.Data["scan_id"] != tc.wantScan || ev.Data["completed_at"] != "2026-01-02T03:04:05Z" {
				t.Fatalf("delivered data %v, want scan_id %s as given", ev.Data, tc.wantScan)
			}
		})
	}

	t.Run("ID", func(t *testing.T) {
		code, out, _ := sendRun(t, "", f.args("--type", "scan_started", "--id", "scan-42-started")...)
		m := publishedLine.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("first send: exit %d, stdout %q", code, out)
		}
		f.received(t)
		code, out, errw := sendRun(t, "", f.args("--type", "scan_started", "--id", "scan-42-started")...)
		want := m[1] + " was already published for " + f.orgID + ` (id "scan-42-started"): nothing new sent; it created 1 delivery` + "\n"
		if code != 0 || out != want {
			t.Fatalf("second send: exit %d, stdout %q, stderr %q; want stdout %q", code, out, errw, want)
		}
		select {
		case b := <-f.bodies:
			t.Fatalf("the repeated id was delivered again: %s", b)
		case <-time.After(300 * time.Millisecond):
		}
	})
}

// An organization nobody subscribes for gets the event and the reason it
// went nowhere.
func TestSend_NoDeliveries(t *testing.T) {
	f := newSendFixture(t)
	var org struct{ ID string }
	api(t, f.m.URL(), f.m.Config.AdminToken, "POST", "/v1/organizations", map[string]any{"name": "Quiet"}, 201, &org)
	code, out, errw := sendRun(t, "", "--server", f.m.URL(), "--admin-token", f.m.Config.AdminToken, "--org", org.ID, "--type", "scan_failed")
	if code != 0 || !strings.Contains(out, "for "+org.ID+": 0 deliveries (no active webhook") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errw)
	}
}

// The token may come from HOOKD_ADMIN_TOKEN; the help text never shows it.
func TestSend_AdminTokenFromEnv(t *testing.T) {
	f := newSendFixture(t)
	t.Setenv("HOOKD_ADMIN_TOKEN", f.m.Config.AdminToken)
	code, out, errw := sendRun(t, "", "--server", f.m.URL(), "--org", f.orgID, "--type", "scan_completed")
	if code != 0 || !publishedLine.MatchString(out) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errw)
	}
	_, _, help := sendRun(t, "", "-h")
	if !strings.Contains(help, "Usage: hookd send") || strings.Contains(help, f.m.Config.AdminToken) {
		t.Fatalf("help output shows the token or no usage:\n%s", help)
	}
}

// Run where `hookd serve --dev` keeps its credentials, send needs only the
// type.
func TestSend_DevCredentials(t *testing.T) {
	f := newSendFixture(t)
	cfg := DefaultConfig()
	if err := saveDevState(&cfg, &devState{AdminToken: f.m.Config.AdminToken, CustomerOrgID: f.orgID}); err != nil {
		t.Fatal(err)
	}
	code, out, errw := sendRun(t, "", "--server", f.m.URL(), "--type", "scan_completed")
	if m := publishedLine.FindStringSubmatch(out); code != 0 || m == nil || m[3] != f.orgID {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errw)
	}
}

// Every failure is one line on stderr that says what to check, with exit
// status 2 for usage errors and 1 when the server or network refused.
func TestSend_Errors(t *testing.T) {
	f := newSendFixture(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens there any more: connection refused
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  []string // parts of the one stderr line
	}{
		{"ErrUnknownType", f.args("--type", "scan_exploded"), 2,
			[]string{`unknown event type "scan_exploded"`, "valid types: scan_started, scan_completed, scan_stopped, scan_failed, report_generated"}},
		{"ErrNoType", f.args(), 2, []string{"--type is required", "scan_completed"}},
		{"ErrPing", f.args("--type", "ping"), 2, []string{"/ping"}},
		{"ErrNoOrg", []string{"--server", f.m.URL(), "--admin-token", f.m.Config.AdminToken, "--type", "scan_completed"}, 2, []string{"--org is required"}},
		{"ErrNoToken", []string{"--server", f.m.URL(), "--org", f.orgID, "--type", "scan_completed"}, 2, []string{"HOOKD_ADMIN_TOKEN"}},
		{"ErrDataNotObject", f.args("--type", "scan_completed", "--data", `["a"]`), 2, []string{"--data: want a JSON object"}},
		{"ErrDataFile", f.args("--type", "scan_completed", "--data", "@/nonexistent/data.json"), 2, []string{"--data:", "no such file"}},
		{"ErrServerURL", f.args("--type", "scan_completed", "--server", "ftp://x"), 2, []string{"--server", "http://127.0.0.1:8080"}},
		{"ErrArgument", append(f.args("--type", "scan_completed"), "extra"), 2, []string{`unexpected argument "extra"`}},
		{"ErrWrongToken", []string{"--server", f.m.URL(), "--admin-token", "not-the-admin-token", "--org", f.orgID, "--type", "scan_completed"}, 1,
			[]string{"401 unauthenticated", "check --admin-token / HOOKD_ADMIN_TOKEN"}},
		{"ErrOrganizationKey", []string{"--server", f.m.URL(), "--admin-token", f.key, "--org", f.orgID, "--type", "scan_completed"}, 1,
			[]string{"403 permission_denied", "not an organization API key"}},
		{"ErrUnknownOrg", []string{"--server", f.m.URL(), "--admin-token", f.m.Config.AdminToken, "--org", "org_nope", "--type", "scan_completed"}, 1,
			[]string{"404 not_found", "check --org"}},
		{"ErrInvalidData", f.args("--type", "scan_completed", "--data", `{"scan_id":1}`), 1, []string{"400 invalid_argument", "field data"}},
		{"ErrConnectionRefused", append(f.args("--type", "scan_completed"), "--server", closed.URL), 1,
			[]string{"connection refused", "is hookd serve running at " + closed.URL + "?"}},
		{"ErrNotHookd", append(f.args("--type", "scan_completed"), "--server", other.URL), 1,
			[]string{"is --server the address of hookd serve?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errw := sendRun(t, "", tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, errw)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if strings.Count(errw, "\n") != 1 || !strings.HasPrefix(errw, "hookd send: ") {
				t.Errorf("stderr %q, want one line starting with %q", errw, "hookd send: ")
			}
			for _, part := range tt.wantErr {
				if !strings.Contains(errw, part) {
					t.Errorf("stderr %q, want it to contain %q", errw, part)
				}
			}
		})
	}
	select {
	case b := <-f.bodies:
		t.Fatalf("a failed send was delivered: %s", b)
	default:
	}
}
