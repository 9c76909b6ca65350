package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// page is what every template gets.
type page struct {
	Title string
	Nonce string
	// CSRF is the session's token for forms; empty when signed out.
	CSRF  string
	Admin bool
	User  string
}

func (s *Server) page(r *http.Request, title string) page {
	p := page{Title: title, Nonce: nonce(r)}
	if sess := session(r); sess != nil {
		p.CSRF, p.Admin, p.User = sess.CSRF, sess.Principal.Admin(), sess.Principal.Name
	}
	return p
}

var funcs = template.FuncMap{
	"duration": duration,
	"usd":      usd,
	"time":     fmtTime,
	"ptr":      func(t time.Time) *time.Time { return &t },
	"deref": func(s *string) string {
		if s == nil || *s == "" {
			return "-"
		}
		return *s
	},
	"deref2": func(b *bool) bool { return b != nil && *b },
	"intp": func(n *int) string {
		if n == nil {
			return "-"
		}
		return strconv.Itoa(*n)
	},
	"boolp": func(b *bool, yes, no string) string {
		if b == nil {
			return "-"
		}
		if *b {
			return yes
		}
		return no
	},
	"raw": func(v json.RawMessage) string {
		if v == nil {
			return "(absent)"
		}
		return display(v)
	},
	"statusClass": func(s *string) string {
		if s != nil && *s == "completed" {
			return "badge ok"
		}
		return "badge grey"
	},
}

func parseTemplates() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "list", "call", "message"} {
		out[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.templates[name].Execute(w, data); err != nil {
		s.logger().ErrorContext(r.Context(), "console: render "+name, "error", err.Error())
	}
}

type messageData struct {
	page
	Message string
	Back    string
}

// message answers with a short page saying what went wrong or was done.
func (s *Server) message(w http.ResponseWriter, r *http.Request, status int, msg, back string) {
	s.render(w, r, status, "message", &messageData{page: s.page(r, http.StatusText(status)), Message: msg, Back: back})
}

type listData struct {
	page
	Calls    []store.ListItem
	Query    listQuery
	Problems []string
	Next     string
}

// listQuery is the list page's form, as typed.
type listQuery struct {
	Done, From, To, Phone, Search, Agent string
	Deleted                              bool
}

func (q listQuery) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"done": q.Done, "from": q.From, "to": q.To, "phone_number": q.Phone, "search": q.Search, "agent_id": q.Agent} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if q.Deleted {
		v.Set("include_deleted", "true")
	}
	return v
}

// listPage is seed 004's list with its filters and agent, newest first, a
// page at a time (the cursor of the next page is a link).
func (s *Server) listPage(w http.ResponseWriter, r *http.Request) {
	qv := r.URL.Query()
	q := listQuery{Done: qv.Get("done"), From: qv.Get("from"), To: qv.Get("to"), Phone: strings.TrimSpace(qv.Get("phone_number")),
		Search: qv.Get("search"), Agent: strings.TrimSpace(qv.Get("agent_id")), Deleted: qv.Get("include_deleted") == "true"}
	d := &listData{page: s.page(r, "Calls"), Query: q}
	f := store.ListFilter{PhoneNumber: q.Phone, Search: q.Search, AgentID: q.Agent, IncludeDeleted: q.Deleted, Limit: 50}
	switch q.Done {
	case "":
	case "true", "false":
		b := q.Done == "true"
		f.Done = &b
	default:
		d.Problems = append(d.Problems, "Done: choose yes or no")
	}
	for _, t := range []struct {
		label, v string
		dst      *time.Time
	}{{"From", q.From, &f.From}, {"To", q.To, &f.To}} {
		if t.v == "" {
			continue
		}
		parsed, err := parseFormTime(t.v)
		if err != nil {
			d.Problems = append(d.Problems, t.label+": want a date (2026-11-20) or a date and time (2026-11-20T15:04)")
			continue
		}
		*t.dst = parsed
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		d.Problems = append(d.Problems, "To must be after From")
	}
	if len([]rune(q.Search)) > store.MaxSearchLength {
		d.Problems = append(d.Problems, fmt.Sprintf("Search: at most %d characters", store.MaxSearchLength))
	}
	for _, v := range []string{q.Phone, q.Search, q.Agent} {
		if !store.IsText(v) {
			d.Problems = append(d.Problems, "Filters must be text without NUL characters")
			break
		}
	}
	if c := qv.Get("cursor"); c != "" {
		cur, err := store.ParseListCursor(c)
		if err != nil {
			d.Problems = append(d.Problems, "The page link is not valid; start again from the first page")
		} else {
			f.After = &cur
		}
	}
	status := http.StatusOK
	if len(d.Problems) > 0 {
		status = http.StatusBadRequest
	} else {
		res, err := s.Calls.List(r.Context(), f)
		if err != nil {
			s.fail(w, r, "list calls", err)
			return
		}
		d.Calls = res.Calls
		if res.Next != nil {
			v := q.values()
			v.Set("cursor", res.Next.String())
			d.Next = "/calls?" + v.Encode()
		}
	}
	s.render(w, r, status, "list", d)
}

