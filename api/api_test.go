package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/api"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/internal/app"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/jobs"
	"github.com/postcall/postcall/metrics"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/store"
)

const (
	testToken = "test-token-0123456789"
	planYAML  = `
- id: sales
  analysis:
    prompt: "You review sales calls."
    fields:
      - {name: summary, type: string}
      - {name: outcome, type: enum, values: [agreed, declined]}
    summary_field: summary
    disposition_field: outcome
  qc:
    prompt: "Judge the agent."
    checklist:
      - {id: greeting, description: "Introduced itself"}
- id: support
`
)

type testBundle struct {
	pool      *pgxpool.Pool
	schema    string
	server    *api.Server
	url       string
	retention *fakeRetention
	registry  *prometheus.Registry
	metrics   *metrics.Metrics
	seq       int
}

// setup serves the API on a schema of its own, with an insert-only River
// client (jobs are enqueued, not worked), a recording store that signs
// URLs, a fake retention and a metrics registry. mutate adjusts the server
// before it starts.
func setup(t *testing.T, mutate ...func(*api.Server)) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	cfg, err := config.Load(nil)
	require.NoError(t, err)
	built, err := app.New(ctx, cfg, app.Options{Pool: pool, Schema: schema}) // no model: runs are enqueued, not worked
	require.NoError(t, err)
	plans, err := agent.ParsePlans([]byte(planYAML))
	require.NoError(t, err)
	for i := range plans {
		_, _, err = store.ApplyPlan(ctx, pool, &plans[i])
		require.NoError(t, err)
	}
	recordings, err := recording.New(ctx, recording.Config{
		Bucket: "recordings", Endpoint: "http://127.0.0.1:1", Region: "us-east-1", ForcePathStyle: true,
		AccessKeyID: "AKIDTEST", SecretAccessKey: "secret",
	})
	require.NoError(t, err)

	built.Calls.Recordings = recordings // documents are signed as /r/{id} links are
	b := &testBundle{pool: pool, schema: schema, retention: &fakeRetention{}, registry: prometheus.NewRegistry()}
	b.metrics, err = metrics.New(b.registry, metrics.Options{DB: pool, Schema: schema, Queues: jobs.Queues()})
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.server = &api.Server{
		Pool: pool, Schema: schema, Token: testToken,
		Reader:     built.Calls,
		Enqueuer:   built.Calls,
		Retention:  b.retention,
		Metrics:    metrics.Handler(b.registry, logger),
		Recordings: recordings,
		Logger:     logger,
	}
	for _, m := range mutate {
		m(b.server)
	}
	srv := httptest.NewServer(b.server.Handler())
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// do sends a request with the given bearer token ("" for none).
func (b *testBundle) do(t *testing.T, method, path, body, token string) *response {
	t.Helper()
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return &response{status: res.StatusCode, header: res.Header, body: data}
}

func (b *testBundle) get(t *testing.T, path string) *response {
	t.Helper()
	return b.do(t, http.MethodGet, path, "", testToken)
}

// insert stores a call directly, created at the given time, and returns
// its id: list tests need control over created_at.
func (b *testBundle) insert(t *testing.T, createdAt time.Time, mutate func(*call.Record)) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	b.seq++
	rec := &call.Record{
		CallID: fmt.Sprintf("call-%03d", b.seq), AgentID: "sales", EndedReason: "customer-ended-call",
		EndedAt: createdAt, PhoneNumber: fmt.Sprintf("+4930123%04d", b.seq), CustomerName: fmt.Sprintf("Customer %d", b.seq),
	}
	if mutate != nil {
		mutate(rec)
	}
	id, inserted, err := store.InsertCall(ctx, b.pool, store.NewCall{Record: rec, PhoneKey: call.NormalizePhone(rec.PhoneNumber)})
	require.NoError(t, err)
	require.True(t, inserted)
	b.exec(t, `UPDATE calls SET created_at = $2 WHERE id = $1`, id, createdAt)
	return id
}

