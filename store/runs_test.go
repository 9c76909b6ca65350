package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFinishRunAndGetRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupList(t)
	callID := b.insert(t, time.Now(), nil)
	analysisRun, qcRun, err := StartRuns(ctx, b.tx, callID, "sales", 1, TriggerIngest, true, true)
	require.NoError(t, err)
	require.NotNil(t, analysisRun)
	require.NotNil(t, qcRun)

	// The stored result is what comes back for the finished run; the other
	// run is read as it is.
	score := 8
	runs, err := FinishRunAndGetRuns(ctx, b.tx, *qcRun, RunResult{Status: RunSucceeded, Model: "m", Output: []int{1}, Score: &score},
		*analysisRun, *qcRun)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	require.Equal(t, RunSucceeded, runs[*qcRun].Status)
	require.Equal(t, &score, runs[*qcRun].Score)
	require.JSONEq(t, `[1]`, string(runs[*qcRun].Output))
	require.Equal(t, RunPending, runs[*analysisRun].Status)

	// A retried job's result never overwrites the stored one, and the
	// stored one is returned.
	runs, err = FinishRunAndGetRuns(ctx, b.tx, *qcRun, RunResult{Status: RunFailed, Error: "late"}, *analysisRun, *qcRun)
	require.NoError(t, err)
	require.Equal(t, RunSucceeded, runs[*qcRun].Status)
	require.Nil(t, runs[*qcRun].Error)

	// A run that is no longer current is stored all the same and returned
	// beside the current ones.
	runs, err = FinishRunAndGetRuns(ctx, b.tx, *analysisRun, RunResult{Status: RunFailed, Error: "boom"}, *qcRun)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	require.Equal(t, RunFailed, runs[*analysisRun].Status)
	stored, err := GetRun(ctx, b.tx, *analysisRun)
	require.NoError(t, err)
	require.Equal(t, RunFailed, stored.Status)
}
