package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// Enqueuer stores calls and enqueues their post-call processing;
// *pipeline.Calls is one.
type Enqueuer interface {
	// Ingest stores a validated record and enqueues its processing, with
	// the idempotency of `postcall ingest`.
	Ingest(ctx context.Context, rec *call.Record) (*pipeline.IngestResult, error)
	// Reanalyze runs the selected kinds again with the agent's current
	// plan.
	Reanalyze(ctx context.Context, ref string, kinds pipeline.Kinds) (*pipeline.IngestResult, error)
}

// Reader reads calls; *pipeline.Calls is one. Errors wrapping
// store.ErrNotFound answer 404.
type Reader interface {
	// Find returns the call named by ref (postcall's id or the platform's
	// call_id).
	Find(ctx context.Context, ref string) (*store.Call, error)
	// Document returns the call document of c, its recording URL signed.
	Document(ctx context.Context, c *store.Call) (*calldoc.Document, error)
	// List returns one page of calls, newest first.
	List(ctx context.Context, f store.ListFilter) (*store.ListPage, error)
	// ListItem returns one call as List shows it.
	ListItem(ctx context.Context, id uuid.UUID) (*store.ListItem, error)
}

// Retention soft-deletes and erases calls; *pipeline.Calls is one. ref is
// postcall's id of a call that exists. Errors wrapping store.ErrNotFound
// answer 404, errors wrapping ErrConflict or pipeline.ErrOnHold 409 with the
// error's message (which must hold no personal data), any other 500.
type Retention interface {
	// SoftDelete marks the call deleted: it leaves listings and is
	// hard-deleted when the agent's retention period says so.
	SoftDelete(ctx context.Context, ref string) error
	// Erase purges the call's personal data now (an erasure request).
	Erase(ctx context.Context, ref string) error
}

// ErrConflict marks a Retention refusal the caller can act on, such as a
// legal hold: the API answers 409 with the error's message.
var ErrConflict = errors.New("conflict")

// createCallResponse answers POST /v1/calls.
type createCallResponse struct {
	ID     uuid.UUID `json:"id"`
	CallID string    `json:"call_id"`
	// Duplicate is true when the call_id was already stored: nothing was
	// stored or enqueued.
	Duplicate bool `json:"duplicate"`
	// AutoDisposition is the disposition given without a model, if any.
	AutoDisposition *string   `json:"auto_disposition"`
	AutoReason      *string   `json:"auto_reason"`
	Runs            []runJSON `json:"runs"`
}

type runJSON struct {
	ID   int64  `json:"id"`
	Kind string `json:"kind"`
}

func newRunsResponse(res *pipeline.IngestResult) (auto, reason *string, runs []runJSON) {
	runs = []runJSON{}
	for _, r := range res.Runs {
		runs = append(runs, runJSON{ID: r.ID, Kind: r.Kind})
	}
	if res.Auto != nil {
		auto, reason = &res.Auto.Disposition, &res.Auto.Reason
	}
	return auto, reason, runs
}

// createCall stores one call record (the JSON of one ingest line) and
// enqueues its processing: 202 for a new call, 200 with duplicate true for a
// call_id already stored (nothing is enqueued), 400 with every field error,
// 422 for an agent with no plan.
func (s *Server) createCall(w http.ResponseWriter, r *http.Request) {
	if s.Enqueuer == nil {
		writeError(w, http.StatusNotImplemented, "ingest is not enabled on this server")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			writeError(w, http.StatusUnsupportedMediaType, "send the call record as application/json")
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBodyBytes()))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "could not read the request body")
		return
	}
	rec, err := call.ParseRecord(body)
	if err != nil {
		var invalid *call.ValidationError
		if !errors.As(err, &invalid) {
			s.internalError(w, r, "parse call record", err)
			return
		}
		fields := make([]FieldError, len(invalid.Problems))
		for i, p := range invalid.Problems {
			fields[i] = FieldError{Field: p.Field, Message: p.Message}
		}
		writeError(w, http.StatusBadRequest, "invalid call record", fields...)
		return
	}
	res, err := s.Enqueuer.Ingest(r.Context(), rec)
	switch {
	case errors.Is(err, pipeline.ErrUnknownAgent):
		writeError(w, http.StatusUnprocessableEntity, "unknown agent",
			FieldError{Field: "agent_id", Message: "no agent with this id: apply its plan with `postcall agents apply`"})
		return
	case errors.Is(err, store.ErrCallIDIsAnID):
		writeError(w, http.StatusBadRequest, "invalid call record",
			FieldError{Field: "call_id", Message: store.ErrCallIDIsAnID.Error()})
		return
	case err != nil:
		s.internalError(w, r, "ingest call", err)
		return
	}
	resp := createCallResponse{ID: res.ID, CallID: rec.CallID, Duplicate: res.Duplicate}
	resp.AutoDisposition, resp.AutoReason, resp.Runs = newRunsResponse(res)
	w.Header().Set("Location", "/v1/calls/"+res.ID.String())
	status := http.StatusAccepted
	if res.Duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, resp)
}

