// Package api is postcall's HTTP interface, served by the worker: the calls
// API under /v1 and Prometheus metrics, both behind a bearer token; health
// and readiness for orchestrators; and the permanent recording links put in
// CRM notes, which carry their own signature. It parses requests and writes
// responses; what a route does is a use case of pipeline.Calls, reached
// through the small interfaces Reader, Enqueuer and Retention. A new route
// goes here, its logic in pipeline.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/postcall/postcall/access"
	"github.com/postcall/postcall/migrations"
	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/store"
)

// DefaultMaxBodyBytes bounds a POST /v1/calls body: far above a long call's
// record (a two-hour transcript is a few hundred KiB), far below what would
// hurt the worker.
const DefaultMaxBodyBytes = 16 << 20

// Server serves the HTTP API.
type Server struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Schema is the schema readiness checks; "" is the search_path.
	Schema string
	// Token is the bearer token of every /v1 route and of /metrics
	// (POSTCALL_API_TOKEN). Default "": those routes answer 401, so an
	// unconfigured API is closed, never open.
	Token string
	// Access authenticates bearer tokens (named tokens with a role, and
	// POSTCALL_API_TOKEN as admin); *access.Service is one. Default nil:
	// Token alone, as admin.
	Access Authenticator
	// Reader reads calls: the call document, the list, recording links.
	// Required.
	Reader Reader
	// Enqueuer stores calls and enqueues their processing (POST /v1/calls,
	// POST /v1/calls/{id}/reanalyze). Default nil: those routes answer 501.
	Enqueuer Enqueuer
	// Retention soft-deletes and erases calls (DELETE /v1/calls/{id}, POST
	// /v1/calls/{id}/purge). Default nil: those routes answer 501.
	Retention Retention
	// Metrics serves GET /metrics, e.g. promhttp.HandlerFor. Default nil:
	// 404.
	Metrics http.Handler
	// Links checks recording links; nil disables GET /r/{id}.
	Links *recording.Links
	// Recordings signs the recording URLs GET /r/{id} redirects to. Default
	// nil: no /r/{id}. (Documents are signed by the Reader.)
	Recordings *recording.Store
	// MaxBodyBytes bounds a request body. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Handler returns the API's routes. Health, readiness and recording links
// are public; everything else needs the bearer token.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /r/{id}", s.recordingLink)
	mux.Handle("/v1/", s.authorize(s.v1(), false))
	metrics := s.Metrics
	if metrics == nil {
		metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "metrics are not enabled")
		})
	}
	mux.Handle("GET /metrics", s.authorize(metrics, true))
	return mux
}

// v1 is the calls API. Its answers are JSON, including for unknown routes
// and methods.
func (s *Server) v1() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/calls", s.createCall)
	mux.HandleFunc("GET /v1/calls", s.listCalls)
	mux.HandleFunc("GET /v1/calls/{id}", s.getCall)
	mux.HandleFunc("DELETE /v1/calls/{id}", s.deleteCall)
	mux.HandleFunc("POST /v1/calls/{id}/reanalyze", s.reanalyzeCall)
	mux.HandleFunc("POST /v1/calls/{id}/purge", s.purgeCall)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		writeError(w, http.StatusNotFound, "not found")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Call data is personal data and signed URLs are credentials:
		// nothing of /v1 belongs in a shared cache.
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// allowedMethods lists the methods a route other than the catch-all serves
// at r's path.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/v1/" {
			allow = append(allow, m)
		}
	}
	return allow
}

// Authenticator returns who a bearer token belongs to; an error wrapping
// access.ErrUnauthorized for a token that is unknown or revoked.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (access.Principal, error)
}

// authorize lets a request through only with a valid bearer token, and a
// viewer's only when it reads (GET or HEAD) a route that is not adminOnly:
// a viewer's writes and /metrics answer 403. Without Access the token is
// compared with Token, both sides hashed before the constant-time
// comparison so that neither its content nor its length leaks through
// timing.
func (s *Server) authorize(next http.Handler, adminOnly bool) http.Handler {
	want := sha256.Sum256([]byte(s.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		token, ok := bearerToken(r.Header.Get("Authorization"))
		var p access.Principal
		switch {
		case s.Access != nil:
			var err error
			if p, err = s.Access.Authenticate(r.Context(), token); errors.Is(err, access.ErrUnauthorized) || (err == nil && !ok) {
				writeUnauthorized(w, "missing, wrong or revoked bearer token")
				return
			} else if err != nil {
				s.internalError(w, r, "authenticate", err)
				return
			}
		case s.Token == "":
			writeUnauthorized(w, "the API is disabled: no POSTCALL_API_TOKEN is configured")
			return
		default:
			got := sha256.Sum256([]byte(token))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !ok {
				writeUnauthorized(w, "missing or wrong bearer token")
				return
			}
			p = access.Principal{Name: access.APITokenName, Role: access.RoleAdmin}
		}
		if !p.Admin() && (adminOnly || (r.Method != http.MethodGet && r.Method != http.MethodHead)) {
			writeError(w, http.StatusForbidden, "this token's role (viewer) may only read calls")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

type principalKey struct{}

// principal is who authorize let through.
func principal(r *http.Request) access.Principal {
	p, _ := r.Context().Value(principalKey{}).(access.Principal)
	return p
}

// bearerToken returns the token of an "Authorization: Bearer TOKEN" header;
// the scheme is case-insensitive (RFC 9110).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func writeUnauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="postcall"`)
	writeError(w, http.StatusUnauthorized, msg)
}

// recordingLink follows a permanent recording link: it checks the link's
// signature and redirects to a freshly presigned URL. A purged or deleted
// call's recording is gone (410).
func (s *Server) recordingLink(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	id := r.PathValue("id")
	if s.Links == nil || s.Recordings == nil || !s.Links.Valid(id, r.URL.Query().Get("sig")) {
		http.NotFound(w, r)
		return
	}
	c, err := s.Reader.Find(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, "this recording no longer exists", http.StatusGone)
		return
	case err != nil:
		s.logger().ErrorContext(r.Context(), "recording link", slog.String("call", id), slog.String("error", err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case c.IsPurged || c.DeletedAt != nil || c.Record.RecordingKey == "":
		http.Error(w, "this recording no longer exists", http.StatusGone)
		return
	}
	signed, err := s.Recordings.Sign(r.Context(), c.Record.RecordingKey)
	if err != nil {
		s.logger().ErrorContext(r.Context(), "sign recording", slog.String("call", id), slog.String("error", err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, signed.URL, http.StatusFound)
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// healthz answers as long as the process serves requests.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz checks that the database answers and its schema is current.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.Pool.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "database unreachable"})
		return
	}
	if err := migrations.Check(ctx, s.Pool, s.Schema); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// FieldError is one problem with one field of a request: a key of the call
// record (a path such as transcript[2].role) or a query parameter.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// errorBody is every error response: {"error": "...", "fields": [...]}.
// fields is present, possibly empty, so that clients need no special case.
type errorBody struct {
	Error  string       `json:"error"`
	Fields []FieldError `json:"fields"`
}

func writeError(w http.ResponseWriter, status int, msg string, fields ...FieldError) {
	if fields == nil {
		fields = []FieldError{}
	}
	writeJSON(w, status, errorBody{Error: msg, Fields: fields})
}

// internalError logs err (ids and database messages only: callers never
// wrap personal data into errors) and answers 500 without details.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, op string, err error) {
	s.logger().ErrorContext(r.Context(), "api: "+op, slog.String("method", r.Method), slog.String("route", r.Pattern),
		slog.String("error", err.Error()))
	writeError(w, http.StatusInternalServerError, "internal error")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
