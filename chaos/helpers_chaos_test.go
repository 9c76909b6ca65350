//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitProgress waits until at least want calls are done (database errors
// are retried) and returns the done count.
func (b *testBundle) waitProgress(t *testing.T, want int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p, err := b.progress(ctx)
		cancel()
		if err == nil && p.done >= want {
			return p.done
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("fewer than %d calls done after %s; jobs: %v", want, timeout, b.jobStates(t))
	return 0
}

// progressNow is the done count, retrying database errors for up to 30 s.
func (b *testBundle) progressNow(t *testing.T) progress {
	t.Helper()
	var last error
	for range 300 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p, err := b.progress(ctx)
		cancel()
		if err == nil {
			return p
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("read progress: %v", last)
	return progress{}
}

// inFlightJobs are River jobs found running (after a kill their worker is
// gone): their ids, the runs and deliveries they work, and the attempts
// new since the previous look (a job stuck since an earlier kill is not new
// in flight).
type inFlightJobs struct {
	ids        []int64
	runs       []int64 // runs of new attempts
	deliveries int     // deliveries of new attempts
	fresh      int     // new attempts
}

// runningJobs lists the running jobs; seen holds the attempts already
// counted ("id/attempt") and gets the new ones.
func (b *testBundle) runningJobs(t *testing.T, seen map[string]bool) inFlightJobs {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `
		SELECT id, attempt, kind, coalesce((args->>'run_id')::bigint, 0) FROM river_job WHERE state = 'running' ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var out inFlightJobs
	for rows.Next() {
		var id, run int64
		var attempt int
		var kind string
		require.NoError(t, rows.Scan(&id, &attempt, &kind, &run))
		out.ids = append(out.ids, id)
		key := fmt.Sprintf("%d/%d", id, attempt)
		if seen[key] {
			continue
		}
		seen[key] = true
		out.fresh++
		switch kind {
		case "postcall.analysis", "postcall.qc":
			out.runs = append(out.runs, run)
		case "postcall.deliver":
			out.deliveries++
		}
	}
	require.NoError(t, rows.Err())
	return out
}

// snoozes sums River's snooze counts over every job, with the highest.
func (b *testBundle) snoozes(t *testing.T) (total, most int) {
	t.Helper()
	require.NoError(t, b.pool.QueryRow(context.Background(), `
		SELECT coalesce(sum((metadata->>'snoozes')::int), 0), coalesce(max((metadata->>'snoozes')::int), 0) FROM river_job`).
		Scan(&total, &most))
	return total, most
}
