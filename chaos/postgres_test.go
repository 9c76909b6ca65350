//go:build chaos

package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPostgresRestart restarts PostgreSQL under a working worker, twice: a
// fast restart (sessions terminated, clean shutdown) and a crash (immediate
// stop, down for 5 seconds, crash recovery at start). The worker is the
// same process throughout and nobody touches anything: every call still
// reaches done, each delivery reaches its receiver under one webhook-id,
// no job is discarded, and a run reaches the model again only if it was
// interrupted by an outage (at most once per outage). It uses a
// throwaway cluster of its own, never the shared server, with the default
// POSTCALL_RESCUE_AFTER (15 minutes): recovery must not wait for a rescue.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	const numCalls = 1500
	pg := startCluster(t)
	b := setup(t, setupOpts{
		DatabaseURL: pg.URL("postcall"),
		ModelDelay:  func() time.Duration { return randDuration(20*time.Millisecond, 80*time.Millisecond) },
	})
	calls := b.newCalls(numCalls, 10)
	b.ingest(t, calls)
	w := b.startWorker(t, "1")
	begin := time.Now()

	type outage struct {
		name            string
		atDone          int
		down, recovered time.Duration // down: until the server accepts connections again; recovered: until calls finish again
		doneAfterOutage int
	}
	var outages []outage
	interrupt := func(name string, at int, act func()) {
		done := b.waitProgress(t, at, 3*time.Minute)
		require.Less(t, done, numCalls, "%s: every call was done before the outage", name)
		start := time.Now()
		act()
		up := time.Now()
		o := outage{name: name, atDone: done, down: up.Sub(start)}
		// Recovered: a call finishes after the server is back.
		base := b.progressNow(t).done
		deadline := time.Now().Add(2 * time.Minute)
		for {
			p := b.progressNow(t)
			if p.done > base || p.done == numCalls {
				o.recovered, o.doneAfterOutage = time.Since(up), p.done
				break
			}
			require.True(t, time.Now().Before(deadline), "%s: no call finished within 2 minutes of PostgreSQL coming back; jobs: %v", name, b.jobStates(t))
			time.Sleep(20 * time.Millisecond)
		}
		outages = append(outages, o)
	}
	interrupt("pg_ctl restart -m fast", numCalls*25/100, func() { pg.restart(t, "fast") })
	interrupt("crash (stop -m immediate), 5 s down, start", numCalls*60/100, func() {
		pg.stop(t, "immediate")
		time.Sleep(5 * time.Second)
		pg.start(t)
	})

	b.waitDone(t, numCalls, 5*time.Minute)
	total := time.Since(begin)
	b.waitDeliveries(t, 2*time.Minute)
	require.False(t, w.Exited(), "the worker kept running through both outages")

	b.requireAllDone(t)
	// A run interrupted by an outage may be requested once more per outage.
	repeats := b.requireRequestsPerRun(t, func(runKey, runRow) int { return len(outages) })
	rep := b.requireDeliveredOnce(t)
	maxAttempt := b.requireJobsHealthy(t)
	var rescued int
	require.NoError(t, b.pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job WHERE errors::text LIKE '%Stuck job rescued%'`).Scan(&rescued))
	require.Zero(t, rescued, "no job was left running by the outages (rescue would only come after 15 minutes)")
	var errored int
	require.NoError(t, b.pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job WHERE cardinality(errors) > 0`).Scan(&errored))

	var lines []string
	for _, o := range outages {
		lines = append(lines, fmt.Sprintf("%s at %d/%d done: server back after %s, calls finishing again %s later (%d done)",
			o.name, o.atDone, numCalls, o.down.Round(10*time.Millisecond), o.recovered.Round(10*time.Millisecond), o.doneAfterOutage))
	}
	w.stop(t)
	t.Logf("PostgreSQL outages under one worker process, %d calls (%d need the model), all done %s after the worker started:\n  %s\n"+
		"  runs requested again %d; jobs with an error %d, highest attempt %d; webhooks: %d deliveries, %d requests, %d repeats of a webhook-id",
		numCalls, modelCalls(calls), total.Round(100*time.Millisecond), strings.Join(lines, "\n  "),
		repeats, errored, maxAttempt, rep.deliveries, rep.requests, rep.repeats)
}