func (b *testBundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

// list fetches one page and returns its call_ids and next cursor.
func (b *testBundle) list(t *testing.T, query string) (callIDs []string, next string) {
	t.Helper()
	res := b.get(t, "/v1/calls?"+query)
	require.Equal(t, http.StatusOK, res.status, "%s: %s", query, res.body)
	var page struct {
		Calls []struct {
			CallID string `json:"call_id"`
		} `json:"calls"`
		NextCursor *string `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal(res.body, &page))
	callIDs = []string{}
	for _, c := range page.Calls {
		callIDs = append(callIDs, c.CallID)
	}
	if page.NextCursor != nil {
		next = *page.NextCursor
	}
	return callIDs, next
}

// fakeRetention records what it is asked and answers err.
type fakeRetention struct {
	mu      sync.Mutex
	deleted []string
	erased  []string
	err     error
	pool    *pgxpool.Pool
}

func (f *fakeRetention) SoftDelete(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, ref)
	return f.err
}

func (f *fakeRetention) Erase(ctx context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.erased = append(f.erased, ref)
	if f.err != nil {
		return f.err
	}
	// What the real erasure does to the row, as far as the API shows it.
	_, err := f.pool.Exec(ctx, `UPDATE calls SET is_purged = true, purged_at = now(), phone_number = NULL,
		customer_name = NULL, transcript = NULL WHERE id = $1`, ref)
	return err
}

const goodCall = `{"call_id":"api-1","agent_id":"sales","ended_at":"2026-11-20T10:00:00Z","ended_reason":"customer-ended-call",
	"phone_number":"+15550100001","customer_name":"Ada Lovelace","duration":60,"recording_key":"rec/api-1.wav",
	"transcript":[{"role":"agent","text":"Hello from ACME"},{"role":"user","text":"Hi, I want the demo"}],
	"my_field":{"a":1}}`

func TestAuth(t *testing.T) {
	t.Parallel()
	open := setup(t, func(s *api.Server) { s.Token = "" })
	closed := setup(t)

	for _, tc := range []struct {
		name   string
		b      *testBundle
		method string
		path   string
		header string
		want   int
	}{
		{"health needs no token", open, "GET", "/healthz", "", 200},
		{"readiness needs no token", open, "GET", "/readyz", "", 200},
		{"recording links carry their own signature", open, "GET", "/r/" + uuid.NewString() + "?sig=x", "", 404},
		{"no token configured: list refused", open, "GET", "/v1/calls", "", 401},
		{"no token configured: any bearer refused", open, "GET", "/v1/calls", "Bearer ", 401},
		{"no token configured: metrics refused", open, "GET", "/metrics", "", 401},
		{"no token configured: unknown route refused", open, "GET", "/v1/nope", "", 401},
		{"missing token", closed, "GET", "/v1/calls", "", 401},
		{"wrong token", closed, "GET", "/v1/calls", "Bearer wrong", 401},
		{"token with a suffix", closed, "GET", "/v1/calls", "Bearer " + testToken + "x", 401},
		{"token as basic auth", closed, "GET", "/v1/calls", "Basic " + testToken, 401},
		{"right token", closed, "GET", "/v1/calls", "Bearer " + testToken, 200},
		{"scheme is case-insensitive", closed, "GET", "/v1/calls", "bearer " + testToken, 200},
		{"metrics with the token", closed, "GET", "/metrics", "Bearer " + testToken, 200},
		{"writes need the token", closed, "POST", "/v1/calls", "", 401},
		{"unknown route with the token", closed, "GET", "/v1/nope", "Bearer " + testToken, 404},
		{"wrong method with the token", closed, "PUT", "/v1/calls", "Bearer " + testToken, 405},
	} {
		req, err := http.NewRequest(tc.method, tc.b.url+tc.path, nil)
		require.NoError(t, err)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err, tc.name)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, tc.want, res.StatusCode, "%s: %s", tc.name, body)
		if tc.want == 401 {
			require.Equal(t, `Bearer realm="postcall"`, res.Header.Get("WWW-Authenticate"), tc.name)
			var e map[string]any
			require.NoError(t, json.Unmarshal(body, &e), tc.name)
			require.NotEmpty(t, e["error"], tc.name)
		}
	}
}

func TestCreateCall(t *testing.T) {
	t.Parallel()
	b := setup(t)

	res := b.do(t, "POST", "/v1/calls", goodCall, testToken)
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	created := res.json(t)
	require.Equal(t, "api-1", created["call_id"])
	require.Equal(t, false, created["duplicate"])
	require.Nil(t, created["auto_disposition"])
	require.Len(t, created["runs"], 2, "one analysis and one QC run enqueued")
	id := created["id"].(string)
	require.Equal(t, "/v1/calls/"+id, res.header.Get("Location"))

	var jobsQueued int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job`).Scan(&jobsQueued))
	require.Equal(t, 2, jobsQueued)

	// The same call again: stored once, nothing enqueued.
	res = b.do(t, "POST", "/v1/calls", goodCall, testToken)
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	again := res.json(t)
	require.Equal(t, true, again["duplicate"])
	require.Equal(t, id, again["id"])
	require.Empty(t, again["runs"])
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job`).Scan(&jobsQueued))
	require.Equal(t, 2, jobsQueued)

	// A voicemail is disposed of at once.
	res = b.do(t, "POST", "/v1/calls", `{"call_id":"api-vm","agent_id":"sales","ended_at":"2026-11-20T10:00:00Z","ended_reason":"voicemail"}`, testToken)
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	vm := res.json(t)
	require.Equal(t, "voicemail", vm["auto_disposition"])
	require.NotEmpty(t, vm["auto_reason"])
	require.Empty(t, vm["runs"])

	// What was posted is what the document holds, unknown keys included.
	doc := b.get(t, "/v1/calls/api-1").json(t)
	require.Equal(t, id, doc["id"])
	require.Equal(t, map[string]any{"a": float64(1)}, doc["my_field"])
}

func TestCreateCallRejects(t *testing.T) {
	t.Parallel()
	b := setup(t, func(s *api.Server) { s.MaxBodyBytes = 4096 })

	for _, tc := range []struct {
		name        string
		body        string
		contentType string
		want        int
		fields      []string
	}{
		{"not JSON", `{"call_id":`, "application/json", 400, []string{""}},
		{"not an object", `[1,2]`, "application/json", 400, []string{""}},
		{"required fields missing", `{"transcript":[]}`, "application/json", 400, []string{"agent_id", "call_id", "ended_at", "ended_reason"}},
		{"every bad field at once", `{"call_id":"x","agent_id":"sales","ended_at":"yesterday","ended_reason":"voicemail","duration":-1,"transcript":[{"role":"system","text":"x"}]}`,
			"application/json", 400, []string{"duration", "ended_at", "transcript[0].role"}},
		{"unknown agent", `{"call_id":"x","agent_id":"nobody","ended_at":"2026-11-20T10:00:00Z","status":"completed"}`,
			"application/json", 422, []string{"agent_id"}},
		{"wrong content type", goodCall, "text/plain", 415, nil},
		{"body too large", `{"call_id":"x","agent_id":"sales","ended_at":"2026-11-20T10:00:00Z","status":"completed","customer_request":"` +
			strings.Repeat("x", 5000) + `"}`, "application/json", 413, nil},
	} {
		req, err := http.NewRequest("POST", b.url+"/v1/calls", strings.NewReader(tc.body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", tc.contentType)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, tc.want, res.StatusCode, "%s: %s", tc.name, body)
		var e struct {
			Error  string           `json:"error"`
			Fields []api.FieldError `json:"fields"`
		}
		require.NoError(t, json.Unmarshal(body, &e), tc.name)
		require.NotEmpty(t, e.Error, tc.name)
		var fields []string
		for _, f := range e.Fields {
			require.NotEmpty(t, f.Message, tc.name)
			fields = append(fields, f.Field)
		}
		slices.Sort(fields)
		fields = slices.Compact(fields)
		require.Equal(t, tc.fields, fields, "%s: %s", tc.name, body)
	}
	ids, _ := b.list(t, "include_deleted=true")
	require.Empty(t, ids, "nothing of a rejected call is stored")
}

// TestListFilters runs each filter of GET /v1/calls over one set of calls.
func TestListFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	day := func(d int) time.Time { return time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC) }
	// call-003 gets deleted and call-004 purged below.
	b.insert(t, day(1), func(r *call.Record) { r.CustomerName = "Grace Hopper"; r.PhoneNumber = "+14155550100" })
	b.insert(t, day(2), func(r *call.Record) { r.AgentID = "support" })
	b.insert(t, day(3), nil)
	b.insert(t, day(4), nil)
	b.insert(t, day(5), func(r *call.Record) { r.PhoneNumber = "anonymous" })
	b.insert(t, day(6), func(r *call.Record) { r.PhoneNumber = "+1 (415) 555-0100" })
	b.exec(t, `UPDATE calls SET done = true, state = 'done' WHERE call_id IN ('call-001', 'call-004', 'call-006')`)
	b.exec(t, `UPDATE calls SET call_summary = 'Customer asked for a DEMO of 50% off' WHERE call_id = 'call-002'`)
	b.exec(t, `UPDATE calls SET call_summary = 'Wants a demo' WHERE call_id = 'call-004'`)
	b.exec(t, `UPDATE calls SET deleted_at = now() WHERE call_id = 'call-003'`)
	// A half-done purge that left the phone key behind: the call must still
	// not be found by its number.
	b.exec(t, `UPDATE calls SET is_purged = true, purged_at = now(), phone_number = NULL, customer_name = NULL,
		phone_key = '+14155550100' WHERE call_id = 'call-004'`)

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"call-006", "call-005", "call-004", "call-002", "call-001"}},
		{"include_deleted=true", []string{"call-006", "call-005", "call-004", "call-003", "call-002", "call-001"}},
		{"done=true", []string{"call-006", "call-004", "call-001"}},
		{"done=false", []string{"call-005", "call-002"}},
		{"done=0&include_deleted=1", []string{"call-005", "call-003", "call-002"}},
		{"from=2026-11-04T12:00:00Z", []string{"call-006", "call-005", "call-004"}},
		{"to=2026-11-02T12:00:00Z", []string{"call-001"}},
		{"from=2026-11-02&to=2026-11-05", []string{"call-004", "call-002"}},
		{"from=2026-11-02T13:00:00%2B01:00", []string{"call-006", "call-005", "call-004", "call-002"}},
		{"agent_id=support", []string{"call-002"}},
		{"agent_id=nobody", []string{}},
		{"phone_number=%2B14155550100", []string{"call-006", "call-001"}},
		{"phone_number=" + url.QueryEscape("+1 415-555-0100"), []string{"call-006", "call-001"}},
		{"phone_number=anonymous", []string{"call-005"}},
		{"phone_number=%2B15550100000", []string{}},
		{"search=grace", []string{"call-001"}},
		{"search=HOPPER", []string{"call-001"}},
		{"search=demo", []string{"call-004", "call-002"}},
		{"search=50%25", []string{"call-002"}},
		{"search=5%25", []string{}},
		{"search=" + url.QueryEscape("555-0100"), []string{"call-006", "call-001"}},
		{"search=" + url.QueryEscape("(415) 555"), []string{"call-006", "call-001"}},
		{"search=anonym", []string{"call-005"}},
		{"search=demo&done=true", []string{"call-004"}},
	} {
		got, next := b.list(t, tc.query)
		require.Equal(t, tc.want, got, tc.query)
		require.Empty(t, next, tc.query)
	}
}

