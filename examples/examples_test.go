// Package examples_test runs every example receiver against deliveries made
// by a real hookd (API, SQLite store and dispatcher, in this process), so
// that the code docs/receiving.md points to is known to work.
package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/client"
	"github.com/hookd-dev/hookd/dispatch"
	"github.com/hookd-dev/hookd/egress"
	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/sqlite"
	"github.com/hookd-dev/hookd/web"
)

const adminToken = "admin-token-0123456789"

// example is one receiver: the program to run and, when it is missing, the
// Debian package that provides it.
type example struct {
	name    string
	command func(t *testing.T) []string
	apt     string
}

func examples() []example {
	interpreter := func(name string, args ...string) func(*testing.T) []string {
		return func(*testing.T) []string { return append([]string{name}, args...) }
	}
	return []example{
		{"go", buildGo, ""},
		{"python", interpreter("python3", "python/receiver.py"), "python3"},
		{"node", interpreter("node", "node/receiver.js"), "nodejs"},
		{"ruby", interpreter("ruby", "ruby/receiver.rb"), "ruby"},
	}
}

// Each example verifies the signature, accepts a delivery once, answers a
// redelivery as a duplicate and refuses a wrong or missing signature with
// 401, as hookd records it.
func TestExamples(t *testing.T) {
	base := startHookd(t)
	for _, ex := range examples() {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			argv := ex.command(t)
			if _, err := exec.LookPath(argv[0]); err != nil {
				t.Skipf("%s not installed: apt-get install %s", argv[0], ex.apt)
			}
			ctx := context.Background()
			admin := client.New(base, adminToken)
			org, err := admin.CreateOrganization(ctx, client.OrganizationInput{Name: "examples " + ex.name})
			if err != nil {
				t.Fatal(err)
			}
			key, err := admin.CreateAPIKey(ctx, org.ID, "examples")
			if err != nil {
				t.Fatal(err)
			}
			tenant := client.New(base, key.Key)
			const secret = "whsec-examples-0123"
			rc := startReceiver(t, argv, secret)

			good := createWebhook(t, tenant, rc.url, hookd.EventScanCompleted, client.Ptr(secret))
			ev, _, err := admin.Publish(ctx, client.EventInput{OrganizationID: org.ID, Type: hookd.EventScanCompleted,
				Data: hookd.LookupEventType(hookd.EventScanCompleted).Example})
			if err != nil {
				t.Fatal(err)
			}
			dlv := waitDelivery(t, tenant, good.ID, func(d *client.DeliveryDetail) bool { return d.Status == "delivered" })
			rc.waitFor(t, "accepted "+dlv.ID+" scan_completed")
			rc.waitFor(t, "handled "+ev.ID+" scan_completed for "+org.ID)

			// A redelivery carries the same delivery id: the receiver says 200
			// again but does not do the work twice.
			if _, err := tenant.Redeliver(ctx, good.ID, dlv.ID); err != nil {
				t.Fatal(err)
			}
			waitDelivery(t, tenant, good.ID, func(d *client.DeliveryDetail) bool {
				return d.Status == "delivered" && len(d.Attempts) == 2
			})
			rc.waitFor(t, "duplicate "+dlv.ID)
			if n := strings.Count(rc.stdout.String(), "accepted "+dlv.ID); n != 1 {
				t.Errorf("the receiver accepted %s %d times, want once:\n%s", dlv.ID, n, rc.stdout.String())
			}

			// A webhook whose secret the receiver does not know, and one with
			// no secret at all: every attempt is refused with 401.
			wrong := createWebhook(t, tenant, rc.url, hookd.EventScanFailed, client.Ptr("not-the-receivers-secret"))
			unsigned := createWebhook(t, tenant, rc.url, hookd.EventScanFailed, nil)
			if _, _, err := admin.Publish(ctx, client.EventInput{OrganizationID: org.ID, Type: hookd.EventScanFailed,
				Data: hookd.LookupEventType(hookd.EventScanFailed).Example}); err != nil {
				t.Fatal(err)
			}
			for _, wh := range []*client.Webhook{wrong, unsigned} {
				d := waitDelivery(t, tenant, wh.ID, func(d *client.DeliveryDetail) bool { return d.Status == "failed" })
				if len(d.Attempts) == 0 {
					t.Fatalf("webhook %s: failed without attempts", wh.Name)
				}
				for _, a := range d.Attempts {
					if a.StatusCode == nil || *a.StatusCode != 401 {
						t.Errorf("webhook %s: want every attempt answered 401; got %s", wh.Name, describe(d))
						break
					}
				}
				if strings.Contains(rc.stdout.String(), d.ID) {
					t.Errorf("webhook %s: the receiver printed %s on stdout:\n%s", wh.Name, d.ID, rc.stdout.String())
				}
			}
		})
	}
}

