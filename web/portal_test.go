package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hookd-dev/hookd"
)

// The portal's tests without a browser: a cookie jar that follows
// redirects, as a browser does, and assertions on the text of the page a
// person ends on. portal_browser_test.go drives a real browser.

const testPassword = "correct horse battery"

// person is someone using the portal: their cookies and the server.
type person struct {
	t      *testing.T
	ts     *testServer
	base   string
	client *http.Client
}

// screen is the page a person ends on after following redirects.
type screen struct {
	Status int
	Path   string // the final page's path and query
	Header http.Header
	HTML   string
	Text   string // what a person reads: the body's text, tags dropped
}

func (ts *testServer) newPerson(t *testing.T) *person {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &person{t: t, ts: ts, base: ts.URL, client: &http.Client{Jar: jar}}
}

// createUser adds a portal login to an organization through the admin API.
func (ts *testServer) createUser(orgID, email string) {
	ts.t.Helper()
	ts.do("POST", "/v1/organizations/"+orgID+"/users", testAdminToken,
		map[string]any{"email": email, "password": testPassword}).want(ts.t, http.StatusCreated, nil)
}

// signedIn returns a person signed in as a new user of orgID.
func (ts *testServer) signedIn(t *testing.T, orgID, email string) *person {
	t.Helper()
	ts.createUser(orgID, email)
	p := ts.newPerson(t)
	p.signIn(email, testPassword).wantText(t, http.StatusOK, "Webhooks")
	return p
}

func (p *person) signIn(email, password string) *screen {
	p.t.Helper()
	return p.post("/login", url.Values{"email": {email}, "password": {password}})
}

func (p *person) get(path string) *screen {
	p.t.Helper()
	return p.send("GET", path, nil, nil)
}

// post submits a form from a page of the portal: the browser says the
// request is same-origin.
func (p *person) post(path string, form url.Values) *screen {
	p.t.Helper()
	return p.send("POST", path, form, http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {p.base}})
}

func (p *person) send(method, path string, form url.Values, h http.Header) *screen {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, p.base+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return &screen{Status: resp.StatusCode, Path: resp.Request.URL.RequestURI(), Header: resp.Header, HTML: string(b), Text: visibleText(string(b))}
}

// sessionCookie returns the person's session cookie value ("" if none).
func (p *person) sessionCookie() string {
	u, _ := url.Parse(p.base)
	for _, c := range p.client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	return ""
}

var (
	reHidden = regexp.MustCompile(`(?is)<(head|script|style)\b.*?</(head|script|style)>`)
	reTag    = regexp.MustCompile(`(?s)<[^>]*>`)
	reSpace  = regexp.MustCompile(`\s+`)
)

// visibleText is the text of a page as a person reads it, in one line.
func visibleText(page string) string {
	s := reHidden.ReplaceAllString(page, " ")
	s = reTag.ReplaceAllString(s, " ")
	return strings.TrimSpace(reSpace.ReplaceAllString(html.UnescapeString(s), " "))
}

// wantText fails unless the screen has status and shows every text.
func (s *screen) wantText(t *testing.T, status int, texts ...string) {
	t.Helper()
	if s.Status != status {
		t.Fatalf("status %d, want %d, at %s; page: %s", s.Status, status, s.Path, s.Text)
	}
	for _, want := range texts {
		if !strings.Contains(s.Text, want) {
			t.Fatalf("page %s does not show %q; it shows: %s", s.Path, want, s.Text)
		}
	}
}

// wantNoText fails if the screen shows any of texts.
func (s *screen) wantNoText(t *testing.T, texts ...string) {
	t.Helper()
	for _, no := range texts {
		if strings.Contains(s.Text, no) {
			t.Fatalf("page %s shows %q: %s", s.Path, no, s.Text)
		}
	}
}

// fieldError is the error shown next to a form field ("" if none).
func (s *screen) fieldError(field string) string {
	m := regexp.MustCompile(`(?s)<p class="field-error" id="` + regexp.QuoteMeta(field) + `-error">(.*?)</p>`).FindStringSubmatch(s.HTML)
	if m == nil {
		return ""
	}
	return visibleText(m[1])
}

// inputValue is the value a text input shows.
func (s *screen) inputValue(t *testing.T, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<input id="` + regexp.QuoteMeta(id) + `"[^>]*\svalue="([^"]*)"`).FindStringSubmatch(s.HTML)
	if m == nil {
		t.Fatalf("no input %s on %s", id, s.Path)
	}
	return html.UnescapeString(m[1])
}

