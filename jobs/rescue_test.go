package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/heartbeat"
)

// TestLateWorkerDoesNotClobberTheRescuedAttempt: a worker declared dead
// while its analysis request was in flight (its heartbeat aged past
// WorkerDeadAfter) has the job rescued; the next attempt starts. When the
// first attempt's answer then arrives, its completion finds the attempt
// lost and stores nothing, and River's report of it is held back until the
// job settles: the second attempt is still running, untouched, and
// completes the job; the job's errors hold only the rescue's entry.
func TestLateWorkerDoesNotClobberTheRescuedAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	arrived := make(chan int, 4)
	release := []chan struct{}{make(chan struct{}), make(chan struct{})}
	// A failing test must not leave the model's handlers blocked.
	t.Cleanup(func() {
		for _, c := range release {
			select {
			case <-c:
			default:
				close(c)
			}
		}
	})
	var analyses atomic.Int32
	b.llm.SetDefault(func(req *openaitest.Request) openaitest.Reply {
		if containsQC(req) {
			return openaitest.Reply{Content: `{"greeting":{"passed":true,"evidence":"Hi"},"consent":{"passed":true,"evidence":"May I record?"},"close":{"passed":true,"evidence":"Goodbye"}}`}
		}
		n := int(analyses.Add(1)) - 1
		if n < len(release) {
			arrived <- n
			<-release[n]
		}
		return openaitest.Reply{Content: `{"summary":"Customer wants a demo.","outcome":"agreed","success":true,"email":null}`}
	})

	res, err := b.enqueuer.Ingest(ctx, conversation())
	require.NoError(t, err)
	require.Equal(t, 0, <-arrived)
	// QC answers at once: only the analysis job is left running.
	require.Eventually(t, func() bool {
		var state string
		err := b.pool.QueryRow(ctx, `SELECT state::text FROM river_job WHERE kind = 'postcall.qc' AND args->>'call_id' = $1`,
			res.ID.String()).Scan(&state)
		return err == nil && state == "completed"
	}, 20*time.Second, 20*time.Millisecond, "QC completed")

	// The worker is "dead": its last heartbeat is a minute old.
	clientID := b.client.ID()
	_, err = heartbeat.Beat(ctx, b.pool, clientID, "host", 1)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE worker_heartbeats SET beat_at = now() - interval '1 minute'`)
	require.NoError(t, err)
	n, err := heartbeat.RescueDead(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the analysis job, running attempt 1")
	// The worker beats again, as a resumed process does: its periodic
	// rescue pass must not take attempt 2 too.
	_, err = heartbeat.Beat(ctx, b.pool, clientID, "host", 1)
	require.NoError(t, err)
	require.Equal(t, 1, <-arrived, "attempt 2 asks the model")

	// Attempt 1 comes back while attempt 2 runs.
	close(release[0])
	time.Sleep(1500 * time.Millisecond)
	var state string
	var attempt int
	var errs int
	read := func() {
		t.Helper()
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT state::text, attempt, coalesce(array_length(errors, 1), 0)
			FROM river_job WHERE kind = 'postcall.analysis' AND args->>'call_id' = $1`, res.ID.String()).Scan(&state, &attempt, &errs))
	}
	read()
	require.Equal(t, "running", state, "the late attempt neither completed nor failed attempt 2's row")
	require.Equal(t, 2, attempt)
	require.Equal(t, 1, errs, "the rescue's entry only")
	var stored int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM analysis_runs WHERE call_id = $1 AND kind = 'analysis' AND status = 'succeeded'`,
		res.ID).Scan(&stored))
	require.Zero(t, stored, "the late attempt stored no result")

	close(release[1])
	c := b.waitDone(t, res.ID)
	require.Equal(t, "agreed", *c.Disposition)
	require.Eventually(t, func() bool { read(); return state == "completed" }, 5*time.Second, 50*time.Millisecond)
	// The held attempt reports once the job settled: nothing changes.
	time.Sleep(1500 * time.Millisecond)
	read()
	require.Equal(t, "completed", state)
	require.Equal(t, 2, attempt)
	require.Equal(t, 1, errs)
}
