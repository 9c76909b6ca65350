package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/heartbeat"
	"github.com/postcall/postcall/internal/app"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/jobs"
	"github.com/postcall/postcall/metrics"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

type testBundle struct {
	pool     *pgxpool.Pool
	schema   string
	registry *prometheus.Registry
	metrics  *metrics.Metrics
}

// setup registers postcall's metrics, with the database collector on a
// schema of its own, on a fresh registry.
func setup(t *testing.T) *testBundle {
	t.Helper()
	pool, schema := dbtest.Schema(t)
	b := &testBundle{pool: pool, schema: schema, registry: prometheus.NewRegistry()}
	var err error
	b.metrics, err = metrics.New(b.registry, metrics.Options{DB: pool, Schema: schema, Queues: jobs.Queues()})
	require.NoError(t, err)
	return b
}

// value returns the value of the sample of family name with exactly these
// labels, and whether there is one.
func (b *testBundle) value(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := b.registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			return sampleValue(f.GetType(), m), true
		}
	}
	return 0, false
}

func sampleValue(typ dto.MetricType, m *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

func (b *testBundle) requireValue(t *testing.T, want float64, name string, labels map[string]string) {
	t.Helper()
	got, ok := b.value(t, name, labels)
	require.True(t, ok, "no sample %s%v", name, labels)
	require.Equal(t, want, got, "%s%v", name, labels)
}

const planYAML = `
id: sales
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
integrations:
  - {name: hook, type: webhook, url: %q, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
`

// TestPipelineFeedsMetrics runs one call through a working River client
// with every observer wired as internal/app wires them: River's job events, the LLM
// client's attempts and the webhook delivery all show up.
func TestPipelineFeedsMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	llm := openaitest.NewServer(t)
	valid := openaitest.Valid()
	llm.SetDefault(func(req *openaitest.Request) openaitest.Reply {
		r := valid(req)
		r.Usage = json.RawMessage(`{"prompt_tokens":1500,"completion_tokens":20,"total_tokens":1520,"prompt_tokens_details":{"cached_tokens":1024}}`)
		return r
	})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(hook.Close)

	plans, err := agent.ParsePlans(fmt.Appendf(nil, planYAML, hook.URL))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, b.pool, &plans[0])
	require.NoError(t, err)
	// Built as the worker command builds it, on the bundle's schema, with
	// its own registry.
	cfg, err := config.Load([]string{"OPENAI_BASE_URL=" + llm.URL, "OPENAI_API_KEY=" + llm.APIKey,
		"POSTCALL_ALLOW_PRIVATE_TARGETS=1", "POSTCALL_SHUTDOWN_TIMEOUT=1s"})
	require.NoError(t, err)
	a, err := app.New(ctx, cfg, app.Options{
		Work: true, Pool: b.pool, Schema: b.schema, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		FetchPollInterval: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	b.registry, b.metrics = a.Registry, a.Metrics
	client := a.River
	stop := jobs.WatchJobs(client, b.metrics.ObserveJob)
	defer stop()
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
	})

	enq := a.Calls
	_, err = enq.Ingest(ctx, &call.Record{
		CallID: "m-1", AgentID: "sales", EndedAt: time.Now(), EndedReason: "customer-ended-call",
		Transcript: []call.Turn{{Role: call.RoleAgent, Text: "Hello from ACME"}, {Role: call.RoleUser, Text: "Hi, a demo please"}},
	})
	require.NoError(t, err)

	deliverDone := map[string]string{"kind": "postcall.deliver", "queue": jobs.QueueDeliveries, "outcome": jobs.OutcomeCompleted}
	require.Eventually(t, func() bool {
		v, _ := b.value(t, "postcall_jobs_total", deliverDone)
		return v == 1
	}, 20*time.Second, 20*time.Millisecond, "the delivery job never completed")

	for _, kind := range []string{"analysis", "qc"} {
		b.requireValue(t, 1, "postcall_jobs_total", map[string]string{"kind": "postcall." + kind, "queue": kind, "outcome": "completed"})
		b.requireValue(t, 1, "postcall_job_run_seconds", map[string]string{"kind": "postcall." + kind})
	}
	model4 := map[string]string{"model": "gpt-4.1-mini"}
	b.requireValue(t, 2, "postcall_llm_requests_total", map[string]string{"model": "gpt-4.1-mini", "code": "200"})
	b.requireValue(t, 3000, "postcall_llm_prompt_tokens_total", model4)
	b.requireValue(t, 2048, "postcall_llm_cached_tokens_total", model4)
	b.requireValue(t, 40, "postcall_llm_completion_tokens_total", model4)
	b.requireValue(t, 2, "postcall_llm_request_duration_seconds", model4)
	// Two requests at gpt-4.1-mini's built-in rates: 476 fresh prompt
	// tokens at $0.40 per million, 1,024 cached at $0.10, 20 completion at
	// $1.60.
	usd, ok := b.value(t, "postcall_llm_cost_usd_total", model4)
	require.True(t, ok, "postcall_llm_cost_usd_total is wired")
	require.InDelta(t, 2*(476*0.40+1024*0.10+20*1.60)/1e6, usd, 1e-12)
	b.requireValue(t, 1, "postcall_crm_delivery_attempts_total", map[string]string{"type": "webhook", "outcome": "delivered"})
	b.requireValue(t, 1, "postcall_crm_deliveries_total", map[string]string{"type": "webhook", "status": "delivered"})
	b.requireValue(t, 1, "postcall_crm_delivery_duration_seconds", map[string]string{"type": "webhook"})
	b.requireValue(t, 0, "postcall_queue_jobs", map[string]string{"queue": "analysis", "state": "available"})
}

