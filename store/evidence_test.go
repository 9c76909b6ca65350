package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRunEvidence checks that a run's evidence and unverified list are
// stored with its answer (so a retried job stores them from StoredAnswer)
// and with its result, and that a run without them stores nulls.
func TestRunEvidence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupList(t)
	callID := b.insert(t, time.Now(), nil)
	analysisRun, qcRun, err := StartRuns(ctx, b.tx, callID, "sales", 1, TriggerIngest, true, true)
	require.NoError(t, err)

	evidence := map[string]any{"email": map[string]any{"quote": "my email is x", "turn": nil, "verified": false, "withheld": "x@y.z"}}
	run, err := GetRun(ctx, b.tx, *analysisRun)
	require.NoError(t, err)
	require.NoError(t, RecordAnswer(ctx, b.tx, run, []LLMRequest{{Purpose: "initial", Model: "m"}}, RunResult{
		Status: RunSucceeded, Model: "m", Output: map[string]any{"email": nil}, Evidence: evidence, Unverified: []string{"email"},
	}))
	run, err = GetRun(ctx, b.tx, *analysisRun)
	require.NoError(t, err)
	answer := StoredAnswer(run)
	require.NotNil(t, answer)
	require.Equal(t, []string{"email"}, answer.Unverified)
	require.NotNil(t, answer.Evidence)

	runs, err := FinishRunAndGetRuns(ctx, b.tx, *analysisRun, *answer, *analysisRun)
	require.NoError(t, err)
	require.JSONEq(t, `{"email": {"quote": "my email is x", "turn": null, "verified": false, "withheld": "x@y.z"}}`,
		string(runs[*analysisRun].Evidence))
	require.Equal(t, []string{"email"}, runs[*analysisRun].Unverified)

	// All verified: an empty list, not null.
	runs, err = FinishRunAndGetRuns(ctx, b.tx, *qcRun, RunResult{Status: RunSucceeded, Output: []int{}, Unverified: []string{}}, *qcRun)
	require.NoError(t, err)
	require.NotNil(t, runs[*qcRun].Unverified)
	require.Empty(t, runs[*qcRun].Unverified)
	require.Nil(t, runs[*qcRun].Evidence)

	// No evidence asked for: nulls.
	other := b.insert(t, time.Now(), nil)
	plain, _, err := StartRuns(ctx, b.tx, other, "sales", 1, TriggerIngest, true, false)
	require.NoError(t, err)
	runs, err = FinishRunAndGetRuns(ctx, b.tx, *plain, RunResult{Status: RunSucceeded, Output: map[string]any{}}, *plain)
	require.NoError(t, err)
	require.Nil(t, runs[*plain].Evidence)
	require.Nil(t, runs[*plain].Unverified)
}
