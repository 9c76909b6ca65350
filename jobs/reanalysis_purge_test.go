package jobs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// TestReanalyzeAndPurgeAtOnceKeepResults: with a worker running, finished
// calls are reanalysed and erased by phone at the same time. Whatever order
// they meet in, every call ends done with the disposition and score of its
// last finished runs (on e919207, 30 of 40 calls ended failed with them
// gone).
func TestReanalyzeAndPurgeAtOnceKeepResults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRetention(t)
	b.startWorker(t)
	e := &pipeline.Calls{DB: b.pool, Pipeline: b.pipeline, Queue: b.queue}
	// The worker's purge on start (purge_after_days 0) would purge calls
	// before their first runs: let it finish first.
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM retention_runs
			WHERE kind = 'purge' AND trigger = 'schedule' AND status = 'finished'`).Scan(&n))
		return n == 1
	}, 15*time.Second, 20*time.Millisecond)

	type ingested struct{ id, phone string }
	var calls []ingested
	for range 40 {
		id, markers := ingestKeeper(t, ctx, e, b.s3)
		calls = append(calls, ingested{id, markers[5]})
	}
	waitDone := func() {
		t.Helper()
		for _, c := range calls {
			require.Eventually(t, func() bool {
				got, err := store.GetCall(ctx, b.pool, c.id)
				require.NoError(t, err)
				return got.Done
			}, 30*time.Second, 20*time.Millisecond, "call %s never finished", c.id)
		}
	}
	waitDone()

	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := e.Reanalyze(ctx, c.id, pipeline.AllKinds)
			if err != nil && !errors.Is(err, pipeline.ErrNotReanalyzable) {
				t.Errorf("reanalyze %s: %v", c.id, err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := b.retention.ErasePhone(ctx, c.phone, retention.RunOptions{}); err != nil {
				t.Errorf("erase %s: %v", c.id, err)
			}
		}()
	}
	wg.Wait()
	waitDone()
	require.Eventually(t, func() bool {
		var left int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')
			AND kind IN ('postcall.analysis', 'postcall.qc')`).Scan(&left))
		return left == 0
	}, 30*time.Second, 20*time.Millisecond, "run jobs never settled")

	var lost []string
	for _, c := range calls {
		got, err := store.GetCall(ctx, b.pool, c.id)
		require.NoError(t, err)
		require.True(t, got.IsPurged, c.id)
		if got.State != store.StateDone || got.Disposition == nil || *got.Disposition != "agreed" ||
			got.FinalScore == nil || *got.FinalScore != 10 {
			lost = append(lost, c.id)
			runs, _ := store.CallRuns(ctx, b.pool, got.ID)
			for _, r := range runs {
				t.Logf("call %s (%s): run %d %s %s %s err=%v", c.id, got.State, r.ID, r.Kind, r.Trigger, r.Status, textOrNil(r.Error))
			}
		}
	}
	require.Empty(t, lost, "%d of %d calls lost their results", len(lost), len(calls))
}

func textOrNil(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
