package chaos

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWorkersShareOneDatabase runs two and then three worker processes on
// one database while calls arrive: each run reaches the model once, each
// call is finalized and delivered once, each job is worked once, the work
// is spread over the workers, and the periodic retention jobs run once per
// period (River's leader enqueues them), not once per worker.
func TestWorkersShareOneDatabase(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			t.Parallel()
			testWorkersShareOneDatabase(t, workers, 300)
		})
	}
}

func testWorkersShareOneDatabase(t *testing.T, workers, n int) {
	b := setup(t, setupOpts{
		ModelDelay: func() time.Duration { return randDuration(5*time.Millisecond, 30*time.Millisecond) },
		Env: []string{
			// Every minute, so that a test crossing a minute boundary sees
			// a second period.
			"POSTCALL_PURGE_SCHEDULE=* * * * *", "POSTCALL_RETENTION_SCHEDULE=* * * * *",
			// River's own log lines (leadership) are debug.
			"POSTCALL_LOG_LEVEL=debug",
		},
	})
	begin := time.Now()
	procs := make([]*workerProc, workers)
	for i := range procs {
		procs[i] = b.spawnWorker(t, fmt.Sprint(i+1))
	}
	for _, w := range procs {
		w.waitReady(t, 30*time.Second)
	}
	calls := b.newCalls(n, 10)
	// Two batches, the second while the workers already work on the first.
	ingested := time.Now()
	b.ingest(t, calls[:n/2])
	b.ingest(t, calls[n/2:])
	b.waitDone(t, n, 2*time.Minute)
	took := time.Since(ingested)
	b.waitDeliveries(t, time.Minute)
	end := time.Now()

	b.requireAllDone(t)
	repeats := b.requestsPerRunOnce(t)
	rep := b.requireDeliveredOnce(t)
	require.Zero(t, rep.repeats, "a webhook-id was delivered twice although nothing failed")
	maxAttempt := b.requireJobsHealthy(t)
	require.Equal(t, 1, maxAttempt, "every job was worked once (attempt 1); jobs: %v", b.jobStates(t))

	// The work was shared: jobs were worked by more than one process.
	perWorker := b.jobsPerWorker(t, procs)
	busy := 0
	for _, v := range perWorker {
		if v > 0 {
			busy++
		}
	}
	require.GreaterOrEqual(t, busy, 2, "jobs per worker: %v", perWorker)

	// Periodic jobs: at most one run per period of the schedule (a minute)
	// between the first start and now, whichever worker leads.
	rr := b.waitRetentionRuns(t)
	limit := periods(begin, time.Now(), time.Minute)
	for _, kind := range []string{"purge", "hard_delete"} {
		require.LessOrEqual(t, rr[kind], limit, "%s ran %d times in %d one-minute periods with %d workers", kind, rr[kind], limit, workers)
	}
	for _, w := range procs {
		w.stop(t)
	}
	t.Logf("%d workers, %d calls (%d with model runs) ingested and done in %s; model requests repeated: %d; webhooks: %d deliveries, %d requests; jobs per worker: %v; retention runs %v in %d period(s) over %s",
		workers, n, modelCalls(calls), took.Round(time.Millisecond), repeats, rep.deliveries, rep.requests, perWorker, rr, limit, end.Sub(begin).Round(time.Second))
}

// requestsPerRunOnce asserts every run reached the model exactly once and
// stored exactly one request.
func (b *testBundle) requestsPerRunOnce(t *testing.T) int {
	t.Helper()
	repeats := b.requireRequestsPerRun(t, nil)
	for key, r := range b.runs(t) {
		require.Equal(t, "succeeded", r.status, "run %d (%+v)", r.id, key)
		require.Equal(t, 1, r.requests, "run %d (%+v) stored %d requests", r.id, key, r.requests)
	}
	return repeats
}

var clientIDRE = regexp.MustCompile(`"client_id":"([^"]+)"`)

// jobsPerWorker counts the run and delivery jobs each worker process
// worked, mapping River's client ids (from the workers' debug logs) to
// processes.
func (b *testBundle) jobsPerWorker(t *testing.T, procs []*workerProc) map[string]int {
	t.Helper()
	owner := map[string]string{}
	for _, w := range procs {
		data, err := os.ReadFile(w.logPath)
		require.NoError(t, err)
		for _, m := range clientIDRE.FindAllSubmatch(data, -1) {
			owner[string(m[1])] = w.name
		}
	}
	rows, err := b.pool.Query(context.Background(), `
		SELECT attempted_by[array_length(attempted_by, 1)], count(*) FROM river_job
		WHERE kind IN ('postcall.analysis', 'postcall.qc', 'postcall.deliver') GROUP BY 1`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int{}
	for _, w := range procs {
		out[w.name] = 0
	}
	for rows.Next() {
		var client string
		var n int
		require.NoError(t, rows.Scan(&client, &n))
		name, ok := owner[client]
		require.True(t, ok, "jobs worked by River client %q of no known worker", client)
		out[name] += n
	}
	require.NoError(t, rows.Err())
	return out
}