func TestListRejectsBadParameters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		query string
		field string
	}{
		{"phone=%2B15550100001", "phone"},
		{"done=maybe", "done"},
		{"include_deleted=yes", "include_deleted"},
		{"from=yesterday", "from"},
		{"to=2026-13-01", "to"},
		{"from=2026-11-05&to=2026-11-01", "to"},
		{"limit=0", "limit"},
		{"limit=201", "limit"},
		{"limit=ten", "limit"},
		{"cursor=garbage", "cursor"},
		{"done=true&done=false", "done"},
		{"search=" + strings.Repeat("a", 201), "search"},
	} {
		res := b.get(t, "/v1/calls?"+tc.query)
		require.Equal(t, http.StatusBadRequest, res.status, "%s: %s", tc.query, res.body)
		var e struct {
			Fields []api.FieldError `json:"fields"`
		}
		require.NoError(t, json.Unmarshal(res.body, &e))
		require.Len(t, e.Fields, 1, "%s: %s", tc.query, res.body)
		require.Equal(t, tc.field, e.Fields[0].Field, tc.query)
	}
}

func TestListPaginatesWithoutGapsOrDuplicates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var want []string
	for i := range 120 {
		// Every third call shares its predecessor's created_at.
		at := base.Add(time.Duration(i-i/3) * time.Minute)
		b.insert(t, at, nil)
	}
	rows, err := b.pool.Query(context.Background(), `SELECT call_id FROM calls ORDER BY created_at DESC, id DESC`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		want = append(want, id)
	}
	require.NoError(t, rows.Err())
	require.Len(t, want, 120)

	var got []string
	var sizes []int
	query := ""
	for range 10 {
		ids, next := b.list(t, query)
		got = append(got, ids...)
		sizes = append(sizes, len(ids))
		if next == "" {
			break
		}
		query = "cursor=" + url.QueryEscape(next)
	}
	require.Equal(t, []int{50, 50, 20}, sizes, "default page size 50")
	require.Equal(t, want, got)

	all, next := b.list(t, "limit=200")
	require.Equal(t, want, all)
	require.Empty(t, next)

	// A cursor keeps its filters' meaning: page 2 of agent sales only.
	first, next := b.list(t, "limit=100&agent_id=sales")
	require.Len(t, first, 100)
	rest, _ := b.list(t, "limit=100&agent_id=sales&cursor="+url.QueryEscape(next))
	require.Equal(t, want[100:], rest)
}

func TestListVsDetailFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, "POST", "/v1/calls", goodCall, testToken)
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	b.exec(t, `UPDATE calls SET final_score = 8, call_summary = 'Wants a demo' WHERE call_id = 'api-1'`)

	res = b.get(t, "/v1/calls")
	require.Equal(t, http.StatusOK, res.status)
	require.Equal(t, "no-store", res.header.Get("Cache-Control"))
	var page struct {
		Calls []map[string]any `json:"calls"`
	}
	require.NoError(t, json.Unmarshal(res.body, &page))
	require.Len(t, page.Calls, 1)
	item := page.Calls[0]
	for _, k := range []string{
		"id", "call_id", "agent_id", "customer_name", "phone_number", "duration", "status", "done",
		"general_success", "disposition", "call_summary", "is_purged", "deleted_at", "created_at", "updated_at",
	} {
		require.Contains(t, item, k)
	}
	for _, k := range []string{"transcript", "recording", "final_score", "analysis", "qc", "my_field"} {
		require.NotContains(t, item, k, "detail only")
	}
	require.Equal(t, "Ada Lovelace", item["customer_name"])
	require.Equal(t, "+15550100001", item["phone_number"])
	require.Equal(t, "completed", item["status"])
	require.Equal(t, "Wants a demo", item["call_summary"])

	doc := b.get(t, "/v1/calls/"+item["id"].(string)).json(t)
	require.Equal(t, float64(8), doc["final_score"])
	require.Len(t, doc["transcript"], 2)
	rec := doc["recording"].(map[string]any)
	require.Equal(t, "rec/api-1.wav", rec["key"])
	require.Contains(t, rec["url"], "X-Amz-Signature=", "a freshly signed URL")
	expires, err := time.Parse(time.RFC3339, rec["expires_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(time.Hour), expires, 5*time.Second)
	for _, k := range []string{"status", "call_summary", "phone_number", "customer_name", "done"} {
		require.Equal(t, item[k], doc[k], "list and detail agree on %s", k)
	}
}

func TestPurgedCallReturnsNulls(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, "POST", "/v1/calls", goodCall, testToken)
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	// Marked purged with its personal data still in the row: the API must
	// not show it whatever the purge left behind.
	b.exec(t, `UPDATE calls SET is_purged = true, purged_at = now() WHERE call_id = 'api-1'`)

	ids, _ := b.list(t, "")
	require.Equal(t, []string{"api-1"}, ids)
	var page struct {
		Calls []map[string]any `json:"calls"`
	}
	require.NoError(t, json.Unmarshal(b.get(t, "/v1/calls").body, &page))
	require.Nil(t, page.Calls[0]["phone_number"])
	require.Nil(t, page.Calls[0]["customer_name"])
	require.Equal(t, true, page.Calls[0]["is_purged"])

	doc := b.get(t, "/v1/calls/api-1").json(t)
	require.Equal(t, true, doc["is_purged"])
	require.NotNil(t, doc["purged_at"])
	for _, k := range []string{"phone_number", "customer_name", "transcript", "recording"} {
		require.Contains(t, doc, k)
		require.Nil(t, doc[k], k)
	}
	require.NotContains(t, string(b.get(t, "/v1/calls/api-1").body), "Lovelace")
}

func TestGetCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := b.do(t, "POST", "/v1/calls", goodCall, testToken).json(t)

	for _, ref := range []string{created["id"].(string), "api-1"} {
		res := b.get(t, "/v1/calls/"+ref)
		require.Equal(t, http.StatusOK, res.status, ref)
		require.Equal(t, "api-1", res.json(t)["call_id"])
	}
	for _, ref := range []string{"nope", uuid.NewString()} {
		res := b.get(t, "/v1/calls/"+ref)
		require.Equal(t, http.StatusNotFound, res.status, ref)
		require.Equal(t, "not found", res.json(t)["error"])
	}
}

func TestReanalyze(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := b.do(t, "POST", "/v1/calls", goodCall, testToken).json(t)
	id := created["id"].(string)

	res := b.do(t, "POST", "/v1/calls/api-1/reanalyze?kind=qc", "", testToken)
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	body := res.json(t)
	require.Equal(t, id, body["id"])
	runs := body["runs"].([]any)
	require.Len(t, runs, 1)
	require.Equal(t, "qc", runs[0].(map[string]any)["kind"])

	res = b.do(t, "POST", "/v1/calls/"+id+"/reanalyze", "", testToken)
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	require.Len(t, res.json(t)["runs"], 2, "kind defaults to all")

	var highPriority int
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM river_job WHERE priority = $1`, pipeline.PriorityReanalyze).Scan(&highPriority))
	require.Equal(t, 3, highPriority)

	for _, tc := range []struct {
		path string
		want int
	}{
		{"/v1/calls/api-1/reanalyze?kind=everything", 400},
		{"/v1/calls/api-1/reanalyze?knd=qc", 400},
		{"/v1/calls/nope/reanalyze", 404},
	} {
		res := b.do(t, "POST", tc.path, "", testToken)
		require.Equal(t, tc.want, res.status, "%s: %s", tc.path, res.body)
	}

	b.exec(t, `UPDATE calls SET is_purged = true, purged_at = now() WHERE id = $1`, id)
	res = b.do(t, "POST", "/v1/calls/"+id+"/reanalyze", "", testToken)
	require.Equal(t, http.StatusConflict, res.status, "%s", res.body)
	require.Contains(t, res.json(t)["error"], "purged")
}

func TestRetentionRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.retention.pool = b.pool
	created := b.do(t, "POST", "/v1/calls", goodCall, testToken).json(t)
	id := created["id"].(string)

	res := b.do(t, "DELETE", "/v1/calls/api-1", "", testToken)
	require.Equal(t, http.StatusNoContent, res.status, "%s", res.body)
	require.Equal(t, []string{id}, b.retention.deleted, "the call_id is resolved to postcall's id")

	res = b.do(t, "POST", "/v1/calls/api-1/purge", "", testToken)
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	item := res.json(t)
	require.Equal(t, true, item["is_purged"])
	require.Nil(t, item["phone_number"])
	require.Equal(t, []string{id}, b.retention.erased)

	for _, method := range []string{"DELETE", "POST"} {
		path := map[string]string{"DELETE": "/v1/calls/nope", "POST": "/v1/calls/nope/purge"}[method]
		res := b.do(t, method, path, "", testToken)
		require.Equal(t, http.StatusNotFound, res.status, path)
	}
	require.Len(t, b.retention.deleted, 1, "an unknown call never reaches the retention")

	b.retention.err = fmt.Errorf("%w: call is on legal hold", api.ErrConflict)
	res = b.do(t, "DELETE", "/v1/calls/api-1", "", testToken)
	require.Equal(t, http.StatusConflict, res.status)
	require.Contains(t, res.json(t)["error"], "legal hold")
	b.retention.err = errors.New("database on fire")
	res = b.do(t, "POST", "/v1/calls/api-1/purge", "", testToken)
	require.Equal(t, http.StatusInternalServerError, res.status)
	require.Equal(t, "internal error", res.json(t)["error"], "no internals in answers")

	without := setup(t, func(s *api.Server) { s.Retention = nil })
	without.do(t, "POST", "/v1/calls", goodCall, testToken)
	for _, req := range [][2]string{{"DELETE", "/v1/calls/api-1"}, {"POST", "/v1/calls/api-1/purge"}} {
		res := without.do(t, req[0], req[1], "", testToken)
		require.Equal(t, http.StatusNotImplemented, res.status, req[1])
	}
}

// TestMetricsExposition serves the registry after some activity: an LLM
// request through the fake server with the observer wired, a delivery
// observation, and jobs waiting in the queue.
func TestMetricsExposition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	llm := openaitest.NewServer(t)
	llm.SetDefault(func(*openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Content: "ok", Usage: json.RawMessage(
			`{"prompt_tokens":2000,"completion_tokens":30,"total_tokens":2030,"prompt_tokens_details":{"cached_tokens":1536}}`)}
	})
	model, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: llm.URL, APIKey: llm.APIKey, Observer: b.metrics.ObserveLLM})
	require.NoError(t, err)
	_, err = model.Complete(context.Background(), analysis.Request{
		Model: "gpt-4.1-mini", Messages: []analysis.Message{{Role: "user", Content: "hello"}},
	})
	require.NoError(t, err)
	b.metrics.ObserveDelivery(pipeline.DeliveryObservation{Type: "webhook", Outcome: "delivered", Status: "delivered", StatusCode: 200, Latency: 20 * time.Millisecond})
	require.Equal(t, http.StatusAccepted, b.do(t, "POST", "/v1/calls", goodCall, testToken).status)

	res := b.get(t, "/metrics")
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	text := string(res.body)
	for _, line := range []string{
		`postcall_llm_requests_total{code="200",model="gpt-4.1-mini"} 1`,
		`postcall_llm_prompt_tokens_total{model="gpt-4.1-mini"} 2000`,
		`postcall_llm_cached_tokens_total{model="gpt-4.1-mini"} 1536`,
		`postcall_llm_completion_tokens_total{model="gpt-4.1-mini"} 30`,
		`postcall_llm_request_duration_seconds_count{model="gpt-4.1-mini"} 1`,
		`postcall_llm_limit_wait_seconds_count{model="gpt-4.1-mini"} 1`,
		`postcall_crm_delivery_attempts_total{outcome="delivered",type="webhook"} 1`,
		`postcall_crm_deliveries_total{status="delivered",type="webhook"} 1`,
		`postcall_queue_jobs{queue="analysis",state="available"} 1`,
		`postcall_queue_jobs{queue="qc",state="available"} 1`,
		`postcall_queue_jobs{queue="deliveries",state="available"} 0`,
		`# TYPE postcall_queue_oldest_available_seconds gauge`,
	} {
		require.Contains(t, text, line+"\n")
	}
}

func TestReadinessReportsSchemaBehind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/readyz", "", "").status)
	b.exec(t, `DELETE FROM postcall_migrations WHERE version = (SELECT max(version) FROM postcall_migrations)`)
	res := b.do(t, "GET", "/readyz", "", "")
	require.Equal(t, http.StatusServiceUnavailable, res.status)
	require.Contains(t, res.json(t)["error"], "postcall migrate")
}