// checked reports whether checkbox id is ticked; it fails if there is none.
func (s *screen) checked(t *testing.T, id string) bool {
	t.Helper()
	m := regexp.MustCompile(`<input type="checkbox" id="` + regexp.QuoteMeta(id) + `"[^>]*>`).FindString(s.HTML)
	if m == "" {
		t.Fatalf("no checkbox %s on %s", id, s.Path)
	}
	return strings.Contains(m, " checked")
}

// hasLabel reports whether the page has a <label for=id> reading text.
func (s *screen) hasLabel(id, text string) bool {
	m := regexp.MustCompile(`<label for="` + regexp.QuoteMeta(id) + `">([^<]*)</label>`).FindStringSubmatch(s.HTML)
	return m != nil && html.UnescapeString(m[1]) == text
}

func TestPortal_SignIn(t *testing.T) {
	ts := newTestServer(t, nil)
	acme := ts.createOrg("Acme", "")
	ts.createUser(acme.org.ID, "ada@acme.example")

	t.Run("OK", func(t *testing.T) {
		s := ts.newPerson(t).signIn("Ada@Acme.example ", testPassword)
		s.wantText(t, http.StatusOK, "My Settings", "Webhooks", "Add Webhook", "ada@acme.example", "Acme")
		if s.Path != "/settings/webhooks" {
			t.Fatalf("signed in at %s, want /settings/webhooks", s.Path)
		}
	})
	t.Run("ErrWrongPasswordOrUnknownEmail", func(t *testing.T) {
		// One message for both, so the page does not tell who has an account.
		wrong := ts.newPerson(t).signIn("ada@acme.example", "not the password")
		unknown := ts.newPerson(t).signIn("nobody@acme.example", testPassword)
		for _, s := range []*screen{wrong, unknown} {
			s.wantText(t, http.StatusUnprocessableEntity, "Sign in to hookd", "Wrong email or password.")
			s.wantNoText(t, "My Settings")
		}
		if got := unknown.inputValue(t, "email"); got != "nobody@acme.example" {
			t.Fatalf("the typed email is not kept: %q", got)
		}
		if strings.ReplaceAll(wrong.Text, "ada@", "X@") != strings.ReplaceAll(unknown.Text, "nobody@", "X@") {
			t.Fatalf("the pages differ:\n%s\n%s", wrong.Text, unknown.Text)
		}
	})
	t.Run("ErrEmpty", func(t *testing.T) {
		ts.newPerson(t).signIn("", "").wantText(t, http.StatusUnprocessableEntity, "Enter your email and password.")
	})
	t.Run("SignedOutGoesToSignInAndBack", func(t *testing.T) {
		p := ts.newPerson(t)
		s := p.get("/settings/webhooks/new")
		s.wantText(t, http.StatusOK, "Sign in to hookd")
		if s.Path != "/login?next=%2Fsettings%2Fwebhooks%2Fnew" {
			t.Fatalf("sent to %s", s.Path)
		}
		s = p.post("/login", url.Values{"email": {"ada@acme.example"}, "password": {testPassword}, "next": {"/settings/webhooks/new"}})
		s.wantText(t, http.StatusOK, "Add Webhook", "Target URL")
		if s.Path != "/settings/webhooks/new" {
			t.Fatalf("after sign-in at %s", s.Path)
		}
	})
	t.Run("NextStaysOnHookd", func(t *testing.T) {
		for _, next := range []string{"https://evil.example/", "//evil.example/settings", "/\\evil.example", "/v1/webhooks"} {
			s := ts.newPerson(t).post("/login", url.Values{"email": {"ada@acme.example"}, "password": {testPassword}, "next": {next}})
			if s.Path != "/settings/webhooks" {
				t.Fatalf("next=%s: signed in at %s", next, s.Path)
			}
		}
	})
	t.Run("HomeIsTheWebhookList", func(t *testing.T) {
		ts.newPerson(t).get("/").wantText(t, http.StatusOK, "Sign in to hookd")
	})
}

