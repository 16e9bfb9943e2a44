package web

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/hookd-dev/hookd/dispatch"
	"github.com/hookd-dev/hookd/egress"
	"github.com/hookd-dev/hookd/signature"
)

// TestPortalBrowser is a person's first hour with the portal, in a real
// browser (Debian's chromium, driven by chromedp) against a real server,
// store, dispatcher and receiver: sign in, find My Settings → Webhooks,
// add a webhook (after a validation error), send a test event and see it
// delivered, redeliver it, deactivate, have a cross-site form refused,
// delete, sign out. Every step checks what the page shows.
//
// With HOOKD_SCREENSHOTS=docs/images (a directory, relative to the
// repository's root) it also saves a screenshot of each page for
// docs/portal.md:
//
//	HOOKD_SCREENSHOTS=docs/images go test ./web -run TestPortalBrowser
func TestPortalBrowser(t *testing.T) {
	exe := findBrowser()
	if exe == "" {
		t.Skip("no chromium/chrome found: install Debian's chromium to run the portal browser tests")
	}
	shots := screenshotDir(t)

	// The receiver: a webhook endpoint on 127.0.0.1 that keeps what it gets.
	rcv := &receiver{}
	rs := httptest.NewServer(rcv)
	t.Cleanup(rs.Close)

	// hookd: the real store, a real dispatcher woken by the portal.
	store := newTestStore(t)
	d := dispatch.New(dispatch.Config{
		Store:  store,
		Sender: egress.NewClient(egress.Options{Policy: egress.Policy{AllowPrivate: true, AllowHTTP: true}, Timeout: 2 * time.Second}),
		Retry:  dispatch.RetryPolicy{Schedule: []time.Duration{50 * time.Millisecond}},
	})
	d.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Stop(ctx)
	})
	ts := newTestServer(t, store, withNotify(d.Notify))
	partner := ts.createOrg("Northwind Security", "")
	ts.createOrg("Contoso", partner.org.ID)
	ts.createUser(partner.org.ID, "ada@northwind.example")

	// Another site, whose page posts a form to hookd.
	var target atomic.Value // the address its form posts to, once the webhook exists
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>You won</title><h1>You won a prize</h1>
<form method="post" action="%s"><button type="submit">Claim your prize</button></form>`, html.EscapeString(target.Load().(string)))
	}))
	t.Cleanup(evil.Close)

	b := newBrowser(t, exe, ts.URL, shots)

	var webhookURL, secret string
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"SignIn", func(t *testing.T) {
			b.open("/settings/webhooks")
			b.wantText("Sign in to hookd")
			b.typeInto("Email", "ada@northwind.example")
			b.typeInto("Password", "not my password")
			b.submit("Sign in", http.StatusUnprocessableEntity)
			b.wantText("Wrong email or password.")
			b.screenshot("login")
			b.typeInto("Password", testPassword)
			b.submit("Sign in", http.StatusOK)
			b.wantText("Webhooks", "No webhooks yet.", "ada@northwind.example", "Northwind Security")
		}},
		{"MySettingsWebhooks", func(t *testing.T) {
			b.follow("My Settings", http.StatusOK)
			b.wantText("Account", "ada@northwind.example", "Partner", "Yes")
			b.screenshot("settings")
			b.follow("Webhooks", http.StatusOK)
			b.wantText("No webhooks yet.", "Add Webhook")
		}},
		{"AddWebhookValidationError", func(t *testing.T) {
			b.follow("Add Webhook", http.StatusOK)
			b.wantText("Include Customers' Events", "A scan finished; the summary counts its findings by severity.")
			b.screenshot("add-webhook")
			b.typeInto("Name", "Ticketing")
			b.typeInto("Target URL", "ftp://"+strings.TrimPrefix(rs.URL, "http://")+"/hook")
			b.tick("scan_completed")
			b.tick("scan_failed")
			b.click("Generate")
			secret = b.value("Secret (optional)")
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(secret) {
				t.Fatalf("Generate filled in %q, want 64 hex characters", secret)
			}
			b.submit("Add Webhook", http.StatusUnprocessableEntity)
			if got := b.text("#url-error"); !strings.Contains(got, "Target URL must be an absolute https:// URL") {
				t.Fatalf("the error next to Target URL reads %q", got)
			}
			if b.value("Name") != "Ticketing" || b.value("Secret (optional)") != secret || !b.isTicked("scan_failed") {
				t.Fatal("the typed values are lost")
			}
			b.screenshot("add-webhook-error")
		}},
		{"AddWebhook", func(t *testing.T) {
			webhookURL = rs.URL + "/hook"
			b.typeInto("Target URL", webhookURL)
			b.tick("Include Customers' Events")
			b.submit("Add Webhook", http.StatusOK)
			b.wantText("Webhook “Ticketing” added.", "Ticketing", webhookURL, "scan_completed", "scan_failed", "+ customers", "Active", "No deliveries yet")
		}},
		{"SendTestEvent", func(t *testing.T) {
			b.follow("Ticketing", http.StatusOK)
			b.wantText("Recent deliveries", "No deliveries yet.")
			b.submit("Send test event", http.StatusOK)
			b.wantText("Test event sent.")
			b.reloadUntil("Delivered")
			b.wantText("ping", "200 OK")
			b.screenshot("webhook")

			got := rcv.wait(t, 1)
			if got[0].Header.Get("X-CG-Hook-Event") != "ping" {
				t.Fatalf("the receiver got %v", got[0].Header)
			}
			if err := signature.Verify(secret, got[0].Body, got[0].Header.Get("X-CG-Hook-Signature")); err != nil {
				t.Fatalf("the generated secret does not verify the delivery: %v", err)
			}
			b.follow("Webhooks", http.StatusOK)
			b.wantText("Ticketing", "Delivered")
			b.screenshot("webhooks")
			b.screenshotMobile("webhooks-mobile")
		}},
		{"Redeliver", func(t *testing.T) {
			b.follow("Ticketing", http.StatusOK)
			b.follow("ping", http.StatusOK)
			b.wantText("Attempt 1", "200 OK", "X-CG-Hook-Signature", "X-CG-Hook-Delivery", `"type": "ping"`)
			b.submit("Redeliver", http.StatusOK)
			b.wantText("Redelivery queued")
			b.reloadUntil("Attempt 2")
			b.wantText("Delivered")
			b.screenshot("delivery")
			got := rcv.wait(t, 2)
			if id := got[0].Header.Get("X-CG-Hook-Delivery"); id == "" || got[1].Header.Get("X-CG-Hook-Delivery") != id || got[1].Header.Get("X-CG-Hook-Attempt") != "2" {
				t.Fatalf("the redelivery is not the same delivery's attempt 2: %v / %v", got[0].Header, got[1].Header)
			}
		}},
		{"DisabledAfterFailuresThenReEnabled", func(t *testing.T) {
			// The receiver goes down; after 20 failed deliveries in a row
			// (the default) hookd disables the webhook and says why.
			rcv.failing.Store(true)
			for i := range 20 {
				if res, _ := ts.publish(partner.org.ID, "scan_completed", map[string]any{"id": fmt.Sprintf("evt_down_%d", i)}); res.Status != http.StatusAccepted {
					t.Fatalf("publish: %d %s", res.Status, res.Body)
				}
			}
			b.follow("Ticketing", http.StatusOK)
			b.reloadUntil("hookd disabled this webhook")
			b.wantText("Disabled", "disabled automatically after 20 consecutive failed deliveries; last attempt: HTTP 503", "Re-enable")
			b.screenshot("webhook-disabled")
			b.follow("Webhooks", http.StatusOK)
			b.wantText("Ticketing", "Disabled")

			// It is back: re-enable, and send again what failed meanwhile.
			rcv.failing.Store(false)
			before := rcv.count()
			b.follow("Ticketing", http.StatusOK)
			b.tick("Also redeliver the deliveries that failed while it was disabled")
			b.submit("Re-enable", http.StatusOK)
			b.wantText("Webhook enabled again", "20 failed deliveries are being sent again.", "Active")
			rcv.wait(t, before+20)
			b.follow("Webhooks", http.StatusOK)
		}},
		{"Deactivate", func(t *testing.T) {
			b.follow("Ticketing", http.StatusOK)
			b.submit("Deactivate", http.StatusOK)
			b.wantText("Webhook deactivated", "Inactive", "This webhook is inactive", "Activate")
		}},
		{"CrossSitePostRefused", func(t *testing.T) {
			page, _, _ := strings.Cut(b.location(), "#")
			target.Store(page + "/delete")
			b.openURL(evil.URL)
			b.wantText("You won a prize")
			b.submit("Claim your prize", http.StatusForbidden)
			b.wantText("Cross-site request refused")
			b.screenshot("cross-site-refused")
			if n := len(ts.listWebhooks(partner.key)); n != 1 {
				t.Fatalf("%d webhooks after the cross-site post", n)
			}
		}},
		{"Delete", func(t *testing.T) {
			b.open("/settings/webhooks")
			b.follow("Ticketing", http.StatusOK)
			b.follow("Delete", http.StatusOK)
			b.wantText("Delete “Ticketing”?", "This cannot be undone.")
			b.screenshot("delete")
			b.submit("Delete webhook", http.StatusOK)
			b.wantText("Webhook “Ticketing” deleted.", "No webhooks yet.")
		}},
		{"SignOut", func(t *testing.T) {
			b.submit("Sign out", http.StatusOK)
			b.wantText("You have signed out.", "Sign in to hookd")
			b.open("/settings/webhooks")
			b.wantText("Sign in to hookd")
		}},
	}
	for _, step := range steps {
		if !t.Run(step.name, func(t *testing.T) { b.t = t; step.run(t) }) {
			return // each step starts where the previous one ended
		}
	}
}

// findBrowser returns the path of a Chromium or Chrome, or "".
func findBrowser() string {
	if p := os.Getenv("HOOKD_BROWSER"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotDir is $HOOKD_SCREENSHOTS made absolute against the
// repository's root, or "" when no screenshots are wanted.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("HOOKD_SCREENSHOTS")
	if dir == "" || filepath.IsAbs(dir) {
		return dir
	}
	root, err := filepath.Abs("..") // tests run in web/
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, dir)
}

func withNotify(f func()) serverOption { return func(c *Config) { c.Notify = f } }

// receiver is a webhook endpoint that keeps every request, and answers
// 503 while failing is set.
type receiver struct {
	mu      sync.Mutex
	got     []delivered
	failing atomic.Bool
}

type delivered struct {
	Header http.Header
	Body   []byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, delivered{r.Header, body})
	rc.mu.Unlock()
	if rc.failing.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "thanks")
}

// count returns how many requests arrived so far.
func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// wait returns the first n requests, failing after 10 s.
func (rc *receiver) wait(t *testing.T, n int) []delivered {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		rc.mu.Lock()
		got := append([]delivered{}, rc.got...)
		rc.mu.Unlock()
		if len(got) >= n {
			return got
		}
	}
	t.Fatalf("the receiver got fewer than %d requests", n)
	return nil
}

// browser is one tab of a headless Chromium, and the steps a person takes
// in it. Its methods fail the current step's test.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

func newBrowser(t *testing.T, exe, base, shots string) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// Without these Chromium tries to reach Google's services and
		// stalls or logs errors in a sandbox with no internet.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", exe, err)
	}
	return &browser{t: t, ctx: ctx, base: base, shots: shots}
}

func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) open(path string) { b.t.Helper(); b.openURL(b.base + path) }

func (b *browser) openURL(u string) {
	b.t.Helper()
	b.do("open "+u, chromedp.Navigate(u))
}

func (b *browser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

// Elements are found as a person finds them: inputs by their label's
// text, buttons and links by theirs.
func byLabel(text string) chromedp.JSPath {
	return chromedp.JSPath(fmt.Sprintf(`[...document.querySelectorAll("label")].filter(l => l.textContent.trim() === %s).map(l => l.control).filter(Boolean)`, strconv.Quote(text)))
}

func byText(text string) chromedp.JSPath {
	return chromedp.JSPath(fmt.Sprintf(`[...document.querySelectorAll("a, button")].filter(e => e.textContent.trim() === %s && e.offsetParent !== null)`, strconv.Quote(text)))
}

// typeInto replaces the value of the input labelled label with text.
func (b *browser) typeInto(label, text string) {
	b.t.Helper()
	b.do("type into "+label, chromedp.Clear(byLabel(label)), chromedp.SendKeys(byLabel(label), text))
}

func (b *browser) tick(label string) {
	b.t.Helper()
	if !b.isTicked(label) {
		b.do("tick "+label, chromedp.Click(byLabel(label)))
	}
}

func (b *browser) isTicked(label string) bool {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.JavascriptAttribute[bool](byLabel(label), "checked"))
	if err != nil {
		b.t.Fatalf("read %s: %v", label, err)
	}
	return v
}

func (b *browser) value(label string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Value(byLabel(label)))
	if err != nil {
		b.t.Fatalf("read %s: %v", label, err)
	}
	return v
}

func (b *browser) text(css string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("read %s: %v", css, err)
	}
	return v
}

// click presses a button that does not leave the page.
func (b *browser) click(text string) {
	b.t.Helper()
	b.do("click "+text, chromedp.Click(byText(text)))
}

// submit presses a button or follows a link that loads a page, and checks
// the status of the page it lands on.
func (b *browser) submit(text string, status int) {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(byText(text)))
	if err != nil {
		b.t.Fatalf("click %s: %v", text, err)
	}
	if int(resp.Status) != status {
		b.t.Fatalf("click %s: landed on %s with %d, want %d; it shows: %s", text, resp.URL, resp.Status, status, b.pageText())
	}
}

// follow clicks a link.
func (b *browser) follow(text string, status int) { b.t.Helper(); b.submit(text, status) }

func (b *browser) pageText() string {
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// wantText fails unless the page shows every text.
func (b *browser) wantText(texts ...string) {
	b.t.Helper()
	page := b.pageText()
	for _, want := range texts {
		if !strings.Contains(page, want) {
			b.t.Fatalf("the page does not show %q; it shows:\n%s", want, page)
		}
	}
}

// reloadUntil presses the page's Reload button, as a person would, until
// the page shows text.
func (b *browser) reloadUntil(text string) {
	b.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if strings.Contains(b.pageText(), text) {
			return
		}
		b.submit("Reload", http.StatusOK)
	}
	b.t.Fatalf("after 10 s the page still does not show %q:\n%s", text, b.pageText())
}

// screenshot saves the whole page as <name>.png when screenshots are wanted.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(b.shots, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// screenshotMobile saves the page as a phone shows it.
func (b *browser) screenshotMobile(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.screenshot(name)
	b.do("desktop viewport", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
		return err
	}))
}
