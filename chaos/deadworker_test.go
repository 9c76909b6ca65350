//go:build chaos

package chaos

import (
	"context"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slowModel is the model's answer time in the dead-worker tests: longer
// than POSTCALL_WORKER_DEAD_AFTER's window is from a kill, so that the
// survivor's attempts are still running when the dead worker's jobs are
// rescued.
const slowModel = 20 * time.Second

// TestKillOneOfTwoWorkers runs two workers against a model answering in
// 20 s and kills one with SIGKILL while both hold runs in flight, every
// setting at its default but the LLM tier limits. Only the dead worker's
// jobs are rescued, about POSTCALL_WORKER_DEAD_AFTER after its last
// heartbeat; the survivor's attempts running at that moment are untouched
// (no errors entry, same attempt, completed by it), no run of the survivor
// is requested twice, and every call is done and delivered once.
func TestKillOneOfTwoWorkers(t *testing.T) {
	t.Parallel()
	const numCalls = 48
	ctx := context.Background()
	b := setup(t, setupOpts{ModelDelay: func() time.Duration { return slowModel }})
	calls := b.newCalls(numCalls, 1000) // none auto-disposed: every call needs the model
	b.ingest(t, calls)
	victim := b.startWorker(t, "victim")
	survivor := b.startWorker(t, "survivor")
	victimID, survivorID := b.clientID(t, victim), b.clientID(t, survivor)

	// Both hold runs in flight, then the victim dies.
	require.Eventually(t, func() bool {
		return len(b.runningUnder(t, victimID)) > 0 && len(b.runningUnder(t, survivorID)) > 0
	}, 30*time.Second, 50*time.Millisecond, "both workers running jobs")
	time.Sleep(2 * time.Second)
	b.killWorker(t, victim)
	killedAt := time.Now()
	orphans := b.runningUnder(t, victimID)
	require.NotEmpty(t, orphans)
	survivorAtKill := len(b.runningUnder(t, survivorID))

	// The orphans are rescued; at that moment the survivor still runs jobs.
	var survivorAtRescue map[int64]int
	require.Eventually(t, func() bool {
		if len(b.rescuedFrom(t, victimID)) == 0 {
			return false
		}
		survivorAtRescue = b.runningUnder(t, survivorID)
		return true
	}, 2*time.Minute, 50*time.Millisecond, "the dead worker's jobs were never rescued")
	rescuedAfter := time.Since(killedAt)
	require.NotEmpty(t, survivorAtRescue, "the survivor ran jobs while the rescue happened")
	require.Less(t, rescuedAfter, 45*time.Second, "rescued after POSTCALL_WORKER_DEAD_AFTER (30s) plus a rescue interval")

	took := b.waitDone(t, numCalls, 5*time.Minute)
	b.waitDeliveries(t, 2*time.Minute)
	b.requireAllDone(t)
	b.requireDeliveredOnce(t)
	b.requireJobsHealthy(t)

	rescued := b.rescuedFrom(t, victimID)
	require.ElementsMatch(t, keys(orphans), keys(rescued), "exactly the dead worker's running jobs were rescued")
	rescuedFromSurvivor := b.rescuedFrom(t, survivorID)
	require.Empty(t, rescuedFromSurvivor, "nothing was taken from the live worker")
	for id, attempt := range survivorAtRescue {
		var state string
		var last, errs, final int
		require.NoError(t, b.pool.QueryRow(ctx, `
			SELECT state::text, attempt, coalesce(array_length(errors, 1), 0),
				(attempted_by[cardinality(attempted_by)] = $2)::int
			FROM river_job WHERE id = $1`, id, survivorID).Scan(&state, &last, &errs, &final))
		require.Equal(t, "completed", state, "job %d", id)
		require.Equal(t, attempt, last, "job %d of the survivor worked once", id)
		require.Zero(t, errs, "job %d of the survivor has no errors entry", id)
		require.Equal(t, 1, final, "job %d completed by the survivor", id)
	}
	// Runs were requested twice only when the dead worker had them in
	// flight.
	inFlight := map[int64]bool{}
	for id := range orphans {
		inFlight[b.runOfJob(t, id)] = true
	}
	repeats := b.requireRequestsPerRun(t, func(_ runKey, r runRow) int {
		if inFlight[r.id] {
			return 1
		}
		return 0
	})
	t.Logf("2 workers, model %s per request, %d calls: killed one with %d jobs running (the survivor %d); its jobs rescued %s after the kill, the survivor then running %d jobs, none touched; runs requested again %d; every call done %s after the rescue",
		slowModel, numCalls, len(orphans), survivorAtKill, rescuedAfter.Round(100*time.Millisecond),
		len(survivorAtRescue), repeats, took.Round(time.Second))
}

// TestPausedWorkerComesBackLate pauses a worker with SIGSTOP while its runs
// are in flight, past POSTCALL_WORKER_DEAD_AFTER, so that its jobs are
// rescued and taken by a second worker; then resumes it with SIGCONT while
// the second worker's attempts still run. The late attempts store nothing
// and leave the second worker's attempts untouched (running, one errors
// entry: the rescue's); the resumed worker learns it was declared dead,
// carries on working, and every call is done and delivered once.
func TestPausedWorkerComesBackLate(t *testing.T) {
	t.Parallel()
	const numCalls = 12
	ctx := context.Background()
	b := setup(t, setupOpts{ModelDelay: func() time.Duration { return slowModel }})
	calls := b.newCalls(numCalls, 1000)
	b.ingest(t, calls)
	paused := b.startWorker(t, "paused")
	pausedID := b.clientID(t, paused)
	require.Eventually(t, func() bool { return len(b.runningUnder(t, pausedID)) == 2*numCalls },
		30*time.Second, 50*time.Millisecond, "the worker to be paused runs every run")
	time.Sleep(time.Second)
	require.NoError(t, paused.cmd.Process.Signal(syscall.SIGSTOP))
	pausedAt := time.Now()
	orphans := b.runningUnder(t, pausedID)
	other := b.startWorker(t, "other")
	otherID := b.clientID(t, other)

	// Rescued and taken by the other worker, whose attempts take 20 s.
	require.Eventually(t, func() bool {
		running := b.runningUnder(t, otherID)
		for id := range orphans {
			if _, ok := running[id]; !ok {
				return false
			}
		}
		return true
	}, 2*time.Minute, 50*time.Millisecond, "the paused worker's jobs taken by the other")
	rescuedAfter := time.Since(pausedAt)
	require.NoError(t, paused.cmd.Process.Signal(syscall.SIGCONT))
	resumedAt := time.Now()

	// The late attempts' answers arrived while the process was paused: it
	// reads them at once, and must not complete, fail or snooze the other
	// worker's attempts.
	time.Sleep(4 * time.Second)
	require.Less(t, time.Since(resumedAt), slowModel/2, "the check ran while the other worker's attempts still run")
	running := b.runningUnder(t, otherID)
	for id, attempt := range orphans {
		require.Contains(t, running, id, "job %d still running under the other worker", id)
		require.Equal(t, attempt+1, running[id], "job %d: the other worker's attempt", id)
		var errs int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT coalesce(array_length(errors, 1), 0) FROM river_job WHERE id = $1`, id).Scan(&errs))
		require.Equal(t, 1, errs, "job %d: the rescue's errors entry only", id)
	}
	var succeeded int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM analysis_runs WHERE status = 'succeeded'`).Scan(&succeeded))
	require.Zero(t, succeeded, "the late attempts stored no result")
	require.False(t, paused.Exited(), "the resumed worker carries on")

	took := b.waitDone(t, numCalls, 3*time.Minute)
	b.waitDeliveries(t, 2*time.Minute)
	b.requireAllDone(t)
	b.requireDeliveredOnce(t)
	b.requireJobsHealthy(t)
	// Every run was requested by both attempts (the late one's answer was
	// paid for, and recorded, but its job had been rescued): at most twice.
	repeats := b.requireRequestsPerRun(t, func(runKey, runRow) int { return 1 })
	for id := range orphans {
		var state string
		var attempt, errs int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT state::text, attempt, coalesce(array_length(errors, 1), 0) FROM river_job WHERE id = $1`, id).
			Scan(&state, &attempt, &errs))
		require.Equal(t, "completed", state)
		require.Equal(t, 2, attempt)
		require.Equal(t, 1, errs, "job %d: the held-back late attempt reported nothing", id)
	}
	log, err := os.ReadFile(paused.logPath)
	require.NoError(t, err)
	require.Contains(t, string(log), "this worker was declared dead", "the resumed worker learns it")
	held := strings.Count(string(log), "attempt taken from this worker")
	require.Positive(t, held)
	t.Logf("paused 1 worker with %d runs in flight (model %s): rescued and taken by the other worker %s after the pause; resumed: %d late attempts held back, none stored or reported over the other's; runs requested twice %d; every call done %s after the resume",
		len(orphans), slowModel, rescuedAfter.Round(100*time.Millisecond), held, repeats, took.Round(time.Second))
}

// clientID is the River client id a worker process records in its
// heartbeats, found by its pid.
func (b *testBundle) clientID(t *testing.T, w *workerProc) string {
	t.Helper()
	var id string
	require.Eventually(t, func() bool {
		err := b.pool.QueryRow(context.Background(), `SELECT client_id FROM worker_heartbeats WHERE pid = $1`, w.cmd.Process.Pid).Scan(&id)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "worker %s never beat", w.name)
	return id
}

// runningUnder returns the jobs running under clientID's latest attempt,
// by id with their attempt.
func (b *testBundle) runningUnder(t *testing.T, clientID string) map[int64]int {
	t.Helper()
	return b.jobAttempts(t, `SELECT id, attempt FROM river_job
		WHERE state = 'running' AND attempted_by[cardinality(attempted_by)] = $1`, clientID)
}

// rescuedFrom returns the jobs rescued from clientID, by id with the
// attempt rescued.
func (b *testBundle) rescuedFrom(t *testing.T, clientID string) map[int64]int {
	t.Helper()
	return b.jobAttempts(t, `SELECT j.id, (e->>'attempt')::int FROM river_job j, unnest(j.errors) e
		WHERE e->>'error' LIKE 'worker ' || $1 || ' dead (no heartbeat since %'`, clientID)
}

func (b *testBundle) jobAttempts(t *testing.T, sql string, args ...any) map[int64]int {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), sql, args...)
	require.NoError(t, err)
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var attempt int
		require.NoError(t, rows.Scan(&id, &attempt))
		out[id] = attempt
	}
	require.NoError(t, rows.Err())
	return out
}

// runOfJob is the run an analysis or QC job works (0 for other kinds).
func (b *testBundle) runOfJob(t *testing.T, id int64) int64 {
	t.Helper()
	var run int64
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT coalesce((args->>'run_id')::bigint, 0) FROM river_job WHERE id = $1`, id).Scan(&run))
	return run
}

func keys(m map[int64]int) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
