// Package api is postcall's HTTP interface, served by the worker: health and
// readiness for orchestrators, and the permanent recording links put in CRM
// notes.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/postcall/postcall/migrations"
	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/store"
)

// Server serves the HTTP API.
type Server struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Schema is the schema readiness checks; "" is the search_path.
	Schema string
	// Links checks recording links; nil disables GET /r/{id}.
	Links *recording.Links
	// Recordings signs recording URLs; nil disables GET /r/{id}.
	Recordings *recording.Store
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /r/{id}", s.recordingLink)
	return mux
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
	c, err := store.GetCall(r.Context(), s.Pool, id)
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