// Without a secret an example refuses to start: an empty key would
// authenticate anything.
func TestExamples_NoSecret(t *testing.T) {
	for _, ex := range examples() {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			argv := ex.command(t)
			if _, err := exec.LookPath(argv[0]); err != nil {
				t.Skipf("%s not installed: apt-get install %s", argv[0], ex.apt)
			}
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "HOOKD_WEBHOOK_SECRET=", "HOST=127.0.0.1", "PORT=0")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "HOOKD_WEBHOOK_SECRET") {
				t.Fatalf("started without a secret (err %v):\n%s", err, out)
			}
		})
	}
}

// startHookd runs the API on an httptest server and the dispatcher, with a
// temporary SQLite store, private http:// targets allowed and one quick
// retry, and returns the API's base URL.
func startHookd(t *testing.T) string {
	t.Helper()
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	policy := egress.Policy{AllowPrivate: true, AllowHTTP: true}
	d := dispatch.New(dispatch.Config{
		Store:  db,
		Sender: egress.NewClient(egress.Options{Policy: policy, Timeout: 2 * time.Second}),
		Retry:  dispatch.RetryPolicy{Schedule: []time.Duration{100 * time.Millisecond}},
	})
	d.Start()
	srv := httptest.NewServer(web.New(web.Config{Store: db, AdminToken: adminToken, AllowHTTP: true, Targets: policy, Notify: d.Notify}))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Stop(ctx)
		db.Close()
	})
	return srv.URL
}

// buildGo builds the Go example once per call into a temporary directory,
// so that the test runs the program rather than `go run`'s parent process.
func buildGo(t *testing.T) []string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "receiver")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(gobin, "build", "-o", bin, "./go").CombinedOutput(); err != nil {
		t.Fatalf("go build ./go: %v\n%s", err, out)
	}
	return []string{bin}
}

func createWebhook(t *testing.T, tenant *client.Client, url, event string, secret *string) *client.Webhook {
	t.Helper()
	name := event + " signed"
	if secret == nil {
		name = event + " unsigned"
	}
	wh, err := tenant.CreateWebhook(context.Background(), client.WebhookInput{
		Name: &name, URL: client.Ptr(url + "/hook"), Events: []string{event}, Secret: secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

// waitDelivery polls the webhook's only delivery until done says so.
func waitDelivery(t *testing.T, tenant *client.Client, webhookID string, done func(*client.DeliveryDetail) bool) *client.DeliveryDetail {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	var last *client.DeliveryDetail
	for time.Now().Before(deadline) {
		page, err := tenant.ListDeliveries(ctx, webhookID, "", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Data) > 1 {
			t.Fatalf("webhook %s has %d deliveries, want 1", webhookID, len(page.Data))
		}
		if len(page.Data) == 1 {
			if last, err = tenant.GetDelivery(ctx, webhookID, page.Data[0].ID); err != nil {
				t.Fatal(err)
			}
			if done(last) {
				return last
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("webhook %s: delivery not as expected within 10s; last seen: %s", webhookID, describe(last))
	return nil
}

// describe sums up a delivery for a failure message: its status and the
// answer of each attempt.
func describe(d *client.DeliveryDetail) string {
	if d == nil {
		return "no delivery"
	}
	var b strings.Builder
	b.WriteString(d.ID + " " + d.Status)
	for _, a := range d.Attempts {
		switch {
		case a.StatusCode != nil:
			fmt.Fprintf(&b, ", attempt %d: %d", a.Number, *a.StatusCode)
		default:
			fmt.Fprintf(&b, ", attempt %d: %s", a.Number, a.Error)
		}
	}
	return b.String()
}

// receiver is a running example.
type receiver struct {
	url            string
	stdout, stderr *syncBuffer
}

// startReceiver runs argv with the secret on a port of its choosing (PORT=0)
// and waits until it says where it listens.
func startReceiver(t *testing.T, argv []string, secret string) *receiver {
	t.Helper()
	listening := regexp.MustCompile(`listening on (http://\S+)`)
	rc := &receiver{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "HOOKD_WEBHOOK_SECRET="+secret, "HOST=127.0.0.1", "PORT=0")
	cmd.Stdout, cmd.Stderr = rc.stdout, rc.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s stdout:\n%s\nstderr:\n%s", argv[0], rc.stdout, rc.stderr)
		}
	})
	deadline := time.After(15 * time.Second)
	for {
		if m := listening.FindStringSubmatch(rc.stdout.String()); m != nil {
			rc.url = m[1]
			return rc
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("%s exited before listening (%v):\n%s%s", argv[0], err, rc.stdout, rc.stderr)
		case <-deadline:
			t.Fatalf("%s did not print %q within 15s:\n%s%s", argv[0], "listening on …", rc.stdout, rc.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitFor waits until the receiver has printed line on standard output.
func (rc *receiver) waitFor(t *testing.T, line string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !containsLine(rc.stdout.String(), line) {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver did not print %q within 5s; stdout:\n%s\nstderr:\n%s", line, rc.stdout, rc.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func containsLine(out, line string) bool {
	for l := range strings.Lines(out) {
		if strings.TrimRight(l, "\r\n") == line {
			return true
		}
	}
	return false
}

// syncBuffer is a bytes.Buffer that a process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
