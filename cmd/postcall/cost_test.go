package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/store"
)

// seedRequests finishes the runs of call ref with one request each of 1,300
// prompt tokens (1,024 cached) and 200 completion tokens at cost (nil:
// unpriced), as the pipeline stores them.
func (b *testBundle) seedRequests(t *testing.T, ctx context.Context, ref string, cost *float64) {
	t.Helper()
	c, err := store.GetCall(ctx, b.pool, ref)
	require.NoError(t, err)
	for _, id := range []*int64{c.AnalysisRunID, c.QCRunID} {
		run, err := store.GetRun(ctx, b.pool, *id)
		require.NoError(t, err)
		require.NoError(t, store.RecordRequests(ctx, b.pool, run, []store.LLMRequest{{
			Purpose: analysis.PurposeInitial, Model: analysis.DefaultModel, ServiceTier: analysis.TierDefault,
			Usage: analysis.Usage{Prompt: 1300, CachedRead: 1024, Completion: 200}, CostUSD: cost,
		}}))
		_, err = store.FinishRunAndGetRuns(ctx, b.pool, run.ID, store.RunResult{Status: store.RunSucceeded, Model: analysis.DefaultModel})
		require.NoError(t, err)
	}
}

const (
	conversation2 = `{"call_id":"c-2","agent_id":"sales","ended_at":"2026-11-21T10:00:00Z","ended_reason":"customer-ended-call","duration":60,"transcript":[{"role":"agent","text":"Hello from ACME"},{"role":"user","text":"Call me next week"}]}`
	voicemail3    = `{"call_id":"c-3","agent_id":"sales","ended_at":"2026-11-21T11:00:00Z","ended_reason":"voicemail"}`
)

func TestReanalyzeEstimateSendsNothing(t *testing.T) {
	t.Parallel()
	ctx, b := setupWithAgents(t)
	llm := openaitest.NewServer(t)
	llmEnv := []string{"OPENAI_BASE_URL=" + llm.URL, "OPENAI_API_KEY=" + llm.APIKey}
	require.Zero(t, b.run(t, ctx, goodCall+"\n"+conversation2+"\n"+voicemail3+"\n", nil, "ingest", "-q").code)
	counts := func() (jobs, runs, bulks int) {
		t.Helper()
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM river_job), (SELECT count(*) FROM analysis_runs),
			(SELECT count(*) FROM bulk_reanalyses)`).Scan(&jobs, &runs, &bulks))
		return jobs, runs, bulks
	}
	jobs, runs, bulks := counts()

	// Before any history: from the prompt's size.
	res := b.run(t, ctx, "", llmEnv, "reanalyze", "--agent", "sales", "--estimate")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "reanalyzing sales with plan version 1, model gpt-4.1-mini, live requests at the default tier; nothing is sent")
	require.Contains(t, res.stdout, "calls: 3 selected, 1 of them with an auto disposition (no request)")
	require.Regexp(t, `analysis\s+2\s+2\s+\d+\s+0\s+\d+\s+\$0\.\d{6}\s+\$0\.\d{6}`, res.stdout)
	require.Regexp(t, `total\s+4\s+4\s`, res.stdout)
	require.Contains(t, res.stdout, "analysis: no run of this agent yet: estimated from the prompt's size")

	// With history: what the runs took, at gpt-4.1-mini's rates. Per run
	// 276 fresh prompt tokens at $0.40 per million, 1,024 cached at $0.10
	// and 200 completion at $1.60: $0.0005328, half by batch.
	cost := 532.8e-6
	b.seedRequests(t, ctx, "c-1", &cost)
	res = b.run(t, ctx, "", llmEnv, "reanalyze", "--agent", "sales", "--estimate", "--kind", "qc",
		"--since", "2026-11-21T00:00:00Z")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "calls: 2 selected, 1 of them")
	require.Regexp(t, `qc\s+1\s+1\s+1300\s+1024\s+200\s+\$0\.000533\s+\$0\.000266`, res.stdout)
	require.NotContains(t, res.stdout, "analysis")
	require.Contains(t, res.stdout, "qc: per run as the latest 1 run of this plan version took")

	require.Zero(t, llm.Len(), "no request sent")
	j, r, bk := counts()
	require.Equal(t, []int{jobs, runs, bulks}, []int{j, r, bk}, "nothing enqueued, no run, no bulk reanalysis")

	res = b.run(t, ctx, "", nil, "reanalyze", "c-1", "--estimate")
	require.Equal(t, 2, res.code)
	require.Contains(t, res.stderr, "--estimate goes with --agent")
	res = b.run(t, ctx, "", nil, "reanalyze", "--agent", "sales", "--estimate", "--wait")
	require.Equal(t, 2, res.code)
}

func TestAgentsListAverageCost(t *testing.T) {
	t.Parallel()
	ctx, b := setupWithAgents(t)
	res := b.run(t, ctx, "", nil, "agents", "list")
	require.Regexp(t, `sales\s+sales\s+1\s+0\s+-\s`, res.stdout, "no calls: no average")

	require.Zero(t, b.run(t, ctx, goodCall+"\n"+conversation2+"\n"+voicemail3+"\n", nil, "ingest", "-q").code)
	res = b.run(t, ctx, "", nil, "agents", "list")
	require.Regexp(t, `sales\s+sales\s+1\s+3\s+\$0\.000000\s`, res.stdout, "nothing spent yet")

	// Two calls' analysis and QC at $0.0005328 each, over three calls (the
	// voicemail cost nothing): $0.0007104 a call.
	cost := 532.8e-6
	b.seedRequests(t, ctx, "c-1", &cost)
	b.seedRequests(t, ctx, "c-2", &cost)
	res = b.run(t, ctx, "", nil, "agents", "list")
	require.Contains(t, res.stdout, "AVG COST/CALL")
	require.Regexp(t, `sales\s+sales\s+1\s+3\s+\$0\.000710\s`, res.stdout)

	// An unpriced request: the average is a lower bound, and says so.
	c, err := store.GetCall(ctx, b.pool, "c-2")
	require.NoError(t, err)
	run, err := store.GetRun(ctx, b.pool, *c.AnalysisRunID)
	require.NoError(t, err)
	require.NoError(t, store.RecordRequests(ctx, b.pool, run, []store.LLMRequest{{Purpose: analysis.PurposeRepair, Model: "mystery"}}))
	res = b.run(t, ctx, "", nil, "agents", "list")
	require.Regexp(t, `sales\s+sales\s+1\s+3\s+≥\$0\.000710 \(1 request unpriced\)`, res.stdout)
}