func TestPortal_SignInRateLimit(t *testing.T) {
	ts := newTestServer(t, nil)
	acme := ts.createOrg("Acme", "")
	ts.createUser(acme.org.ID, "ada@acme.example")
	ts.createUser(acme.org.ID, "bob@acme.example")
	now := time.Now()
	ts.srv.portal.now = func() time.Time { return now }

	p := ts.newPerson(t)
	for range maxFailuresPerEmail {
		p.signIn("ada@acme.example", "guess").wantText(t, http.StatusUnprocessableEntity, "Wrong email or password.")
	}
	// Even the right password is refused now: a guesser learns nothing.
	s := p.signIn("ada@acme.example", testPassword)
	s.wantText(t, http.StatusTooManyRequests, "Too many failed sign-in attempts. Try again later.")
	if s.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// The same for an email that has no account: no hint that one exists.
	for range maxFailuresPerEmail {
		p.signIn("nobody@acme.example", "guess")
	}
	p.signIn("nobody@acme.example", "guess").wantText(t, http.StatusTooManyRequests, "Try again later.")

	// Another account from the same address is not locked out by ada's.
	ts.newPerson(t).signIn("bob@acme.example", testPassword).wantText(t, http.StatusOK, "Webhooks")

	// When the window has passed, ada can sign in.
	now = now.Add(loginWindow + time.Second)
	p.signIn("ada@acme.example", testPassword).wantText(t, http.StatusOK, "Webhooks")

	t.Run("PerAddress", func(t *testing.T) {
		ts.srv.portal.byAddr = newLoginLimiter(3, loginWindow)
		p := ts.newPerson(t)
		for _, email := range []string{"a@x.example", "b@x.example", "c@x.example"} {
			p.signIn(email, "guess").wantText(t, http.StatusUnprocessableEntity, "Wrong email or password.")
		}
		p.signIn("bob@acme.example", testPassword).wantText(t, http.StatusTooManyRequests, "Try again later.")
	})
}

func TestPortal_SessionCookie(t *testing.T) {
	store := newTestStore(t)
	ts := newTestServer(t, store)
	acme := ts.createOrg("Acme", "")
	ts.createUser(acme.org.ID, "ada@acme.example")

	signIn := func(t *testing.T, client *http.Client, base string) *http.Cookie {
		t.Helper()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := client.PostForm(base+"/login", url.Values{"email": {"ada@acme.example"}, "password": {testPassword}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for _, c := range resp.Cookies() {
			if c.Name == sessionCookie {
				return c
			}
		}
		t.Fatal("no session cookie")
		return nil
	}

	t.Run("HTTP", func(t *testing.T) {
		c := signIn(t, &http.Client{}, ts.URL)
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != "/" {
			t.Fatalf("cookie %s: want HttpOnly, SameSite=Lax, not Secure over http, Path=/", c)
		}
		if d := time.Until(c.Expires); d < sessionLifetime-time.Minute || d > sessionLifetime {
			t.Fatalf("cookie expires in %v, want %v", d, sessionLifetime)
		}
		// Only the token's hash is in the store.
		token, _ := base64.RawURLEncoding.DecodeString(c.Value)
		sum := sha256.Sum256(token)
		if _, err := store.FindSession(context.Background(), sum[:], time.Now()); err != nil {
			t.Fatalf("no session under the token's hash: %v", err)
		}
		if _, err := store.FindSession(context.Background(), token, time.Now()); hookd.ErrorCode(err) != hookd.ENOTFOUND {
			t.Fatalf("the token itself finds a session: %v", err)
		}
	})
	t.Run("HTTPS", func(t *testing.T) {
		hs := httptest.NewTLSServer(New(Config{Store: store}))
		t.Cleanup(hs.Close)
		c := signIn(t, hs.Client(), hs.URL)
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || !c.Secure {
			t.Fatalf("cookie %s: want HttpOnly, SameSite=Lax, Secure over TLS", c)
		}
	})
}

func TestPortal_SignOut(t *testing.T) {
	ts := newTestServer(t, nil)
	acme := ts.createOrg("Acme", "")
	p := ts.signedIn(t, acme.org.ID, "ada@acme.example")
	stolen := p.sessionCookie()

	s := p.post("/logout", nil)
	s.wantText(t, http.StatusOK, "You have signed out.", "Sign in to hookd")
	s.wantNoText(t, "ada@acme.example")
	if p.sessionCookie() != "" {
		t.Fatal("the browser still has the session cookie")
	}

	// The old cookie, replayed, no longer works: the session ended on the server.
	replay := ts.newPerson(t)
	u, _ := url.Parse(ts.URL)
	replay.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: stolen, Path: "/"}})
	replay.get("/settings/webhooks").wantText(t, http.StatusOK, "Sign in to hookd")

	t.Run("Expiry", func(t *testing.T) {
		p := ts.signedIn(t, acme.org.ID, "bob@acme.example")
		ts.srv.portal.now = func() time.Time { return time.Now().Add(sessionLifetime + time.Minute) }
		defer func() { ts.srv.portal.now = time.Now }()
		p.get("/settings/webhooks").wantText(t, http.StatusOK, "Sign in to hookd")
	})
}

