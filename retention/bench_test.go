package retention_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/jobs"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// BenchmarkPurge purges a large table and then hard-deletes it, reporting
// rows per second and the longest single statement and transaction of each.
// POSTCALL_BENCH_CALLS sets the table size (default 200000 calls, each with
// a ~1.5 KB transcript, personal data in every column the purge clears, an
// analysis and a QC run, an LLM request, and a delivery for one call in
// four); POSTCALL_BENCH_BATCH the batch size (default 500). Run it with
//
//	go test -run '^$' -bench BenchmarkPurge -benchtime 1x -timeout 30m ./retention/
func BenchmarkPurge(b *testing.B) {
	ctx := context.Background()
	size := envInt(b, "POSTCALL_BENCH_CALLS", 200_000)
	batch := envInt(b, "POSTCALL_BENCH_BATCH", retention.DefaultBatchSize)
	for range b.N {
		b.StopTimer()
		pool, trace := benchPool(b)
		seedStart := time.Now()
		seedLarge(b, pool, size)
		b.Logf("seeded %d calls in %s", size, time.Since(seedStart).Round(time.Millisecond))
		// The deletion jobs go through a real (insert-only) River client.
		queue, err := jobs.NewQueue(pool, "", nil)
		require.NoError(b, err)
		svc := &retention.Service{DB: pool, PurgeAfterDays: 30, HardDeleteAfterDays: 0, BatchSize: batch, Queue: queue}

		trace.reset()
		b.StartTimer()
		start := time.Now()
		rep, err := svc.Purge(ctx, retention.RunOptions{})
		elapsed := time.Since(start)
		b.StopTimer()
		require.NoError(b, err)
		require.Equal(b, size, rep.Purged)
		stmt, tx := trace.longest()
		b.ReportMetric(float64(rep.Purged)/elapsed.Seconds(), "purged-rows/s")
		b.ReportMetric(float64(stmt.took.Microseconds())/1000, "purge-max-stmt-ms")
		b.ReportMetric(float64(tx.Microseconds())/1000, "purge-max-tx-ms")
		b.Logf("purge: %d calls in %s (%d batches of %d): %.0f rows/s; longest statement %s: %s; longest transaction %s",
			rep.Purged, elapsed.Round(time.Millisecond), (size+batch-1)/batch, batch, float64(rep.Purged)/elapsed.Seconds(),
			stmt.took.Round(time.Microsecond), stmt.sql, tx.Round(time.Microsecond))
		b.Logf("purge: time by statement: %s", trace.heaviest(8))

		_, err = pool.Exec(ctx, `UPDATE calls SET deleted_at = now() - interval '1 day'`)
		require.NoError(b, err)
		_, err = pool.Exec(ctx, `VACUUM ANALYZE calls`)
		require.NoError(b, err)
		trace.reset()
		b.StartTimer()
		start = time.Now()
		rep, err = svc.HardDelete(ctx, retention.RunOptions{})
		elapsed = time.Since(start)
		b.StopTimer()
		require.NoError(b, err)
		require.Equal(b, size, rep.Deleted)
		stmt, tx = trace.longest()
		b.ReportMetric(float64(rep.Deleted)/elapsed.Seconds(), "deleted-rows/s")
		b.ReportMetric(float64(stmt.took.Microseconds())/1000, "delete-max-stmt-ms")
		b.ReportMetric(float64(tx.Microseconds())/1000, "delete-max-tx-ms")
		b.Logf("hard delete: %d calls in %s: %.0f rows/s; longest statement %s: %s; longest transaction %s",
			rep.Deleted, elapsed.Round(time.Millisecond), float64(rep.Deleted)/elapsed.Seconds(),
			stmt.took.Round(time.Microsecond), stmt.sql, tx.Round(time.Microsecond))
		b.Logf("hard delete: time by statement: %s", trace.heaviest(5))
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(b, err, name)
	return n
}

// benchPool returns a pool on a fresh migrated schema whose statements are
// timed.
func benchPool(b *testing.B) (*pgxpool.Pool, *statementTimer) {
	b.Helper()
	_, schema := dbtest.Schema(b)
	cfg, err := pgxpool.ParseConfig(dbtest.URL())
	require.NoError(b, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	trace := &statementTimer{begun: map[*pgx.Conn]time.Time{}, total: map[string]time.Duration{}}
	cfg.ConnConfig.Tracer = trace
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	return pool, trace
}

// seedLarge stores n finished calls of agent "bench", all due for purge.
func seedLarge(b *testing.B, pool *pgxpool.Pool, n int) {
	b.Helper()
	ctx := context.Background()
	plans, err := agent.ParsePlans([]byte(`
id: bench
analysis:
  prompt: "Review."
  fields:
    - {name: summary, type: string}
    - {name: outcome, type: enum, values: [agreed, declined]}
    - {name: email, type: string, pii: true}
  summary_field: summary
qc:
  prompt: "Judge."
  checklist: [{id: greeting, description: "Greeted"}]
`))
	require.NoError(b, err)
	_, _, err = store.ApplyPlan(ctx, pool, &plans[0])
	require.NoError(b, err)
	for _, q := range []string{
		`INSERT INTO calls (id, call_id, agent_id, ended_at, ended_reason, phone_number, phone_key, customer_name,
			customer_request, transcript, recording_key, contact_data, function_output, extra, state, done,
			plan_version, disposition, disposition_source, call_summary, final_score)
		SELECT gen_random_uuid(), 'bench-' || g, 'bench', now() - interval '60 days' + g * interval '1 second',
			'customer-ended-call', '+1555' || lpad(g::text, 7, '0'), '+1555' || lpad(g::text, 7, '0'), 'Name ' || g,
			'Wants a call back ' || g,
			(SELECT jsonb_agg(jsonb_build_object('role', CASE WHEN t % 2 = 0 THEN 'agent' ELSE 'user' END,
				'text', md5(g::text || t) || ' ' || md5(t::text || g) || ' ' || md5(g::text || 'x' || t), 't_ms', t * 1000))
			 FROM generate_series(1, 12) AS t),
			'rec/bench-' || g || '.wav', jsonb_build_object('email', 'c' || g || '@example.com'),
			jsonb_build_object('note', 'n' || g), jsonb_build_object('tool_calls', jsonb_build_array(jsonb_build_object('args', 'a' || g))),
			'done', true, 1, 'agreed', 'analysis', 'Summary of call ' || g, 8
		FROM generate_series(1, $1) AS g`,
		`INSERT INTO analysis_runs (call_id, kind, agent_id, plan_version, trigger, status, output, finished_at)
		SELECT id, 'analysis', 'bench', 1, 'ingest', 'succeeded',
			jsonb_build_object('summary', call_summary, 'outcome', 'agreed', 'email', call_id || '@example.com'), now()
		FROM calls`,
		`INSERT INTO analysis_runs (call_id, kind, agent_id, plan_version, trigger, status, output, score, passed, finished_at)
		SELECT id, 'qc', 'bench', 1, 'ingest', 'succeeded',
			jsonb_build_array(jsonb_build_object('id', 'greeting', 'passed', true, 'evidence', 'said ' || call_id)), 8, true, now()
		FROM calls`,
		`INSERT INTO llm_requests (run_id, call_id, purpose, model, prompt_tokens, completion_tokens, cached_read_tokens,
			cache_created_tokens, latency_ms, error)
		SELECT id, call_id, kind, 'gpt-4.1-mini', 900, 120, 0, 0, 800, CASE WHEN id % 50 = 0 THEN 'provider said no' END
		FROM analysis_runs`,
		`INSERT INTO deliveries (id, call_id, agent_id, integration, type, status, attempts, last_error)
		SELECT 'msg_' || id, id, 'bench', 'crm', 'webhook', 'failed', 1, 'receiver said no'
		FROM calls WHERE ('x' || substr(md5(id::text), 1, 2))::bit(8)::int % 4 = 0`,
		`INSERT INTO delivery_attempts (delivery_id, call_id, attempt, outcome, status_code, latency_ms, error)
		SELECT id, call_id, 1, 'permanent', 422, 200, last_error FROM deliveries`,
		`UPDATE calls c SET analysis_run_id = r.id FROM analysis_runs r WHERE r.call_id = c.id AND r.kind = 'analysis'`,
		`UPDATE calls c SET qc_run_id = r.id FROM analysis_runs r WHERE r.call_id = c.id AND r.kind = 'qc'`,
		`VACUUM ANALYZE`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, n)
		}
		_, err := pool.Exec(ctx, q, args...)
		require.NoError(b, err, q)
	}
}

