//go:build chaos

package chaos

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis/openaitest"
)

// modelOutage is how long the model endpoint is down. A full minute: the
// LLM client gives up on a request after 4 attempts (about 3.5 to 7 s of
// backoff) and the run's job snoozes for the suggested wait (4 to 8 s), so
// a minute sends every run through several rounds of retries and snoozes.
const modelOutage = time.Minute

// TestModelOutage has the model endpoint answer 429 (retry-after 1 s) to
// every other request, go down for a minute (connections refused, open ones
// cut), then come back still answering 429 to half the requests. Every call
// completes with its analysis and QC (none fails), no job is discarded or
// even uses a second attempt (rate limits and outages snooze, and snoozing
// uses no attempt), and no run is paid twice beyond the requests whose
// answer was cut by the outage.
func TestModelOutage(t *testing.T) {
	t.Parallel()
	const numCalls = 600
	b := setup(t, setupOpts{
		ModelProxy: true,
		ModelDelay: func() time.Duration { return randDuration(10*time.Millisecond, 40*time.Millisecond) },
	})
	var n atomic.Int64
	b.model.SetAnswer(func(runKey, int) *openaitest.Reply {
		if n.Add(1)%2 == 0 {
			return reply(openaitest.RateLimited(time.Second))
		}
		return nil
	})
	calls := b.newCalls(numCalls, 10)
	b.ingest(t, calls)
	w := b.startWorker(t, "1")
	begin := time.Now()

	atDown := b.waitProgress(t, numCalls*30/100, 2*time.Minute)
	b.proxy.Down()
	down := time.Now()
	// While it is down nothing fails: calls wait, jobs snooze.
	var during progress
	for time.Since(down) < modelOutage {
		time.Sleep(time.Second)
		p, err := b.progress(t.Context())
		require.NoError(t, err)
		require.Zero(t, p.failed, "a call failed while the model was down")
		during = p
	}
	var discarded int
	require.NoError(t, b.pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job WHERE state = 'discarded'`).Scan(&discarded))
	require.Zero(t, discarded)
	requestsBeforeUp := b.model.Len()
	b.proxy.Up(t)
	up := time.Now()
	b.waitDone(t, numCalls, 5*time.Minute)
	recovered := time.Since(up)
	b.waitDeliveries(t, time.Minute)
	require.False(t, w.Exited(), "the worker kept running")

	b.requireAllDone(t)
	maxAttempt := b.requireJobsHealthy(t)
	require.Equal(t, 1, maxAttempt, "rate limits and the outage used no job attempt; jobs: %v", b.jobStates(t))
	// 429s are not billed; a 200 is. A run got two 200s only if the outage
	// cut its answer on the way (at most the model concurrency, 16).
	twice := 0
	for key, ok := range b.model.OKPerRun() {
		require.LessOrEqual(t, ok, 2, "run %+v answered %d times", key, ok)
		if ok > 1 {
			twice++
		}
	}
	require.LessOrEqual(t, twice, 16, "runs paid twice")
	b.requireRequestsPerRun(t, func(runKey, runRow) int { return 1 << 20 })
	rep := b.requireDeliveredOnce(t)
	total, most := b.snoozes(t)
	_, statuses, _ := b.model.Counts()
	w.stop(t)
	t.Logf("%d calls (%d need the model): endpoint down for %s at %d done (%d done when it came back), all done %s after it came back (%s in all)\n"+
		"  model replies %v (requests during the outage reached no server; %d before it came back); runs paid twice %d\n"+
		"  job snoozes %d (most for one job %d), highest attempt %d, discarded 0; webhooks: %d deliveries, %d requests",
		numCalls, modelCalls(calls), modelOutage, atDown, during.done, recovered.Round(100*time.Millisecond),
		time.Since(begin).Round(time.Second), statuses, requestsBeforeUp, twice, total, most, maxAttempt, rep.deliveries, rep.requests)
}