// parseFormTime reads a date (midnight UTC), an <input type=datetime-local>
// value (UTC) or RFC 3339.
func parseFormTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("bad time")
}

type callData struct {
	page
	*callView
	Flash string
}

// flashes are the messages an action's redirect names (?done=...): codes,
// so that a link cannot make the page say anything else.
var flashes = map[string]string{
	"reanalyze": "Re-run queued at high priority. This page updates when it finishes.",
	"redeliver": "Redelivery queued.",
	"delete":    "Call deleted. It can be restored until its window ends.",
	"restore":   "Call restored.",
	"erase":     "The call's personal data was erased.",
}

// callPage is seed 001's call page.
func (s *Server) callPage(w http.ResponseWriter, r *http.Request) {
	c, doc, ok := s.document(w, r)
	if !ok {
		return
	}
	st, err := s.Calls.RetentionStatus(r.Context(), c)
	if err != nil {
		s.fail(w, r, "read retention status", err)
		return
	}
	plan, _, err := s.Calls.Plan(r.Context(), c.Record.AgentID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, "read plan", err)
		return
	}
	d := &callData{page: s.page(r, "Call "+c.Record.CallID), callView: newCallView(doc, st, plan), Flash: flashes[r.URL.Query().Get("done")]}
	s.render(w, r, http.StatusOK, "call", d)
}

// document reads the call named by {id} and its document, purged values
// nulled and, for a viewer, stripped of tokens and cost.
func (s *Server) document(w http.ResponseWriter, r *http.Request) (*store.Call, *calldoc.Document, bool) {
	c, err := s.Calls.Find(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		s.message(w, r, http.StatusNotFound, "No call with this id or call_id (it may have been hard-deleted).", "/calls")
		return nil, nil, false
	}
	if err != nil {
		s.fail(w, r, "read call", err)
		return nil, nil, false
	}
	doc, err := s.Calls.Document(r.Context(), c)
	if err != nil {
		s.fail(w, r, "build call document", err)
		return nil, nil, false
	}
	if !session(r).Principal.Admin() {
		doc.ForViewer()
	}
	return c, doc, true
}

// progress is what the call page polls while processing runs: when it
// changes, the page reloads.
func (s *Server) progress(w http.ResponseWriter, r *http.Request) {
	c, err := s.Calls.Find(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.fail(w, r, "read call", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"done": c.Done, "state": c.State})
}

// download is Download JSON: the call document as a file (admins).
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	c, doc, ok := s.document(w, r)
	if !ok {
		return
	}
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		s.fail(w, r, "encode call document", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="call-`+c.ID.String()+`.json"`)
	_, _ = w.Write(body)
}

func (s *Server) reanalyze(w http.ResponseWriter, r *http.Request) {
	kinds, err := pipeline.ParseKinds(r.PostFormValue("kind"))
	if err != nil {
		s.message(w, r, http.StatusBadRequest, "Re-run: choose analysis, QC or both.", callURL(r))
		return
	}
	_, err = s.Calls.Reanalyze(r.Context(), r.PathValue("id"), kinds)
	s.acted(w, r, "reanalyze", err)
}

func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	c, err := s.Calls.Find(r.Context(), r.PathValue("id"))
	if err == nil {
		_, err = s.Calls.Redeliver(r.Context(), c, r.PostFormValue("integration"))
	}
	s.acted(w, r, "redeliver", err)
}

func (s *Server) softDelete(w http.ResponseWriter, r *http.Request) {
	s.acted(w, r, "delete", s.Calls.SoftDelete(r.Context(), r.PathValue("id")))
}

func (s *Server) restore(w http.ResponseWriter, r *http.Request) {
	s.acted(w, r, "restore", s.Calls.Restore(r.Context(), r.PathValue("id")))
}

// erase needs the call's call_id typed into confirm.
func (s *Server) erase(w http.ResponseWriter, r *http.Request) {
	c, err := s.Calls.Find(r.Context(), r.PathValue("id"))
	if err != nil {
		s.acted(w, r, "erase", err)
		return
	}
	if strings.TrimSpace(r.PostFormValue("confirm")) != c.Record.CallID {
		s.message(w, r, http.StatusBadRequest, "Erase: type the call's call_id exactly to confirm. Nothing was erased.", callURL(r))
		return
	}
	s.acted(w, r, "erase", s.Calls.Erase(r.Context(), c.ID.String()))
}

// acted redirects back to the call page after an action, or says why it
// did not happen.
func (s *Server) acted(w http.ResponseWriter, r *http.Request, action string, err error) {
	switch {
	case err == nil:
		http.Redirect(w, r, callURL(r)+"?done="+action, http.StatusSeeOther)
	case errors.Is(err, store.ErrNotFound):
		s.message(w, r, http.StatusNotFound, "No such call.", "/calls")
	case errors.Is(err, pipeline.ErrNotReanalyzable), errors.Is(err, pipeline.ErrOnHold), errors.Is(err, retention.ErrPastWindow):
		s.message(w, r, http.StatusConflict, err.Error(), callURL(r))
	default:
		s.fail(w, r, action, err)
	}
}

func callURL(r *http.Request) string { return "/calls/" + url.PathEscape(r.PathValue("id")) }
