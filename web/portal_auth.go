package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hookd-dev/hookd"
)

// Sessions: the cookie carries 32 random bytes; the store keeps only their
// SHA-256 (hookd.Session), so a copy of the database is no login. The
// session is looked up on every request, so signing out (which deletes
// it) ends it everywhere at once.
const (
	sessionCookie   = "hookd_session"
	sessionLifetime = 12 * time.Hour
	tokenBytes      = 32
)

// Sign-in limits: failed attempts per email and per client address in a
// sliding window. The per-address limit is higher because several people
// may share one address (an office, a proxy in front of hookd); the
// per-email limit is what stops guessing one account's password.
const (
	maxFailuresPerEmail = 5
	maxFailuresPerAddr  = 20
	loginWindow         = 15 * time.Minute
)

// dummyHash is a bcrypt hash of a password nobody uses, at the cost of real
// ones (bcrypt.DefaultCost). An unknown email is checked against it so that
// it takes as long as a wrong password: timing does not tell which emails
// have accounts.
const dummyHash = "$2a$10$IDi.L0sElhqo6WH49H8Z0eNMTVoOg49KseBTHvaltr/3ml8QQAeuy"

// Messages of the sign-in page. One message for an unknown email and a
// wrong password, so the page does not tell which emails have accounts.
const (
	msgBadLogin     = "Wrong email or password."
	msgTooMany      = "Too many failed sign-in attempts. Try again later."
	msgMissingLogin = "Enter your email and password."
)

// currentVisitor returns the signed-in user of the request, or nil when
// there is no valid session. Only store failures are errors.
func (s *Server) currentVisitor(r *http.Request) (*visitor, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	token, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(token) != tokenBytes {
		return nil, nil
	}
	hash := sha256.Sum256(token)
	ctx := r.Context()
	sess, err := s.cfg.Store.FindSession(ctx, hash[:], s.portal.now())
	if hookd.ErrorCode(err) == hookd.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	u, err := s.cfg.Store.FindUser(ctx, sess.UserID)
	if hookd.ErrorCode(err) == hookd.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	org, err := s.cfg.Store.FindOrganization(ctx, sess.OrganizationID)
	if hookd.ErrorCode(err) == hookd.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &visitor{User: u, Org: org, tokenHash: hash[:]}, nil
}

// loginPage is the data of the sign-in page.
type loginPage struct {
	view
	Email string
	Next  string
	Error string
}

// GET /login
func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request, v *visitor) error {
	next := safeNext(r.URL.Query().Get("next"))
	if v != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	s.render(w, r, http.StatusOK, "login", &loginPage{view: view{Title: "Sign in"}, Next: next})
	return nil
}

// POST /login {email, password, next}
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, v *visitor) error {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return hookd.Errorf(hookd.EINVALID, "the form could not be read")
	}
	email, password := strings.TrimSpace(r.PostForm.Get("email")), r.PostForm.Get("password")
	p := &loginPage{view: view{Title: "Sign in"}, Email: email, Next: safeNext(r.PostForm.Get("next"))}
	if email == "" || password == "" {
		p.Error = msgMissingLogin
		s.render(w, r, http.StatusUnprocessableEntity, "login", p)
		return nil
	}

	now := s.portal.now()
	emailKey, addrKey := hookd.NormalizeEmail(email), clientAddr(r)
	// Checked before bcrypt: a blocked guesser costs no CPU, and even the
	// right password is refused until the window has passed.
	wait := max(s.portal.byEmail.blocked(now, emailKey), s.portal.byAddr.blocked(now, addrKey))
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
		p.Error = msgTooMany
		s.render(w, r, http.StatusTooManyRequests, "login", p)
		return nil
	}

	u, err := s.cfg.Store.FindUserByEmail(r.Context(), emailKey)
	hash := []byte(dummyHash)
	switch {
	case err == nil:
		hash = u.PasswordHash
	case hookd.ErrorCode(err) != hookd.ENOTFOUND:
		return err
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || u == nil {
		s.portal.byEmail.fail(now, emailKey)
		s.portal.byAddr.fail(now, addrKey)
		s.log.Info("portal sign-in failed", "request_id", requestID(r.Context())) // no email: logs are not an account directory
		p.Error = msgBadLogin
		s.render(w, r, http.StatusUnprocessableEntity, "login", p)
		return nil
	}
	s.portal.byEmail.reset(emailKey)

	// A fresh token at every sign-in, and the old session (if any) ended,
	// so a token planted before sign-in is worth nothing after it.
	if v != nil {
		if err := s.cfg.Store.DeleteSession(r.Context(), v.tokenHash); err != nil {
			return err
		}
	}
	token := make([]byte, tokenBytes)
	rand.Read(token)
	hashed := sha256.Sum256(token)
	sess := &hookd.Session{TokenHash: hashed[:], UserID: u.ID, OrganizationID: u.OrganizationID, ExpiresAt: now.Add(sessionLifetime)}
	if err := s.cfg.Store.CreateSession(r.Context(), sess); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    base64.RawURLEncoding.EncodeToString(token),
		Path:     "/",
		Expires:  sess.ExpiresAt,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, p.Next, http.StatusSeeOther)
	return nil
}