func (s *Server) maxBodyBytes() int64 {
	if s.MaxBodyBytes > 0 {
		return s.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

// listCallsResponse answers GET /v1/calls.
type listCallsResponse struct {
	Calls []store.ListItem `json:"calls"`
	// NextCursor fetches the next page (?cursor=); null on the last one.
	NextCursor *string `json:"next_cursor"`
}

// listParams are the query parameters of GET /v1/calls.
var listParams = []string{"done", "from", "to", "phone_number", "search", "agent_id", "include_deleted", "limit", "cursor"}

// listCalls pages through calls, newest first, with seed 004's filters.
// Unknown or repeated parameters are errors: a misspelt filter must not
// silently list every call.
func (s *Server) listCalls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var problems []FieldError
	bad := func(field, format string, args ...any) {
		problems = append(problems, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	for _, k := range sortedKeys(q) {
		switch {
		case !slices.Contains(listParams, k):
			bad(k, "unknown parameter (known: %s)", strings.Join(listParams, ", "))
		case len(q[k]) > 1:
			bad(k, "given more than once")
		case !store.IsText(q[k][0]):
			// No stored value holds either (ingest refuses them), and
			// PostgreSQL's text cannot: a filter with one matches nothing
			// we could answer honestly.
			bad(k, "must be UTF-8 text without NUL characters")
		}
	}
	var f store.ListFilter
	if v, ok := param(q, "done"); ok {
		if b, err := strconv.ParseBool(v); err != nil {
			bad("done", "want true or false")
		} else {
			f.Done = &b
		}
	}
	if v, ok := param(q, "include_deleted"); ok {
		if b, err := strconv.ParseBool(v); err != nil {
			bad("include_deleted", "want true or false")
		} else {
			f.IncludeDeleted = b
		}
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v, ok := param(q, t.name); ok {
			if parsed, err := parseTime(v); err != nil {
				bad(t.name, "want an RFC 3339 time (2026-11-20T15:04:05Z) or a date (2026-11-20)")
			} else {
				*t.dst = parsed
			}
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		bad("to", "must be after from")
	}
	f.PhoneNumber, _ = param(q, "phone_number")
	f.AgentID, _ = param(q, "agent_id")
	if v, ok := param(q, "search"); ok {
		if len([]rune(v)) > store.MaxSearchLength {
			bad("search", "longer than %d characters", store.MaxSearchLength)
		}
		f.Search = v
	}
	if v, ok := param(q, "limit"); ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > store.MaxListLimit {
			bad("limit", "want an integer from 1 to %d", store.MaxListLimit)
		} else {
			f.Limit = n
		}
	}
	if v, ok := param(q, "cursor"); ok {
		if c, err := store.ParseListCursor(v); err != nil {
			bad("cursor", "%s", err)
		} else {
			f.After = &c
		}
	}
	if len(problems) > 0 {
		writeError(w, http.StatusBadRequest, "invalid query parameters", problems...)
		return
	}

	page, err := s.Reader.List(r.Context(), f)
	if err != nil {
		s.internalError(w, r, "list calls", err)
		return
	}
	resp := listCallsResponse{Calls: page.Calls}
	if resp.Calls == nil {
		resp.Calls = []store.ListItem{}
	}
	if page.Next != nil {
		next := page.Next.String()
		resp.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, resp)
}

// param returns the first value of a query parameter and whether it was
// given; an empty value counts as not given.
func param(q url.Values, key string) (string, bool) {
	v := q.Get(key)
	return v, v != ""
}

// parseTime reads an RFC 3339 time, or a date meaning its midnight UTC.
func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, v)
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// getCall returns the call document, with a freshly signed recording URL
// when recordings are configured. {id} is postcall's id or the platform's
// call_id.
func (s *Server) getCall(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findCall(w, r)
	if !ok {
		return
	}
	doc, err := s.Reader.Document(r.Context(), c)
	if err != nil {
		s.internalError(w, r, "build call document", err)
		return
	}
	if !principal(r).Admin() {
		doc.ForViewer()
	}
	writeJSON(w, http.StatusOK, doc)
}

// findCall reads the call named by {id}, answering 404 (or 500) itself when
// it cannot.
func (s *Server) findCall(w http.ResponseWriter, r *http.Request) (*store.Call, bool) {
	c, err := s.Reader.Find(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
		return nil, false
	case err != nil:
		s.internalError(w, r, "read call", err)
		return nil, false
	}
	return c, true
}

// reanalyzeResponse answers POST /v1/calls/{id}/reanalyze.
type reanalyzeResponse struct {
	ID              uuid.UUID `json:"id"`
	AutoDisposition *string   `json:"auto_disposition"`
	AutoReason      *string   `json:"auto_reason"`
	Runs            []runJSON `json:"runs"`
}

// reanalyzeCall runs analysis and/or QC again (?kind=analysis|qc|all,
// default all) with the agent's current plan, at high priority: 202. A
// purged or deleted call, or a kind the plan lacks, is 409.
func (s *Server) reanalyzeCall(w http.ResponseWriter, r *http.Request) {
	if s.Enqueuer == nil {
		writeError(w, http.StatusNotImplemented, "reanalysis is not enabled on this server")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "kind" {
			writeError(w, http.StatusBadRequest, "invalid query parameters", FieldError{Field: k, Message: "unknown parameter (known: kind)"})
			return
		}
	}
	var kinds pipeline.Kinds
	switch q.Get("kind") {
	case "", "all":
		kinds = pipeline.AllKinds
	case "analysis":
		kinds.Analysis = true
	case "qc":
		kinds.QC = true
	default:
		writeError(w, http.StatusBadRequest, "invalid query parameters", FieldError{Field: "kind", Message: "want analysis, qc or all"})
		return
	}
	res, err := s.Enqueuer.Reanalyze(r.Context(), r.PathValue("id"), kinds)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
		return
	case errors.Is(err, pipeline.ErrNotReanalyzable):
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		s.internalError(w, r, "reanalyze call", err)
		return
	}
	resp := reanalyzeResponse{ID: res.ID}
	resp.AutoDisposition, resp.AutoReason, resp.Runs = newRunsResponse(res)
	writeJSON(w, http.StatusAccepted, resp)
}

// deleteCall soft-deletes a call: 204. It leaves listings (unless
// include_deleted=true) and GET /v1/calls/{id} shows its deleted_at.
func (s *Server) deleteCall(w http.ResponseWriter, r *http.Request) {
	if s.Retention == nil {
		writeError(w, http.StatusNotImplemented, "deleting calls is not enabled on this server")
		return
	}
	c, ok := s.findCall(w, r)
	if !ok {
		return
	}
	if !s.retentionDone(w, r, "soft-delete call", s.Retention.SoftDelete(r.Context(), c.ID.String())) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// purgeCall erases a call's personal data now (an erasure request) and
// answers 200 with the call's list item as it is afterwards (is_purged
// true, personal data null), or 204 when the erasure removed the call
// altogether.
func (s *Server) purgeCall(w http.ResponseWriter, r *http.Request) {
	if s.Retention == nil {
		writeError(w, http.StatusNotImplemented, "erasure is not enabled on this server")
		return
	}
	c, ok := s.findCall(w, r)
	if !ok {
		return
	}
	if !s.retentionDone(w, r, "erase call", s.Retention.Erase(r.Context(), c.ID.String())) {
		return
	}
	item, err := s.Reader.ListItem(r.Context(), c.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		w.WriteHeader(http.StatusNoContent)
	case err != nil:
		s.internalError(w, r, "read erased call", err)
	default:
		writeJSON(w, http.StatusOK, item)
	}
}

// retentionDone answers a failed Retention call and reports whether it
// succeeded.
func (s *Server) retentionDone(w http.ResponseWriter, r *http.Request, op string, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, pipeline.ErrOnHold):
		writeError(w, http.StatusConflict, fmt.Errorf("%w: %w", ErrConflict, err).Error())
	default:
		s.internalError(w, r, op, err)
	}
	return false
}