func TestLLMCodes(t *testing.T) {
	t.Parallel()
	b := &testBundle{registry: prometheus.NewRegistry()}
	var err error
	b.metrics, err = metrics.New(b.registry, metrics.Options{})
	require.NoError(t, err)
	for _, o := range []analysis.Observation{
		{Model: "m", StatusCode: 429, ErrorCode: "rate_limit_exceeded", Retrying: true, LimitWait: 2 * time.Second},
		{Model: "m", ErrorCode: "network", Retrying: true},
		{Model: "m", ErrorCode: "context_canceled"},
		{Model: "m", StatusCode: 200, Usage: analysis.Usage{Prompt: 10, Completion: 2, CacheCreated: 5}},
	} {
		b.metrics.ObserveLLM(o)
	}
	for code, n := range map[string]float64{"429": 1, "network": 1, "canceled": 1, "200": 1} {
		b.requireValue(t, n, "postcall_llm_requests_total", map[string]string{"model": "m", "code": code})
	}
	b.requireValue(t, 2, "postcall_llm_request_duration_seconds", map[string]string{"model": "m"})
	b.requireValue(t, 4, "postcall_llm_limit_wait_seconds", map[string]string{"model": "m"})
	b.requireValue(t, 5, "postcall_llm_cache_created_tokens_total", map[string]string{"model": "m"})
	_, ok := b.value(t, "postcall_llm_cached_tokens_total", map[string]string{"model": "m"})
	require.False(t, ok, "no zero increments")

	// A nil *Metrics ignores observations (commands without metrics).
	var none *metrics.Metrics
	none.ObserveLLM(analysis.Observation{Model: "m"})
	none.ObserveJob(jobs.JobEvent{})
	none.ObserveDelivery(pipeline.DeliveryObservation{})
}

func TestQueueDepthAndRetentionFromTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	_, err := b.pool.Exec(ctx, `
		INSERT INTO river_job (kind, queue, state, args, max_attempts, scheduled_at, finalized_at) VALUES
			('postcall.analysis', 'analysis', 'available', '{}', 25, now() - interval '90 seconds', NULL),
			('postcall.analysis', 'analysis', 'available', '{}', 25, now() - interval '10 seconds', NULL),
			('postcall.qc', 'qc', 'scheduled', '{}', 25, now() + interval '1 hour', NULL),
			('postcall.retention', 'maintenance', 'retryable', '{}', 25, now(), NULL),
			('postcall.qc', 'qc', 'completed', '{}', 25, now(), now())`)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `
		INSERT INTO retention_runs (kind, trigger, status, dry_run, purged, deleted, objects_deleted, finished_at) VALUES
			('purge', 'schedule', 'finished', false, 10, 0, 3, '2026-11-20T03:00:00Z'),
			('purge', 'schedule', 'partial', false, 5, 0, 1, '2026-11-21T03:00:00Z'),
			('purge', 'command', 'finished', true, 100, 0, 0, '2026-11-22T03:00:00Z'),
			('hard_delete', 'schedule', 'finished', false, 0, 7, 7, '2026-11-21T03:30:00Z'),
			('erasure', 'request', 'running', false, 1, 0, 0, NULL)`)
	require.NoError(t, err)

	b.requireValue(t, 2, "postcall_queue_jobs", map[string]string{"queue": "analysis", "state": "available"})
	b.requireValue(t, 1, "postcall_queue_jobs", map[string]string{"queue": "qc", "state": "scheduled"})
	b.requireValue(t, 0, "postcall_queue_jobs", map[string]string{"queue": "qc", "state": "available"})
	b.requireValue(t, 1, "postcall_queue_jobs", map[string]string{"queue": "maintenance", "state": "retryable"})
	_, ok := b.value(t, "postcall_queue_jobs", map[string]string{"queue": "qc", "state": "completed"})
	require.False(t, ok, "finished jobs are not depth")
	oldest, _ := b.value(t, "postcall_queue_oldest_available_seconds", map[string]string{"queue": "analysis"})
	require.InDelta(t, 90, oldest, 30)
	b.requireValue(t, 0, "postcall_queue_oldest_available_seconds", map[string]string{"queue": "qc"})

	b.requireValue(t, 15, "postcall_retention_calls_total", map[string]string{"kind": "purge", "action": "purged"})
	b.requireValue(t, 7, "postcall_retention_calls_total", map[string]string{"kind": "hard_delete", "action": "deleted"})
	b.requireValue(t, 1, "postcall_retention_calls_total", map[string]string{"kind": "erasure", "action": "purged"})
	b.requireValue(t, 4, "postcall_retention_recordings_deleted_total", map[string]string{"kind": "purge"})
	b.requireValue(t, 1, "postcall_retention_runs_total", map[string]string{"kind": "purge", "status": "partial"})
	b.requireValue(t, 1, "postcall_retention_runs_total", map[string]string{"kind": "purge", "status": "finished"})
	b.requireValue(t, float64(time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC).Unix()),
		"postcall_retention_last_success_timestamp_seconds", map[string]string{"kind": "purge"})
	_, ok = b.value(t, "postcall_retention_last_success_timestamp_seconds", map[string]string{"kind": "erasure"})
	require.False(t, ok, "never finished")
}

// stuckDB never answers before its context ends.
type stuckDB struct{}

func (stuckDB) Query(ctx context.Context, _ string, _ ...any) (pgx.Rows, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestSlowDatabaseDoesNotHoldTheScrape(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{DB: stuckDB{}, ScrapeTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	m.ObserveDelivery(pipeline.DeliveryObservation{Type: "webhook", Outcome: "retry", Status: "pending", StatusCode: 503})

	start := time.Now()
	rec := httptest.NewRecorder()
	metrics.Handler(reg, slog.New(slog.NewTextHandler(io.Discard, nil))).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Less(t, time.Since(start), 2*time.Second)
	require.Equal(t, http.StatusOK, rec.Code, "the other metrics are still served")
	body := rec.Body.String()
	require.Contains(t, body, `postcall_crm_delivery_attempts_total{outcome="retry",type="webhook"} 1`)
	require.NotContains(t, body, "postcall_crm_deliveries_total{", "a pending delivery has no final status yet")
	require.False(t, strings.Contains(body, "postcall_queue_jobs{"))
}

// TestWorkerMetrics: the live-worker gauge counts the processes beating
// within the dead-after window, and recovered jobs are counted by cause.
func TestWorkerMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.requireValue(t, 0, "postcall_workers_live", nil)
	for _, id := range []string{"a", "b", "gone"} {
		_, err := heartbeat.Beat(ctx, b.pool, id, "host", 1)
		require.NoError(t, err)
	}
	_, err := b.pool.Exec(ctx, `UPDATE worker_heartbeats SET beat_at = now() - interval '1 minute' WHERE client_id = 'gone'`)
	require.NoError(t, err)
	b.requireValue(t, 2, "postcall_workers_live", nil)

	b.metrics.ObserveRecovered(jobs.RecoveredDead, 3)
	b.metrics.ObserveRecovered(jobs.RecoveredStopped, 1)
	b.requireValue(t, 3, "postcall_jobs_recovered_total", map[string]string{"cause": "dead"})
	b.requireValue(t, 1, "postcall_jobs_recovered_total", map[string]string{"cause": "stopped"})
}