func TestPortal_Navigation(t *testing.T) {
	ts := newTestServer(t, nil)
	acme := ts.createOrg("Acme", "")
	p := ts.signedIn(t, acme.org.ID, "ada@acme.example")

	s := p.get("/settings")
	s.wantText(t, http.StatusOK, "My Settings", "Account", "ada@acme.example", "Acme", "You have 0 webhooks.", "Manage webhooks")
	if !strings.Contains(s.HTML, `<a href="/settings/webhooks">Webhooks</a>`) {
		t.Fatal("My Settings does not link to Webhooks")
	}
	s = p.get("/settings/webhooks")
	s.wantText(t, http.StatusOK, "No webhooks yet.", "Add Webhook")
	if !strings.Contains(s.HTML, `<li><a href="/settings">My Settings</a></li><li><span aria-current="page">Webhooks</span></li>`) {
		t.Fatal("the breadcrumb does not read My Settings › Webhooks")
	}
}

func TestPortal_NotFound(t *testing.T) {
	ts := newTestServer(t, nil)
	acme := ts.createOrg("Acme", "")
	p := ts.signedIn(t, acme.org.ID, "ada@acme.example")
	for _, path := range []string{"/settings/nothing", "/settings/webhooks/wh_00000000000000000000000000", "/static/nothing.css"} {
		s := p.get(path)
		s.wantText(t, http.StatusNotFound, "Page not found")
		if ct := s.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Fatalf("%s: Content-Type %q", path, ct)
		}
	}
	// The API keeps answering JSON.
	ts.do("GET", "/v1/nothing", acme.key, nil).wantError(t, http.StatusNotFound, "not_found", "")
}

// TestPortal_GetChangesNothing: every address that changes state takes
// POST only; a GET (a link, a prefetch, an <img> on another site) is a 405
// and changes nothing.
func TestPortal_GetChangesNothing(t *testing.T) {
	ts := newTestServer(t, nil)
	acme := ts.createOrg("Acme", "")
	wh := ts.createWebhook(acme.key, validWebhook())
	ts.publish(acme.org.ID, "scan_started", nil)
	d := ts.listDeliveries(acme.key, wh.ID)[0]
	p := ts.signedIn(t, acme.org.ID, "ada@acme.example")
	notified := ts.notify.Load()

	for _, path := range []string{
		"/logout",
		"/settings/webhooks/" + wh.ID + "/active",
		"/settings/webhooks/" + wh.ID + "/ping",
		"/settings/webhooks/" + wh.ID + "/deliveries/" + d.ID + "/redeliver",
	} {
		s := p.get(path)
		s.wantText(t, http.StatusMethodNotAllowed, "Method not allowed")
		if s.Header.Get("Allow") != "POST" {
			t.Fatalf("%s: Allow = %q", path, s.Header.Get("Allow"))
		}
	}
	equalJSON(t, "webhook", ts.getWebhook(acme.key, wh.ID), wh)
	if n := len(ts.listDeliveries(acme.key, wh.ID)); n != 1 || ts.notify.Load() != notified {
		t.Fatalf("%d deliveries, %d notifications after GETs", n, ts.notify.Load()-notified)
	}
	p.get("/settings/webhooks").wantText(t, http.StatusOK, "ada@acme.example") // still signed in
}

func TestPortal_PageHeaders(t *testing.T) {
	ts := newTestServer(t, nil)
	s := ts.newPerson(t).get("/login")
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := s.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if csp := s.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}

	t.Run("Static", func(t *testing.T) {
		src := regexp.MustCompile(`href="(/static/style\.css\?v=\w+)"`).FindStringSubmatch(s.HTML)
		if src == nil {
			t.Fatal("the page links no style sheet")
		}
		resp, err := http.Get(ts.URL + src[1])
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Fatalf("style.css: %d %v", resp.StatusCode, resp.Header)
		}
		req, _ := http.NewRequest("GET", ts.URL+src[1], nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("revalidation: %d, want 304", resp.StatusCode)
		}
	})
}

// TestPortal_BrokenTemplateFailsStartUp: a template that does not parse
// stops New, not a user's click.
func TestPortal_BrokenTemplateFailsStartUp(t *testing.T) {
	files := fstest.MapFS{
		"templates/layout.html": {Data: []byte(`{{define "layout"}}{{template "content" .}}{{end}}`)},
		"templates/login.html":  {Data: []byte(`{{define "content"}}{{if .Email}}x{{end}}{{end}}`)},
		"templates/_form.html":  {Data: []byte(`{{define "webhook-form"}}{{end}}`)},
		"static/style.css":      {Data: []byte(`body{}`)},
	}
	if _, err := (&Server{}).newPortal(files); err != nil {
		t.Fatalf("a good set fails: %v", err)
	}
	files["templates/login.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}{{if .Email}}unclosed{{end}}`)}
	if _, err := (&Server{}).newPortal(files); err == nil {
		t.Fatal("a broken template parsed")
	}
	defer func() {
		if recover() != nil {
			t.Fatal("New panics with the embedded templates")
		}
	}()
	New(Config{})
}
