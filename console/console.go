// Package console is the review console served by the worker: sign-in with
// a token (access), the call list (seed 004) and the call page (seed 001),
// the admin's actions on a call, and River UI for admins. Pages are
// html/template with embedded assets and a little vanilla JavaScript. What
// a page does is a use case of pipeline.Calls (the Calls interface); what
// a role may do is access's; this package renders and checks.
package console

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/postcall/postcall/access"
	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// Calls are the use cases the console calls; *pipeline.Calls is one.
type Calls interface {
	Find(ctx context.Context, ref string) (*store.Call, error)
	Document(ctx context.Context, c *store.Call) (*calldoc.Document, error)
	List(ctx context.Context, f store.ListFilter) (*store.ListPage, error)
	Reanalyze(ctx context.Context, ref string, kinds pipeline.Kinds) (*pipeline.IngestResult, error)
	Redeliver(ctx context.Context, c *store.Call, integration string) ([]string, error)
	SoftDelete(ctx context.Context, ref string) error
	Restore(ctx context.Context, ref string) error
	Erase(ctx context.Context, ref string) error
	RetentionStatus(ctx context.Context, c *store.Call) (*retention.CallStatus, error)
	Plan(ctx context.Context, agentID string) (*agent.Plan, int, error)
	ListItem(ctx context.Context, id uuid.UUID) (*store.ListItem, error)
}

// Sessions signs browsers in and out; *access.Service is one.
type Sessions interface {
	SignIn(ctx context.Context, secret string) (*access.Session, error)
	Session(ctx context.Context, id string) (*access.Session, error)
	SignOut(ctx context.Context, id string) error
}

// Defaults of Server.
const (
	// DefaultLoginAttempts is how many sign-in attempts one client IP may
	// make per LoginWindow.
	DefaultLoginAttempts = 10
	// DefaultLoginWindow is the window of DefaultLoginAttempts.
	DefaultLoginWindow = time.Minute
)

// cookieName is the session cookie.
const cookieName = "postcall_session"

// Server serves the console.
type Server struct {
	// Calls are the use cases. Required.
	Calls Calls
	// Sessions signs browsers in. Required.
	Sessions Sessions
	// RiverUI is River UI's handler, mounted at /riverui/ for admins.
	// Default nil: /riverui/ answers 404.
	RiverUI http.Handler
	// LoginAttempts per client IP and LoginWindow. Default
	// DefaultLoginAttempts per DefaultLoginWindow.
	LoginAttempts int
	LoginWindow   time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	once      sync.Once
	templates map[string]*template.Template
	limiter   *limiter
}

// Handler returns the console's routes: /login, /logout, /calls,
// /calls/{id} and its actions, /assets/ and /riverui/.
func (s *Server) Handler() http.Handler {
	s.once.Do(s.init)
	mux := http.NewServeMux()
	assets, _ := fs.Sub(assetFiles, "assets")
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.Handle("POST /logout", s.signedIn(s.logout, false))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/calls", http.StatusSeeOther) })
	mux.Handle("GET /calls", s.signedIn(s.listPage, false))
	mux.Handle("GET /calls/{id}", s.signedIn(s.callPage, false))
	mux.Handle("GET /calls/{id}/progress", s.signedIn(s.progress, false))
	mux.Handle("GET /calls/{id}/download", s.signedIn(s.download, true))
	mux.Handle("POST /calls/{id}/reanalyze", s.signedIn(s.reanalyze, true))
	mux.Handle("POST /calls/{id}/redeliver", s.signedIn(s.redeliver, true))
	mux.Handle("POST /calls/{id}/delete", s.signedIn(s.softDelete, true))
	mux.Handle("POST /calls/{id}/restore", s.signedIn(s.restore, true))
	mux.Handle("POST /calls/{id}/erase", s.signedIn(s.erase, true))
	if s.RiverUI != nil {
		mux.Handle("/riverui/", s.signedIn(s.RiverUI.ServeHTTP, true))
	}
	return securityHeaders(mux)
}

