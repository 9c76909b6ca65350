package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/retention"
)

// runPurge measures the sensitive-data purge (retention.Service.Purge) on
// e.opts.purgeCalls finished calls that are all due: calls purged per
// second, the longest single statement the purge ran, and the p99 latency of
// ingest while it runs against the p99 of the same ingest load without it.
// Targets: >= 20,000 calls/s, no statement over 250 ms, p99 during <= 2 x
// p99 without.
func runPurge(ctx context.Context, e *env) (*result, error) {
	s, err := e.db.newSchema(ctx, "purge")
	if err != nil {
		return nil, err
	}
	defer s.close(ctx)
	// No worker runs: nothing is delivered.
	if err := applyPlan(ctx, s.Pool, "http://127.0.0.1:9/unused"); err != nil {
		return nil, err
	}
	n := e.opts.purgeCalls
	seedStart := time.Now()
	if err := seedDueCalls(ctx, s.Pool, n); err != nil {
		return nil, err
	}
	e.progress("purge: seeded %d due calls in %s", n, seconds(time.Since(seedStart)))

	enq, err := newEnqueuer(ctx, workerConfig{Pool: s.Pool, Schema: s.Name, Logger: e.log})
	if err != nil {
		return nil, err
	}
	rate := e.opts.purgeIngestRate
	baseline := int(rate * purgeBaseline.Seconds())
	// Recent calls, not due: the purge leaves them alone. Enough for the
	// ingest load to outlast any purge the scenario's timeout allows.
	recs, err := makeCalls("purge-live", purgeWarmUp+baseline+int(rate*e.opts.timeout.Seconds()), 4, time.Now().Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	// The seed's writes are flushed (CHECKPOINT needs privileges a
	// benchmark may lack; without them the baseline is noisier), and the
	// pool's connections opened, before the baseline is measured.
	_, _ = s.Pool.Exec(ctx, `CHECKPOINT`)
	if _, err := ingestAtRate(ctx, ctx, enq, recs[:purgeWarmUp], rate); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	recs = recs[purgeWarmUp:]
	without, err := ingestAtRate(ctx, ctx, enq, recs[:baseline], rate)
	if err != nil {
		return nil, fmt.Errorf("ingest without the purge: %w", err)
	}

	// The purge gets its own pool, whose statements are timed, and the
	// insert-only client that enqueues its recording deletions.
	profile := newSQLProfile()
	purgePool, err := e.db.pool(ctx, s.Name, profile)
	if err != nil {
		return nil, err
	}
	defer purgePool.Close()
	purger, err := newApp(ctx, workerConfig{Pool: purgePool, Schema: s.Name, Logger: e.log}, false)
	if err != nil {
		return nil, err
	}
	svc := purger.Retention // POSTCALL_PURGE_AFTER_DAYS' default, 30
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var during []time.Duration
	var loadErr error
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		during, loadErr = ingestAtRate(loadCtx, ctx, enq, recs[baseline:], rate)
	}()
	start := time.Now()
	rep, err := svc.Purge(ctx, retention.RunOptions{})
	elapsed := time.Since(start)
	stopLoad()
	<-loaded
	switch {
	case err != nil:
		return nil, fmt.Errorf("purge: %w", err)
	case loadErr != nil:
		return nil, fmt.Errorf("ingest during the purge: %w", loadErr)
	case rep.Purged != n:
		return nil, fmt.Errorf("purged %d calls of %d due", rep.Purged, n)
	case len(during) == 0:
		return nil, fmt.Errorf("no ingest finished during the %s purge", elapsed)
	}
	if e.opts.sqlProfile {
		profile.write(e.out, "purge (its own pool; unit: a purged call)", rep.Purged, 25)
	}
	stmt, longest := profile.longest()
	p99Without, p99During := percentile(without, 99), percentile(during, 99)
	purgeRate := float64(rep.Purged) / elapsed.Seconds()
	e.progress("purge: %d calls in %s: %.0f calls/s; longest statement %s; ingest p99 %s without, %s during",
		rep.Purged, seconds(elapsed), purgeRate, longest.Round(time.Millisecond),
		p99Without.Round(100*time.Microsecond), p99During.Round(100*time.Microsecond))

	return &result{
		Metrics: []metric{
			{Name: "calls purged/s", Value: purgeRate, Unit: "calls/s", Decimals: 0, Target: atLeast(20_000)},
			{Name: "longest purge statement", Value: ms(longest), Unit: "ms", Decimals: 1, Target: atMost(250)},
			{Name: "ingest p99 without the purge", Value: ms(p99Without), Unit: "ms", Decimals: 1},
			{Name: "ingest p99 during the purge", Value: ms(p99During), Unit: "ms", Decimals: 1},
			{Name: "ratio p99 during / without", Value: float64(p99During) / float64(p99Without), Decimals: 2, Target: atMost(2)},
		},
		Notes: []string{
			fmt.Sprintf("%d finished calls due for the purge (ended 90 days ago, the plan keeps 30), each with its "+
				"transcript, contact data, recording key, an analysis and a QC run with their LLM requests, and a "+
				"delivered webhook with its attempt, stored with SQL (not through the pipeline) and vacuumed. "+
				"retention.Service.Purge with its defaults (batches of at most %d calls, each sized to take about %s, "+
				"busy at most %.0f%% of the time) purged them in %s (%d batches, %d calls each on average).",
				n, retention.DefaultBatchSize, retention.DefaultBatchTarget, 100*retention.DefaultShare, seconds(elapsed),
				len(rep.Batches), n/max(len(rep.Batches), 1)),
			fmt.Sprintf("Longest statement (client-side, on the purge's own pool): %s.", stmt),
			fmt.Sprintf("Ingest latency: one Ingest (store the call, create its runs, enqueue their jobs in one "+
				"transaction) every %s, each on its own goroutine, on the benchmark's pool; %d ingests over %s "+
				"without the purge (p50 %s), then %d while it ran (p50 %s).",
				time.Duration(float64(time.Second)/rate), len(without), seconds(purgeBaseline), percentile(without, 50).Round(100*time.Microsecond),
				len(during), percentile(during, 50).Round(100*time.Microsecond)),
		},
	}, nil
}

