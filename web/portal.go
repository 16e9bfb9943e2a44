package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/hookd-dev/hookd"
)

// The portal (SPEC §4): server-rendered pages for people, on the same port
// as the API. Its handlers call the operations of ops.go, like the JSON
// handlers, so both front ends enforce the same rules.

// portalFiles holds templates/*.html (the pages) and static/ (the style
// sheet and the secret generator): the binary carries the whole portal.
//
//go:embed templates/*.html static
var portalFiles embed.FS

// portal is the portal's share of the Server: parsed pages, static files,
// the sign-in limiter and the cross-origin guard. Everything is built in
// New, so a template that does not parse stops hookd at start-up.
type portal struct {
	pages   map[string]*template.Template // by file name, without .html
	static  map[string]staticFile         // by file name
	csrf    *http.CrossOriginProtection
	byEmail *loginLimiter
	byAddr  *loginLimiter
	now     func() time.Time // the clock of sessions and the limiter; tests set it
}

type staticFile struct {
	body        []byte
	contentType string
	etag        string
}

// newPortal parses every template of files (portalFiles but in tests) and
// loads the static files. Its errors are bugs of the build, never of the
// configuration.
func (s *Server) newPortal(files fs.FS) (*portal, error) {
	p := &portal{
		pages:   map[string]*template.Template{},
		static:  map[string]staticFile{},
		csrf:    http.NewCrossOriginProtection(),
		byEmail: newLoginLimiter(maxFailuresPerEmail, loginWindow),
		byAddr:  newLoginLimiter(maxFailuresPerAddr, loginWindow),
		now:     time.Now,
	}
	p.csrf.SetDenyHandler(http.HandlerFunc(s.portalCrossOrigin))

	err := fs.WalkDir(files, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		p.static[path.Base(name)] = staticFile{
			body:        b,
			contentType: mime.TypeByExtension(path.Ext(name)),
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	funcs := template.FuncMap{
		"static":     p.staticURL,
		"timestamp":  formatTime,
		"datetime":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ms":         func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) },
		"statusText": http.StatusText,
	}
	// layout.html and the partials (_*.html) are shared; every other file
	// is a page that defines "content".
	layout, err := template.New("layout").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/_*.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if base := path.Base(name); base == "layout.html" || strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(files, name)
		if err != nil {
			return nil, err
		}
		if t.Lookup("content") == nil {
			return nil, fmt.Errorf("%s defines no \"content\" template", name)
		}
		p.pages[strings.TrimSuffix(path.Base(name), ".html")] = t
	}
	return p, nil
}

// staticURL is the address of a static file with its content hash, so a
// browser never keeps a stale style sheet after an upgrade.
func (p *portal) staticURL(name string) (string, error) {
	f, ok := p.static[name]
	if !ok {
		return "", fmt.Errorf("no static file %q", name)
	}
	return "/static/" + name + "?v=" + strings.Trim(f.etag, `"`), nil
}

// formatTime shows times in UTC, to the second, like the API and the logs,
// so what a person reads matches what a receiver logged.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// portalAccess says who may open a portal page.
type portalAccess int

const (
	asset  portalAccess = iota // static files: no session lookup
	guest                      // anyone; the visitor is known when signed in
	member                     // signed-in users only; others go to /login
)

// visitor is a signed-in user, looked up from the session cookie on every
// request, so a session that ends (sign-out, expiry) ends at once.
type visitor struct {
	User      *hookd.User
	Org       *hookd.Organization
	tokenHash []byte
}

// portalHandler is the shape of every portal handler. v is nil for a guest.
// A returned error becomes an error page (portalError).
type portalHandler func(w http.ResponseWriter, r *http.Request, v *visitor) error

// portalRoute is one line of the portal's route table.
type portalRoute struct {
	method  string
	path    string
	access  portalAccess
	handler portalHandler
}

// wrap turns a portal route into an http.Handler: cross-origin writes are
// refused first, then the session is looked up and the access checked.
func (s *Server) wrap(rt portalRoute) http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.access == asset {
			if err := rt.handler(w, r, nil); err != nil {
				s.portalError(w, r, err)
			}
			return
		}
		setPageHeaders(w)
		v, err := s.currentVisitor(r)
		if err != nil {
			s.portalError(w, r, err)
			return
		}
		if v == nil && rt.access == member {
			target := "/login"
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				target += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if err := rt.handler(w, r, v); err != nil {
			s.portalError(w, r, err)
		}
	})
	return s.portal.csrf.Handler(h)
}