func (s *Server) init() {
	s.templates = parseTemplates()
	attempts, window := s.LoginAttempts, s.LoginWindow
	if attempts <= 0 {
		attempts = DefaultLoginAttempts
	}
	if window <= 0 {
		window = DefaultLoginWindow
	}
	s.limiter = &limiter{max: attempts, window: window, hits: map[string][]time.Time{}}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

type ctxKey int

const (
	sessionKey ctxKey = iota
	nonceKey
)

// securityHeaders sets what every console response carries: a strict
// Content-Security-Policy whose only scripts are those with this
// response's nonce (River UI, a built single-page app, gets its own
// policy), no framing, no MIME sniffing, no Referer (a signed recording
// URL must not leak through it).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nonce := randomNonce()
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if len(r.URL.Path) >= len("/riverui/") && r.URL.Path[:len("/riverui/")] == "/riverui/" {
			h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		} else {
			h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'self'; img-src 'self'; "+
				"media-src https: http:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), nonceKey, nonce)))
	})
}

func randomNonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signedIn serves h to a signed-in browser (others are sent to /login, or
// get 401 for a non-GET); adminOnly routes answer 403 to a viewer. Every
// POST must carry the session's CSRF token (form field csrf): without it,
// 403 and nothing changes. Every page behind a session is no-store: they
// all hold call data or act on it.
func (s *Server) signedIn(h http.HandlerFunc, adminOnly bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var id string
		if c, err := r.Cookie(cookieName); err == nil {
			id = c.Value
		}
		sess, err := s.Sessions.Session(r.Context(), id)
		switch {
		case errors.Is(err, access.ErrUnauthorized):
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		case err != nil:
			s.fail(w, r, "read session", err)
			return
		}
		if adminOnly && !sess.Principal.Admin() {
			http.Error(w, "forbidden: this needs an admin token", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !sess.ValidCSRF(r.PostFormValue("csrf")) {
				http.Error(w, "forbidden: missing or wrong CSRF token (reload the page)", http.StatusForbidden)
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey, sess)))
	})
}

func session(r *http.Request) *access.Session {
	sess, _ := r.Context().Value(sessionKey).(*access.Session)
	return sess
}

func nonce(r *http.Request) string {
	n, _ := r.Context().Value(nonceKey).(string)
	return n
}

// fail logs err (ids and database messages only) and answers 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	s.logger().ErrorContext(r.Context(), "console: "+op, slog.String("route", r.Pattern), slog.String("error", err.Error()))
	http.Error(w, "internal error", http.StatusInternalServerError)
}

type loginData struct {
	page
	Error string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", &loginData{page: s.page(r, "Sign in")})
}

// login checks the token and starts a session: a cookie that scripts
// cannot read (HttpOnly), not sent on cross-site requests (SameSite=Lax, so
// that a link from elsewhere still opens the page), Secure when the request
// came over TLS (the worker's own; a TLS-terminating proxy in front is not
// trusted to say so), expiring with the session.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.limiter.allow(clientIP(r), time.Now()) {
		w.Header().Set("Retry-After", "60")
		s.render(w, r, http.StatusTooManyRequests, "login", &loginData{page: s.page(r, "Sign in"),
			Error: "Too many sign-in attempts from this address. Wait a minute and try again."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	sess, err := s.Sessions.SignIn(r.Context(), r.PostFormValue("token"))
	switch {
	case errors.Is(err, access.ErrUnauthorized):
		s.render(w, r, http.StatusUnauthorized, "login", &loginData{page: s.page(r, "Sign in"),
			Error: "That token is not valid (unknown, revoked or mistyped)."})
		return
	case err != nil:
		s.fail(w, r, "sign in", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: sess.ID, Path: "/", Expires: sess.ExpiresAt, MaxAge: int(time.Until(sess.ExpiresAt).Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, "/calls", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.Sessions.SignOut(r.Context(), session(r).ID); err != nil {
		s.fail(w, r, "sign out", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// clientIP is the peer's address: X-Forwarded-For is not trusted, since
// anyone can send it.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter allows max events per window per key (a sliding window, in
// memory: one worker's view, which is enough to stop guessing at speed).
type limiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	hits   map[string][]time.Time
}

func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hits) > 10_000 {
		// Forget stale clients so that the map stays small.
		for k, ts := range l.hits {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= l.window {
				delete(l.hits, k)
			}
		}
	}
	ts := l.hits[key]
	for len(ts) > 0 && now.Sub(ts[0]) >= l.window {
		ts = ts[1:]
	}
	if len(ts) >= l.max {
		l.hits[key] = ts
		return false
	}
	l.hits[key] = append(ts, now)
	return true
}