// purgeBaseline is how long the ingest load runs without the purge, after
// purgeWarmUp ingests that are not measured.
const (
	purgeBaseline = 15 * time.Second
	purgeWarmUp   = 50
)

// ingestAtRate ingests recs at rate per second, each on its own goroutine
// whatever the others' progress (an open loop, as calls end), until recs or
// loadCtx run out, and returns the latency of each ingest. Ingests run with
// ctx, so that ending the load lets those in flight finish.
func ingestAtRate(loadCtx, ctx context.Context, enq *pipeline.Calls, recs []*call.Record, rate float64) ([]time.Duration, error) {
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, len(recs))
		firstErr  error
		wg        sync.WaitGroup
	)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
load:
	for _, rec := range recs {
		select {
		case <-loadCtx.Done():
			break load
		case <-tick.C:
		}
		wg.Go(func() {
			start := time.Now()
			_, err := enq.Ingest(ctx, rec)
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				latencies = append(latencies, took)
			case firstErr == nil:
				firstErr = err
			}
		})
	}
	wg.Wait()
	return latencies, firstErr
}

// percentile is the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// seedDueCalls stores n finished calls of the benchmark agent that ended 90
// days ago, as the pipeline leaves them: personal data in every column the
// purge clears, a recording key, current analysis and QC runs (the analysis
// with the plan's pii email field) with one LLM request each, and a
// delivered webhook with its attempt. Transcripts and contact data come
// from 100 synthetic calls.
func seedDueCalls(ctx context.Context, db *pgxpool.Pool, n int) error {
	templates, err := makeCalls("purge-template", 100, 5, firstCallStart())
	if err != nil {
		return err
	}
	type template struct {
		Transcript []call.Turn     `json:"transcript"`
		Contact    json.RawMessage `json:"contact"`
	}
	ts := make([]template, len(templates))
	for i, r := range templates {
		ts[i] = template{Transcript: r.Transcript, Contact: r.ContactData}
	}
	raw, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	// Run ids are given (2g-1 analysis, 2g QC) so that calls point at their
	// runs without a second pass over the table.
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO calls (id, call_id, agent_id, direction, ended_reason, disconnected_by, phone_number, phone_key,
			customer_name, started_at, ended_at, duration, transcript, recording_key, contact_data, function_output, extra,
			state, done, plan_version, analysis_run_id, qc_run_id, disposition, disposition_source, general_success,
			call_summary, final_score, qc_passed, created_at, updated_at)
		SELECT md5('purge-' || g)::uuid, 'purge-' || g, $2, 'outbound', 'customer-ended-call', 'customer',
			'+1555' || lpad(g::text, 7, '0'), '+1555' || lpad(g::text, 7, '0'), 'Lead ' || g,
			e.ended - interval '3 minutes', e.ended, 180, t.value->'transcript', 'recordings/purge-' || g || '.wav',
			t.value->'contact', '{"appointment_booked": true}', '{"tool_calls": [{"name": "book_slot", "status": "ok"}]}',
			'done', true, 1, 2 * g - 1, 2 * g, 'booked', 'analysis', true,
			'The homeowner booked a video consultation for Thursday afternoon.', 8, true, e.ended, e.ended
		FROM generate_series(1, $1) AS g
		CROSS JOIN LATERAL (SELECT now() - interval '90 days' + g * interval '10 milliseconds' AS ended) AS e
		JOIN jsonb_array_elements($3::jsonb) WITH ORDINALITY AS t (value, i) ON t.i = g % 100 + 1`,
			[]any{n, agentID, raw}},
		{`INSERT INTO analysis_runs (id, call_id, kind, agent_id, plan_version, trigger, status, model, output, score,
			passed, prompt_tokens, completion_tokens, cached_read_tokens, requests, latency_ms, created_at, finished_at)
		OVERRIDING SYSTEM VALUE
		SELECT 2 * g - 2 + k, md5('purge-' || g)::uuid, CASE k WHEN 1 THEN 'analysis' ELSE 'qc' END, $2, 1, 'ingest',
			'succeeded', 'gpt-4.1-mini',
			CASE k WHEN 1 THEN jsonb_build_object('summary', 'The homeowner booked a video consultation.', 'outcome', 'booked',
				'success', true, 'interest_level', 4, 'email', 'lead' || g || '@example.com', 'objections', 'Worried about cost.')
			ELSE jsonb_build_array(jsonb_build_object('id', 'greeting', 'passed', true, 'evidence', 'Hi, this is Ava from Brightline Solar.'),
				jsonb_build_object('id', 'recording_consent', 'passed', true, 'evidence', 'Is it OK if I record this call?')) END,
			CASE k WHEN 2 THEN 8 END, CASE k WHEN 2 THEN true END, 3100, 120, 2304, 1, 900,
			now() - interval '90 days', now() - interval '90 days'
		FROM generate_series(1, $1) AS g, generate_series(1, 2) AS k`,
			[]any{n, agentID}},
		{`SELECT setval(pg_get_serial_sequence('analysis_runs', 'id'), 2 * $1::bigint)`, []any{n}},
		{`INSERT INTO llm_requests (run_id, call_id, purpose, model, prompt_tokens, completion_tokens, cached_read_tokens,
			cache_created_tokens, latency_ms)
		SELECT id, call_id, kind, model, prompt_tokens, completion_tokens, cached_read_tokens, 0, latency_ms
		FROM analysis_runs`, nil},
		{`INSERT INTO deliveries (id, call_id, agent_id, integration, type, status, attempts, last_status_code, delivered_at)
		SELECT 'msg_purge' || g, md5('purge-' || g)::uuid, $2, 'crm-webhook', 'webhook', 'delivered', 1, 204, now() - interval '90 days'
		FROM generate_series(1, $1) AS g`, []any{n, agentID}},
		{`INSERT INTO delivery_attempts (delivery_id, call_id, attempt, outcome, status_code, latency_ms)
		SELECT id, call_id, 1, 'delivered', 204, 40 FROM deliveries`, nil},
		{`VACUUM ANALYZE calls, analysis_runs, llm_requests, deliveries, delivery_attempts`, nil},
	} {
		if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("seed due calls: %w", err)
		}
	}
	return nil
}
