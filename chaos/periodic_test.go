//go:build chaos

package chaos

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPeriodicJobsOnceAcrossLeaders runs three workers on one database with
// the purge and the hard delete scheduled every minute, for three one-minute
// periods, while calls keep arriving; in the second period the leader is
// killed (SIGKILL) and a fourth worker joins. River's leader enqueues the
// periodic jobs: each runs exactly once per period (not once per worker,
// and none missed during the leader change), one worker at a time holds
// the leadership, and every call is finalized and delivered once.
func TestPeriodicJobsOnceAcrossLeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{
		ModelDelay: func() time.Duration { return randDuration(5*time.Millisecond, 30*time.Millisecond) },
		Env: []string{
			"POSTCALL_PURGE_SCHEDULE=* * * * *", "POSTCALL_RETENTION_SCHEDULE=* * * * *",
			// River's own log lines (leadership) are debug. The killed
			// leader's jobs in flight are rescued with the defaults,
			// POSTCALL_WORKER_DEAD_AFTER (30 s) after its last heartbeat.
			"POSTCALL_LOG_LEVEL=debug",
		},
	})
	// Start well inside a minute: the first leader runs the jobs on start
	// (after its election and River's staggered start, a second or two),
	// and that run must fall in the minute the test counts as its first.
	if sec := time.Now().Second(); sec > 40 {
		time.Sleep(time.Duration(62-sec) * time.Second)
	}
	begin := time.Now()
	minute := begin.Truncate(time.Minute)
	killAt := minute.Add(time.Minute + 20*time.Second)
	end := minute.Add(2*time.Minute + 15*time.Second)

	procs := []*workerProc{b.spawnWorker(t, "1"), b.spawnWorker(t, "2"), b.spawnWorker(t, "3")}
	for _, w := range procs {
		w.waitReady(t, 30*time.Second)
	}
	var (
		killed        *workerProc
		inFlightRuns  = map[int64]int{}
		leaderBefore  string
		leaderAfter   string
		batches, sent int
	)
	for time.Now().Before(end) {
		batch := 40
		killNow := killed == nil && time.Now().After(killAt)
		if killNow {
			batch = 300
		}
		b.ingest(t, b.newCalls(batch, 10))
		batches++
		sent += batch
		if killNow {
			// Kill the leader while it works on the batch just ingested.
			leaderBefore = b.leader(t, procs)
			for _, w := range procs {
				if w.name == leaderBefore {
					killed = w
				}
			}
			require.NotNil(t, killed, "leader %q is none of the workers", leaderBefore)
			b.killWorker(t, killed)
			for _, run := range b.runningJobs(t, map[string]bool{}).runs {
				inFlightRuns[run]++
			}
			procs = append(procs, b.startWorker(t, "4"))
		}
		time.Sleep(8 * time.Second)
	}
	require.NotNil(t, killed, "the leader was never killed")
	b.waitDone(t, sent, 2*time.Minute)
	b.waitDeliveries(t, time.Minute)
	leaderAfter = b.leader(t, procs)
	require.NotEqual(t, leaderBefore, leaderAfter, "a live worker took over the leadership")

	b.requireAllDone(t)
	repeats := b.requireRequestsPerRun(t, func(_ runKey, r runRow) int { return inFlightRuns[r.id] })
	rep := b.requireDeliveredOnce(t)
	b.requireJobsHealthy(t)

	// Exactly one run of each periodic job per minute: the periods the
	// test spans, no more (not one per worker), no fewer (none lost to the
	// leader change).
	want := periods(begin, end, time.Minute)
	// The last period's runs may still be under way: wait for them.
	rr := b.retentionRuns(t)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); rr = b.retentionRuns(t) {
		if rr["purge"] >= want && rr["hard_delete"] >= want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, kind := range []string{"purge", "hard_delete"} {
		require.Equal(t, want, rr[kind], "%s runs in %d one-minute periods with 3 workers and a leader change", kind, want)
	}
	var perMinute []string
	rows, err := b.pool.Query(context.Background(), `
		SELECT to_char(date_trunc('minute', started_at), 'HH24:MI'), string_agg(kind, ',' ORDER BY kind)
		FROM retention_runs WHERE trigger = 'schedule' GROUP BY 1 ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var m, kinds string
		require.NoError(t, rows.Scan(&m, &kinds))
		perMinute = append(perMinute, m+" "+kinds)
	}
	require.NoError(t, rows.Err())
	rows.Close()

	// One leader at a time: each worker logs when it gains the leadership.
	gained := map[string]int{}
	for _, w := range procs {
		data, err := os.ReadFile(w.logPath)
		require.NoError(t, err)
		if n := strings.Count(string(data), "Gained leadership"); n > 0 {
			gained[w.name] = n
		}
	}
	require.Len(t, gained, 2, "leaderships gained per worker: one before the kill, one after: %v", gained)
	for _, w := range procs {
		if !w.Exited() {
			w.stop(t)
		}
	}
	t.Logf("3 workers + 1 after killing leader %s at %s; new leader %s; leaderships gained %v\n"+
		"  retention runs %v over %d one-minute periods: %s\n"+
		"  %d calls in %d batches, runs requested again %d (in flight at the kill %d); webhooks: %d deliveries, %d requests, %d repeats",
		leaderBefore, killAt.Format("15:04:05"), leaderAfter, gained, rr, want, strings.Join(perMinute, "; "),
		sent, batches, repeats, len(inFlightRuns), rep.deliveries, rep.requests, rep.repeats)
}

var gainedRE = regexp.MustCompile(`Gained leadership","client_id":"([^"]+)"`)

// leader names the worker process that holds River's leadership now,
// mapping river_leader's client id through the workers' debug logs.
func (b *testBundle) leader(t *testing.T, procs []*workerProc) string {
	t.Helper()
	var id string
	require.Eventually(t, func() bool {
		err := b.pool.QueryRow(context.Background(), `SELECT leader_id FROM river_leader`).Scan(&id)
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "no leader")
	for _, w := range procs {
		data, err := os.ReadFile(w.logPath)
		require.NoError(t, err)
		for _, m := range gainedRE.FindAllSubmatch(data, -1) {
			if string(m[1]) == id {
				return w.name
			}
		}
	}
	t.Fatalf("leader %s: no worker logged gaining the leadership", id)
	return ""
}