// POST /logout: ends the session in the store, not only in the browser.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, v *visitor) error {
	if v != nil {
		if err := s.cfg.Store.DeleteSession(r.Context(), v.tokenHash); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	redirectWithFlash(w, r, "/login", "You have signed out.")
	return nil
}

// safeNext returns where to go after signing in: a page of the portal, never
// another site (an open redirect would lend hookd's name to phishing).
func safeNext(next string) string {
	const home = "/settings/webhooks"
	u, err := url.Parse(next)
	if next == "" || err != nil || u.Scheme != "" || u.Host != "" || u.User != nil ||
		!strings.HasPrefix(next, "/settings") || strings.ContainsAny(next, `\`) {
		return home
	}
	return next
}

// clientAddr is the address the request came from. X-Forwarded-For is not
// trusted: without a configured proxy anyone can send it, and it would let
// a guesser pick a fresh address for every attempt.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loginLimiter counts failed sign-ins per key in a sliding window. It lives
// in the Server (no package state), so each server and each test has its
// own; with several hookd nodes each counts its own attempts, which
// multiplies the budget by the number of nodes, not more.
type loginLimiter struct {
	max    int
	window time.Duration

	mu       sync.Mutex
	failures map[string][]time.Time // oldest first, at most max
}

// limiterSweepAt is the number of keys past which fail drops the keys
// whose failures are all outside the window, which bounds the memory a
// spray of made-up emails can take.
const limiterSweepAt = 10_000

func newLoginLimiter(max int, window time.Duration) *loginLimiter {
	return &loginLimiter{max: max, window: window, failures: map[string][]time.Time{}}
}

// blocked returns how long key must wait before its next attempt: 0 when it
// has had fewer than max failures in the window.
func (l *loginLimiter) blocked(now time.Time, key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.recent(now, key)
	if len(f) < l.max {
		return 0
	}
	return f[0].Add(l.window).Sub(now)
}

// fail records a failed attempt of key at now.
func (l *loginLimiter) fail(now time.Time, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) >= limiterSweepAt {
		for k := range l.failures {
			l.recent(now, k)
		}
	}
	f := append(l.recent(now, key), now)
	if len(f) > l.max {
		f = f[len(f)-l.max:]
	}
	l.failures[key] = f
}

// reset forgets key's failures (after a successful sign-in).
func (l *loginLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

// recent drops key's failures older than the window and returns the rest.
// l.mu must be held.
func (l *loginLimiter) recent(now time.Time, key string) []time.Time {
	f := l.failures[key]
	i := 0
	for i < len(f) && !f[i].After(now.Add(-l.window)) {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.failures, key)
		return nil
	}
	l.failures[key] = f
	return f
}
