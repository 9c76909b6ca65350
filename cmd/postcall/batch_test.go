package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis/openaitest"
)

// TestReanalyzeBatchWaitShowsProgress: `reanalyze --agent ID --batch
// --wait` hands the runs to the worker's Batch API job and shows the
// batch's progress and outcome until every run has finished; the expired
// batch's unanswered runs go into a second batch, visibly.
func TestReanalyzeBatchWaitShowsProgress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	llm := openaitest.NewServer(t)
	// POSTCALL_BATCH_POLL_INTERVAL at its least (1s) so that the test ends
	// in seconds; the default (1m) is tested in config.
	llmEnv := []string{"OPENAI_BASE_URL=" + llm.URL, "OPENAI_API_KEY=" + llm.APIKey, "POSTCALL_HTTP_ADDR=127.0.0.1:0",
		"POSTCALL_BATCH_POLL_INTERVAL=1s"}
	ctx := context.Background()
	require.Zero(t, b.run(t, ctx, "", nil, "agents", "apply", b.file(t, "a.yaml", testAgents)).code)
	require.Zero(t, b.run(t, ctx, goodCall, nil, "ingest").code)
	b.startWorker(t, llmEnv)

	res := b.run(t, ctx, "", nil, "reanalyze", "c-1", "--batch")
	require.Equal(t, 2, res.code)
	require.Contains(t, res.stderr, "--batch goes with --agent")

	llm.ScriptBatches(openaitest.BatchScript{Status: "expired", Answered: 1, Polls: 1})
	res = b.run(t, ctx, "", llmEnv, "reanalyze", "--agent", "sales", "--batch", "--wait")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "batch reanalysis 1 of sales: 1 call through the Batch API")
	require.Contains(t, res.stdout, "1 calls added, 0 skipped")
	require.Contains(t, res.stdout, "batch 1: in_progress, 0/2 requests done")
	require.Contains(t, res.stdout, "batch 1 (attempt 1, provider status expired): 2 requests; 1 answered by the batch, 0 error lines, 1 resubmitted in a new batch, 0 sent live")
	require.Contains(t, res.stdout, "batch 2 (attempt 2, provider status completed): 1 requests; 1 answered by the batch")
	require.Contains(t, res.stdout, "batch reanalysis 1: all 2 runs finished")
	require.Len(t, llm.Batches(), 2)
}
