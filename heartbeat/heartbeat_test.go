package heartbeat_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/heartbeat"
	"github.com/postcall/postcall/internal/dbtest"
)

type testBundle struct {
	pool *pgxpool.Pool
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	pool, _ := dbtest.Schema(t)
	return &testBundle{pool: pool}
}

// beat records clientID's heartbeat as of ago before now.
func (b *testBundle) beat(t *testing.T, clientID string, ago time.Duration) {
	t.Helper()
	ctx := context.Background()
	_, err := heartbeat.Beat(ctx, b.pool, clientID, "host", 1)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE worker_heartbeats SET beat_at = now() - make_interval(secs => $2) WHERE client_id = $1`,
		clientID, ago.Seconds())
	require.NoError(t, err)
}

// job inserts a River job in state with attempt attempt (of maxAttempts)
// tried by attemptedBy, the last the latest.
func (b *testBundle) job(t *testing.T, state string, attempt, maxAttempts int, metadata string, attemptedBy ...string) int64 {
	t.Helper()
	var id int64
	err := b.pool.QueryRow(context.Background(), `
		INSERT INTO river_job (args, kind, max_attempts, queue, state, attempt, attempted_at, attempted_by, metadata,
			scheduled_at, finalized_at)
		VALUES ('{}', 'test', $2, 'default', $1::river_job_state, $3, now() - interval '1 minute', $4, $5::jsonb,
			now() - interval '1 hour', CASE WHEN $1 IN ('completed', 'discarded', 'cancelled') THEN now() END)
		RETURNING id`, state, maxAttempts, attempt, attemptedBy, metadata).Scan(&id)
	require.NoError(t, err)
	return id
}

type jobRow struct {
	State       string
	Attempt     int
	ScheduledAt time.Time
	FinalizedAt *time.Time
	Errors      []map[string]any
	Metadata    map[string]any
}

func (b *testBundle) read(t *testing.T, id int64) jobRow {
	t.Helper()
	var r jobRow
	var errs [][]byte
	var meta []byte
	err := b.pool.QueryRow(context.Background(), `
		SELECT state::text, attempt, scheduled_at, finalized_at, coalesce(errors, '{}')::jsonb[], metadata
		FROM river_job WHERE id = $1`, id).Scan(&r.State, &r.Attempt, &r.ScheduledAt, &r.FinalizedAt, &errs, &meta)
	require.NoError(t, err)
	for _, e := range errs {
		var m map[string]any
		require.NoError(t, json.Unmarshal(e, &m))
		r.Errors = append(r.Errors, m)
	}
	require.NoError(t, json.Unmarshal(meta, &r.Metadata))
	return r
}

func TestRescueDead(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.beat(t, "dead", time.Minute)
	b.beat(t, "live", 0)

	retried := b.job(t, "running", 2, 25, `{"river:rescue_count": 1}`, "other", "dead")
	retriedByLive := b.job(t, "running", 2, 25, `{}`, "dead", "live") // the dead one's was an earlier attempt
	exhausted := b.job(t, "running", 3, 3, `{}`, "dead")
	cancelling := b.job(t, "running", 1, 25, `{"cancel_attempted_at": "2026-01-01T00:00:00Z"}`, "dead")
	completed := b.job(t, "completed", 1, 25, `{}`, "dead")
	neverBeat := b.job(t, "running", 1, 25, `{}`, "unknown") // a client without a heartbeat row

	n, err := heartbeat.RescueDead(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, 3, n)

	r := b.read(t, retried)
	require.Equal(t, "available", r.State)
	require.Equal(t, 2, r.Attempt, "the attempt stays counted; the next fetch makes it 3")
	require.WithinDuration(t, time.Now(), r.ScheduledAt, 5*time.Second, "retried at once")
	require.Nil(t, r.FinalizedAt)
	require.Len(t, r.Errors, 1)
	require.EqualValues(t, 2, r.Errors[0]["attempt"])
	require.Contains(t, r.Errors[0]["error"], "worker dead dead (no heartbeat since ")
	require.Contains(t, r.Errors[0], "at")
	require.EqualValues(t, 2, r.Metadata["river:rescue_count"])

	r = b.read(t, exhausted)
	require.Equal(t, "discarded", r.State)
	require.NotNil(t, r.FinalizedAt)
	require.Len(t, r.Errors, 1)

	require.Equal(t, "cancelled", b.read(t, cancelling).State)
	require.Equal(t, "running", b.read(t, retriedByLive).State, "a live process's attempt is never rescued")
	require.Equal(t, "completed", b.read(t, completed).State)
	require.Equal(t, "running", b.read(t, neverBeat).State, "a client that never beat is River's rescuer's")

	workers, err := heartbeat.List(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)
	require.Len(t, workers, 2)
	require.Equal(t, "live", workers[0].ClientID)
	require.True(t, workers[0].Live)
	require.Equal(t, 1, workers[0].Running)
	require.Equal(t, "dead", workers[1].ClientID)
	require.False(t, workers[1].Live)
	require.NotNil(t, workers[1].StoppedAt)
	require.Equal(t, 3, workers[1].RescuedJobs)

	n, err = heartbeat.RescueDead(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)
	require.Zero(t, n, "a second pass finds nothing")
	require.Len(t, b.read(t, retried).Errors, 1)

	live, err := heartbeat.CountLive(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, 1, live)
}

// The rescue skips a job whose row is locked (its worker is completing it,
// riverqueue/river#1302), and does not wait for the lock: a paused process
// holding one must not stall every other rescue. Once the worker committed
// its completion, there is nothing left to rescue.
func TestRescueDeadSkipsALockedJob(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.beat(t, "dead", time.Minute)
	locked := b.job(t, "running", 1, 25, `{}`, "dead")
	other := b.job(t, "running", 1, 25, `{}`, "dead")

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	require.NoError(t, heartbeat.LockAttempt(ctx, tx, locked, 1, "dead"))
	start := time.Now()
	n, err := heartbeat.RescueDead(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 2*time.Second, "the rescue did not wait for the lock")
	require.Equal(t, 1, n, "the other job only")
	require.Equal(t, "available", b.read(t, other).State)
	require.Equal(t, "running", b.read(t, locked).State)

	_, err = tx.Exec(ctx, `UPDATE river_job SET state = 'completed', finalized_at = now() WHERE id = $1`, locked)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	n, err = heartbeat.RescueDead(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)
	require.Zero(t, n)
	r := b.read(t, locked)
	require.Equal(t, "completed", r.State)
	require.Empty(t, r.Errors)
}

func TestLockAttempt(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.beat(t, "a", time.Minute)
	b.beat(t, "b", 0)
	id := b.job(t, "running", 1, 25, `{}`, "a")

	lock := func(attempt int, clientID string) error {
		t.Helper()
		return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			return heartbeat.LockAttempt(ctx, tx, id, attempt, clientID)
		})
	}
	require.NoError(t, lock(1, "a"), "a's attempt is a's")
	require.ErrorIs(t, lock(1, "b"), heartbeat.ErrAttemptLost)
	require.ErrorIs(t, lock(2, "a"), heartbeat.ErrAttemptLost)

	n, err := heartbeat.RescueDead(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.ErrorIs(t, lock(1, "a"), heartbeat.ErrAttemptLost, "rescued: available, not a's")

	// b takes the job: attempt 2, b the latest. a coming back late still
	// finds its attempt lost; b's is b's.
	_, err = b.pool.Exec(ctx, `UPDATE river_job SET state = 'running', attempt = 2, attempted_by = attempted_by || '{b}' WHERE id = $1`, id)
	require.NoError(t, err)
	require.ErrorIs(t, lock(1, "a"), heartbeat.ErrAttemptLost)
	require.NoError(t, lock(2, "b"))

	settled, running, err := heartbeat.AttemptSettled(ctx, b.pool, id)
	require.NoError(t, err)
	require.False(t, settled, "running under b")
	require.True(t, running)
	_, err = b.pool.Exec(ctx, `UPDATE river_job SET state = 'completed', finalized_at = now() WHERE id = $1`, id)
	require.NoError(t, err)
	settled, running, err = heartbeat.AttemptSettled(ctx, b.pool, id)
	require.NoError(t, err)
	require.True(t, settled)
	require.False(t, running)
}

func TestStopped(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.beat(t, "me", 0)
	b.beat(t, "other", 0)
	mine := b.job(t, "running", 1, 25, `{}`, "me")
	theirs := b.job(t, "running", 1, 25, `{}`, "other")

	n, err := heartbeat.Stopped(ctx, b.pool, "me")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	r := b.read(t, mine)
	require.Equal(t, "available", r.State)
	require.Contains(t, r.Errors[0]["error"], "worker me stopped with the job unfinished")
	require.Equal(t, "running", b.read(t, theirs).State)

	live, err := heartbeat.CountLive(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, 1, live, "a stopped worker is not live")
}

func TestBeatAfterDeclaredDead(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	deadAt, err := heartbeat.Beat(ctx, b.pool, "w", "host", 1)
	require.NoError(t, err)
	require.Nil(t, deadAt)
	b.beat(t, "w", time.Minute)
	b.job(t, "running", 1, 25, `{}`, "w")
	_, err = heartbeat.RescueDead(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)

	deadAt, err = heartbeat.Beat(ctx, b.pool, "w", "host", 1)
	require.NoError(t, err)
	require.NotNil(t, deadAt, "the process learns it was declared dead")
	live, err := heartbeat.CountLive(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, 1, live, "beating again, it is live again")
}

func TestForget(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.beat(t, "old", 48*time.Hour)
	b.beat(t, "old-running", 48*time.Hour) // never rescued (say the rescue is failing)
	b.beat(t, "recent", time.Hour)
	b.job(t, "running", 1, 25, `{}`, "old-running")

	n, err := heartbeat.Forget(ctx, b.pool, 24*time.Hour)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	workers, err := heartbeat.List(ctx, b.pool, 30*time.Second)
	require.NoError(t, err)
	var ids []string
	for _, w := range workers {
		ids = append(ids, w.ClientID)
	}
	require.ElementsMatch(t, []string{"old-running", "recent"}, ids)
}

func TestNewClientID(t *testing.T) {
	a, b := heartbeat.NewClientID(), heartbeat.NewClientID()
	require.NotEqual(t, a, b)
	require.LessOrEqual(t, len(a), 100)
}

func TestAttemptLost(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	lost := func(id int64, attempt int, clientID string) bool {
		t.Helper()
		l, err := heartbeat.AttemptLost(ctx, b.pool, id, attempt, clientID)
		require.NoError(t, err)
		return l
	}
	running := b.job(t, "running", 1, 25, `{}`, "a")
	require.False(t, lost(running, 1, "a"))
	require.True(t, lost(running, 1, "b"))
	require.True(t, lost(b.job(t, "available", 1, 25, `{}`, "a"), 1, "a"), "rescued: another may take it any moment")
	require.False(t, lost(b.job(t, "completed", 1, 25, `{}`, "a"), 1, "a"))
	require.False(t, lost(b.job(t, "discarded", 1, 25, `{}`, "b"), 1, "a"))
	require.False(t, lost(999999, 1, "a"), "deleted")
}