// setPageHeaders marks a page private and locks it down: pages show
// delivery logs and secrets being typed, so nothing caches them; scripts
// and styles come only from hookd; no other site may frame them.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

// view is what the layout shows around every page. Each page's data
// embeds it.
type view struct {
	Title   string
	Me      *visitor // nil when signed out
	Flash   string   // a one-time note from the previous POST
	Section string   // "settings" or "webhooks": highlights the navigation
	Crumbs  []crumb  // the path from My Settings to this page
}

type crumb struct{ Label, URL string }

func (v *view) base() *view { return v }

// page is any page's data.
type page interface{ base() *view }

// render executes page name into a buffer first, so that a failing
// template is a clean 500 and never half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data page) {
	v := data.base()
	v.Flash = takeFlash(w, r)
	t := s.portal.pages[name]
	var buf bytes.Buffer
	if t == nil {
		s.portalError(w, r, fmt.Errorf("no page %q", name))
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.Error("rendering page", "page", name, "request_id", requestID(r.Context()), "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage is the data of the error page.
type errorPage struct {
	view
	Status  int
	Heading string
	Message string
}

// portalError answers err as a page: not found (including another
// organization's objects, exactly as for ids that do not exist) as a 404,
// internal errors as a 500 with a log line and a generic message.
func (s *Server) portalError(w http.ResponseWriter, r *http.Request, err error) {
	code := hookd.ErrorCode(err)
	status := errorStatus(code)
	p := &errorPage{Status: status, Heading: http.StatusText(status), Message: hookd.ErrorMessage(err)}
	switch code {
	case hookd.ENOTFOUND:
		p.Heading, p.Message = "Page not found", "There is nothing here, or it is not yours to see."
	case hookd.EINTERNAL:
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			return // the browser went away
		}
		s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r.Context()), "err", err)
		p.Heading, p.Message = "Something went wrong", "hookd could not complete this request. Try again in a moment."
	}
	s.errorPage(w, r, p)
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, p *errorPage) {
	setPageHeaders(w)
	p.Title = p.Heading
	if p.Me == nil {
		// The error page says who is signed in when it can, so a user
		// who followed a stale link still sees where they are.
		p.Me, _ = s.currentVisitor(r)
	}
	s.render(w, r, p.Status, "error", p)
}

// portalNotFound answers a portal path that has no page.
func (s *Server) portalNotFound(w http.ResponseWriter, r *http.Request) {
	s.portalError(w, r, hookd.Errorf(hookd.ENOTFOUND, "no such page"))
}

// portalMethodNotAllowed answers a portal page asked with a method it does
// not have: state changes only by POST, so a GET of a POST-only address
// changes nothing.
func (s *Server) portalMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, &errorPage{Status: http.StatusMethodNotAllowed, Heading: "Method not allowed",
		Message: "This address does not take " + r.Method + " requests."})
}

// portalCrossOrigin answers a form posted from another site.
func (s *Server) portalCrossOrigin(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, &errorPage{Status: http.StatusForbidden, Heading: "Cross-site request refused",
		Message: "This form was sent from another site, so hookd refused it. Open hookd directly and try again."})
}

// isPortalPath reports whether an unmatched path belongs to the portal (and
// gets an HTML 404) rather than to the API (and gets a JSON one).
func isPortalPath(p string) bool {
	return p == "/login" || p == "/logout" || p == "/settings" ||
		strings.HasPrefix(p, "/settings/") || strings.HasPrefix(p, "/static/")
}

// GET /static/{name}: the embedded style sheet and script. Pages ask for
// them with their content hash (staticURL), so they can be cached for good.
func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request, _ *visitor) error {
	f, ok := s.portal.static[r.PathValue("name")]
	if !ok {
		return hookd.Errorf(hookd.ENOTFOUND, "no such file")
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", f.etag)
	if r.URL.Query().Get("v") == strings.Trim(f.etag, `"`) {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	return nil
}

// The flash is a one-time note carried by a cookie from a POST to the page
// it redirects to ("Webhook deleted."), so results show without
// JavaScript and a reload does not repeat the POST.
const flashCookie = "hookd_flash"

// redirectWithFlash answers a successful POST: 303 to target, with msg
// shown once there.
func redirectWithFlash(w http.ResponseWriter, r *http.Request, target, msg string) {
	http.SetCookie(w, &http.Cookie{
		Name:     flashCookie,
		Value:    base64.RawURLEncoding.EncodeToString([]byte(msg)),
		Path:     "/",
		MaxAge:   60,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// takeFlash returns the flash of the request, if any, and clears it.
func takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) > 300 {
		return ""
	}
	return string(b)
}
