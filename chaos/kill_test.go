//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// killRecoveredWithin is how soon after the last restart every call must
// be done with the default settings: a dead worker's jobs are available
// again POSTCALL_WORKER_DEAD_AFTER (30 s) after its last heartbeat, plus at
// most one rescue interval (5 s), then take a second or two to work.
const killRecoveredWithin = 60 * time.Second

// TestKillWorker kills the worker with SIGKILL six times at random moments
// while it works through 2,000 calls, restarting it each time, then lets a
// last worker finish, every setting at its default but the LLM tier
// limits. Every call reaches done within killRecoveredWithin of the last
// restart: the dead workers' jobs are rescued by their heartbeats' absence,
// not after POSTCALL_RESCUE_AFTER (15 minutes). A run reaches the model more than
// once only if its job was in flight at a kill (at most once more per such
// kill), and only jobs in flight at a kill are rescued; every receiver gets
// each delivery's webhook-id at least once and never two ids for one call
// and integration; no job is discarded; the periodic jobs ran once.
func TestKillWorker(t *testing.T) {
	t.Parallel()
	const (
		numCalls = 2000
		kills    = 6
	)
	ctx := context.Background()
	b := setup(t, setupOpts{
		// At most 16 requests in flight per worker (POSTCALL_LLM_CONCURRENCY)
		// answered in 150 ms on average: a worker finishes at most about 50
		// calls a second, however fast the machine, so the kills always
		// find work in flight.
		ModelDelay: func() time.Duration { return randDuration(50*time.Millisecond, 250*time.Millisecond) },
		Env: []string{
			// Not a setting the test needs to pass: at debug the log audit
			// at cleanup (no personal data or secret in any line) covers
			// River's and postcall's debug lines too.
			"POSTCALL_LOG_LEVEL=debug",
		},
	})
	calls := b.newCalls(numCalls, 10)
	b.ingest(t, calls)
	begin := time.Now()

	type kill struct {
		at    time.Time
		alive time.Duration
		done  int
		jobs  inFlightJobs
	}
	var killed []kill
	inFlightRuns := map[int64]int{} // run id -> kills it was in flight at
	inFlightJobIDs := map[int64]bool{}
	seen := map[string]bool{}
	for i := range kills {
		w := b.startWorker(t, fmt.Sprint(i+1))
		alive := randDuration(500*time.Millisecond, 4*time.Second)
		time.Sleep(alive)
		p, err := b.progress(ctx)
		require.NoError(t, err)
		require.Less(t, p.done, numCalls, "kill %d: every call was done before it; the run is too short to test anything", i+1)
		lived := time.Since(w.started)
		b.killWorker(t, w)
		k := kill{at: time.Now(), alive: lived, done: p.done, jobs: b.runningJobs(t, seen)}
		for _, run := range k.jobs.runs {
			inFlightRuns[run]++
		}
		for _, id := range k.jobs.ids {
			inFlightJobIDs[id] = true
		}
		killed = append(killed, k)
	}

	final := b.startWorker(t, "final")
	took := b.waitDone(t, numCalls, 5*time.Minute)
	require.Less(t, took, killRecoveredWithin, "every call done within %s of the last restart", killRecoveredWithin)
	b.waitDeliveries(t, 2*time.Minute)

	b.requireAllDone(t)
	// Paid twice only in flight: a run may reach the model once more per
	// kill that found its job running.
	repeats := b.requireRequestsPerRun(t, func(_ runKey, r runRow) int { return inFlightRuns[r.id] })
	inFlight, inFlightDeliveries := 0, 0
	for _, k := range killed {
		inFlight += len(k.jobs.runs)
		inFlightDeliveries += k.jobs.deliveries
	}
	require.LessOrEqual(t, repeats, inFlight)
	stored := 0
	for _, r := range b.runs(t) {
		stored += r.requests
	}

	rep := b.requireDeliveredOnce(t)
	require.LessOrEqual(t, rep.repeats, inFlightDeliveries, "webhook-ids delivered again beyond the deliveries in flight at the kills")
	maxAttempt := b.requireJobsHealthy(t)

	// River's own rescuer (POSTCALL_RESCUE_AFTER, 15 minutes) took no
	// part: every rescue was a dead worker's.
	var stuckRescues int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE errors::text LIKE '%Stuck job rescued%'`).Scan(&stuckRescues))
	require.Zero(t, stuckRescues)

	// Only jobs that were in flight at a kill were rescued: the rescue
	// never took a job from a live worker.
	rows, err := b.pool.Query(ctx, `SELECT id FROM river_job WHERE errors::text LIKE '%no heartbeat since%'`)
	require.NoError(t, err)
	var rescued []int64
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		require.True(t, inFlightJobIDs[id], "job %d was rescued but was not in flight at any kill", id)
		rescued = append(rescued, id)
	}
	require.NoError(t, rows.Err())
	rows.Close()

	// When the rescues happened: each dead worker's jobs
	// POSTCALL_WORKER_DEAD_AFTER after its last heartbeat, by whichever
	// worker was River's leader then.
	var firstRescue, lastRescue time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT min((e->>'at')::timestamptz), max((e->>'at')::timestamptz)
		FROM river_job, unnest(errors) AS e WHERE e->>'error' LIKE '%no heartbeat since%'`).Scan(&firstRescue, &lastRescue))

	// Periodic jobs (nightly by default) ran once per day although every
	// new leader runs them on start.
	rr := b.waitRetentionRuns(t)
	limit := periods(begin, time.Now(), 24*time.Hour)
	for _, kind := range []string{"purge", "hard_delete"} {
		require.LessOrEqual(t, rr[kind], limit, "%s ran %d times across %d leaders", kind, rr[kind], kills+1)
	}

	// Recovery: when the last job in flight at each kill was finished.
	var lines []string
	for i, k := range killed {
		var last *time.Time
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT max(finalized_at) FROM river_job WHERE id = ANY($1)`, k.jobs.ids).Scan(&last))
		recovered := "-"
		if last != nil {
			recovered = last.Sub(k.at).Round(100 * time.Millisecond).String()
		}
		lines = append(lines, fmt.Sprintf("kill %d after %s: %d/%d calls done, in flight %d runs + %d deliveries + %d other jobs (%d running in all), all finished %s after the kill",
			i+1, k.alive.Round(10*time.Millisecond), k.done, numCalls, len(k.jobs.runs), k.jobs.deliveries,
			k.jobs.fresh-len(k.jobs.runs)-k.jobs.deliveries, len(k.jobs.ids), recovered))
	}
	_, statuses, _ := b.model.Counts()
	t.Logf("kill -9 x%d, %d calls (%d need the model):\n  %s\n  last worker: every call done %s after its start (%s in all); jobs rescued %d, %s to %s after its start; highest attempt %d\n"+
		"  model requests %d (replies %v), runs requested again %d (in flight at kills %d), requests stored %d\n"+
		"  webhooks: %d deliveries, %d requests, %d repeats of a webhook-id (deliveries in flight at kills %d); retention runs %v",
		kills, numCalls, modelCalls(calls), strings.Join(lines, "\n  "), took.Round(100*time.Millisecond),
		time.Since(begin).Round(time.Second), len(rescued), firstRescue.Sub(final.started).Round(100*time.Millisecond),
		lastRescue.Sub(final.started).Round(100*time.Millisecond), maxAttempt,
		statuses[200], statuses, repeats, inFlight, stored, rep.deliveries, rep.requests, rep.repeats, inFlightDeliveries, rr)
}