// statementTimer is a pgx tracer that remembers the longest statement and
// the longest transaction (begin to commit on one connection).
type statementTimer struct {
	mu      sync.Mutex
	total   map[string]time.Duration // by the statement's first words
	stmt    timedStatement
	tx      time.Duration
	begun   map[*pgx.Conn]time.Time
	started sync.Map // *pgx.Conn -> timedStatement in flight
}

type timedStatement struct {
	sql  string
	at   time.Time
	took time.Duration
}

func (s *statementTimer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	now := time.Now()
	s.started.Store(conn, timedStatement{sql: data.SQL, at: now})
	if strings.EqualFold(strings.TrimSpace(data.SQL), "begin") {
		s.mu.Lock()
		s.begun[conn] = now
		s.mu.Unlock()
	}
	return ctx
}

func (s *statementTimer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	v, ok := s.started.LoadAndDelete(conn)
	if !ok {
		return
	}
	st := v.(timedStatement)
	st.took = time.Since(st.at)
	s.mu.Lock()
	defer s.mu.Unlock()
	sql := strings.Join(strings.Fields(st.sql), " ")
	s.total[sql[:min(len(sql), 48)]] += st.took
	if strings.EqualFold(sql, "commit") {
		if begun, ok := s.begun[conn]; ok {
			s.tx = max(s.tx, time.Since(begun))
			delete(s.begun, conn)
		}
	}
	if st.took > s.stmt.took {
		if len(sql) > 90 {
			sql = sql[:90] + "..."
		}
		st.sql = sql
		s.stmt = st
	}
}

func (s *statementTimer) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stmt, s.tx = timedStatement{}, 0
	s.begun = map[*pgx.Conn]time.Time{}
	s.total = map[string]time.Duration{}
}

// heaviest lists the statements that took the most time in all, heaviest
// first.
func (s *statementTimer) heaviest(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.total))
	for k := range s.total {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return s.total[keys[i]] > s.total[keys[j]] })
	var out []string
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, fmt.Sprintf("%s (%s)", k, s.total[k].Round(time.Millisecond)))
	}
	return strings.Join(out, "; ")
}

func (s *statementTimer) longest() (timedStatement, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stmt, s.tx
}
