// Package heartbeat tells live worker processes from dead ones, so that the
// jobs a dead process left running are worked again within seconds.
//
// River rescues a job left running only after RescueStuckJobsAfter, which
// must exceed the longest a live job may run (riverqueue/river issues 682
// and 773): a process killed with kill -9 or lost with its node leaves its
// calls waiting that long. Here every worker process records its River
// client id (river.Config.ID, what River stores in river_job.attempted_by)
// in worker_heartbeats every Interval. A job whose latest attempt belongs to
// a process that has not beaten for DeadAfter is rescued the way River's
// JobRescuer rescues a stuck job (an errors entry saying why, the rescue
// counted in metadata, retried or discarded as attempts allow), in one
// statement that re-checks the job is still running that attempt. A live
// job is never rescued however long it runs: its process beats. A process
// that never beat (a version from before this table, a test) is left to
// River's own rescuer.
//
// A process that comes back after it was declared dead (paused, or cut off
// from the database) must not report the attempts taken from it: LockAttempt
// is the check its workers make in the transaction that completes a job.
package heartbeat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Defaults.
const (
	// DefaultInterval is how often a worker process records its heartbeat.
	DefaultInterval = 5 * time.Second
	// DefaultDeadAfter is how long a process may miss its heartbeats before
	// its running jobs are rescued: six beats, so a slow database or a long
	// garbage-collection pause does not declare a live process dead.
	DefaultDeadAfter = 30 * time.Second
	// MinDeadAfter is the shortest DeadAfter accepted: three beats.
	MinDeadAfter = 3 * DefaultInterval
	// DefaultForgetAfter is how long the row of a process that stopped or
	// died is kept (for `postcall workers`) before it is deleted.
	DefaultForgetAfter = 24 * time.Hour
)

// ErrAttemptLost is returned by LockAttempt when the job's attempt is no
// longer this process's: it was rescued while this process was thought
// dead, and may already be running elsewhere.
var ErrAttemptLost = errors.New("job attempt was rescued from this worker (declared dead); abandoning it")

// DBTX runs statements: a pool, a connection or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// NewClientID returns a River client id for this process: hostname, pid
// and a random suffix, so that a restarted process (same host, perhaps the
// same pid in a container) is a new client and its predecessor's jobs are
// recognisably the predecessor's. At most 100 characters, River's limit.
func NewClientID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	if len(host) > 64 {
		host = host[:64]
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(suffix))
}

// Worker is a worker process as its heartbeats show it.
type Worker struct {
	ClientID  string
	Hostname  string
	PID       int
	StartedAt time.Time
	BeatAt    time.Time
	// StoppedAt is set when the process stopped, or was declared dead and
	// its jobs rescued.
	StoppedAt *time.Time
	// RescuedJobs counts the jobs rescued from it after it stopped beating.
	RescuedJobs int
	// Running is how many jobs its latest attempts hold running now.
	Running int
	// Live reports a beat within the dead-after window and no stop.
	Live bool
}

// Beat records that clientID is alive now (the database's clock). It
// returns when clientID had been declared dead (or stopped) before this
// beat, nil if not: a process that was paused or cut off past the
// dead-after window learns here that its running jobs were taken from it.
func Beat(ctx context.Context, db DBTX, clientID, hostname string, pid int) (declaredDeadAt *time.Time, err error) {
	err = db.QueryRow(ctx, `
		WITH before AS (SELECT stopped_at FROM worker_heartbeats WHERE client_id = $1)
		INSERT INTO worker_heartbeats (client_id, hostname, pid) VALUES ($1, $2, $3)
		ON CONFLICT (client_id) DO UPDATE SET beat_at = now(), stopped_at = NULL
		RETURNING (SELECT stopped_at FROM before)`, clientID, hostname, pid).Scan(&declaredDeadAt)
	if err != nil {
		return nil, fmt.Errorf("record heartbeat of %s: %w", clientID, err)
	}
	return declaredDeadAt, nil
}

// Stopped marks clientID stopped and makes the jobs it still holds running
// available again at once, in one transaction: called by a process whose
// graceful stop ran past its timeout, just before it exits, so that the
// jobs it abandons are not left waiting for DeadAfter. It returns how many
// jobs were rescued.
func Stopped(ctx context.Context, db DBTX, clientID string) (int, error) {
	var n int
	err := db.QueryRow(ctx, rescueSQL(`
		SELECT client_id, beat_at, format('worker %s stopped with the job unfinished', client_id) AS reason
		FROM worker_heartbeats WHERE client_id = $1`), clientID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("rescue the jobs of stopped worker %s: %w", clientID, err)
	}
	return n, nil
}

// RescueDead makes the jobs running under a process that has not beaten
// for deadAfter available again (or discards them when their attempts are
// used up, or cancels them when a cancellation was asked for, as River's
// rescuer does), marks those processes stopped, and returns how many jobs
// it rescued. One statement: a job whose attempt completed, or was
// rescued and taken by another process, since is left alone.
func RescueDead(ctx context.Context, db DBTX, deadAfter time.Duration) (int, error) {
	var n int
	err := db.QueryRow(ctx, rescueSQL(`
		SELECT client_id, beat_at,
			format('worker %s dead (no heartbeat since %s)', client_id,
				to_char(beat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) AS reason
		FROM worker_heartbeats
		WHERE beat_at < now() - make_interval(secs => $1)`), deadAfter.Seconds()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("rescue the jobs of dead workers: %w", err)
	}
	return n, nil
}

// rescueSQL is the rescue statement for the processes dead selects
// (client_id, beat_at, reason). Every job in state running whose latest
// attempt (the last element of attempted_by) is one of theirs gets what
// River's JobRescuer gives a stuck job (riverdriver's JobRescueMany):
// an errors entry {at, attempt, error, trace}, river:rescue_count
// incremented in metadata, and cancelled when a cancellation was attempted,
// discarded when its attempts are used up, otherwise retried. The retry is
// at once (state available, as River's executor sets a retry due within
// the scheduler's interval): the process died, the job did not fail, so
// there is nothing to back off from. The attempt itself stays counted, as
// River counts it. A job whose row is locked is skipped until a later
// pass: its worker is completing it right now, or is a paused process
// holding the lock, which must not stall the rescue of every other job.
// The dead processes are marked stopped with the number of jobs taken from
// them.
func rescueSQL(dead string) string {
	return `
	WITH dead AS (` + dead + `),
	stuck AS (
		SELECT j.id, d.client_id, d.reason FROM river_job j JOIN dead d
			ON j.attempted_by[cardinality(j.attempted_by)] = d.client_id
		WHERE j.state = 'running'
		FOR UPDATE OF j SKIP LOCKED
	),
	rescued AS (
		UPDATE river_job j SET
			state = (CASE
				WHEN j.metadata ? 'cancel_attempted_at' THEN 'cancelled'
				WHEN j.attempt >= j.max_attempts THEN 'discarded'
				ELSE 'available' END)::river_job_state,
			finalized_at = CASE
				WHEN j.metadata ? 'cancel_attempted_at' OR j.attempt >= j.max_attempts THEN now() END,
			scheduled_at = CASE
				WHEN j.metadata ? 'cancel_attempted_at' OR j.attempt >= j.max_attempts THEN j.scheduled_at
				ELSE now() END,
			errors = array_append(j.errors, jsonb_build_object(
				'at', now(), 'attempt', greatest(j.attempt, 0), 'error', d.reason, 'trace', '')),
			metadata = j.metadata || jsonb_build_object('river:rescue_count',
				coalesce(CASE WHEN jsonb_typeof(j.metadata -> 'river:rescue_count') = 'number'
					THEN (j.metadata ->> 'river:rescue_count')::int END, 0) + 1)
		FROM stuck d
		WHERE j.id = d.id
		RETURNING d.client_id
	),
	counted AS (
		SELECT client_id, count(*) AS n FROM rescued GROUP BY client_id
	),
	marked AS (
		UPDATE worker_heartbeats h SET
			stopped_at = coalesce(h.stopped_at, now()),
			rescued_jobs = h.rescued_jobs + coalesce(c.n, 0)
		FROM dead d LEFT JOIN counted c USING (client_id)
		WHERE h.client_id = d.client_id AND (h.stopped_at IS NULL OR c.n > 0)
	)
	SELECT coalesce(sum(n), 0)::int FROM counted`
}

// LockAttempt locks the row of job id in tx and checks that it is still
// running attempt attempt under clientID. A worker calls it in the
// transaction that stores its result and completes the job, before
// anything else: ErrAttemptLost means this process was declared dead and
// the job rescued (perhaps running elsewhere now), so the transaction must
// be rolled back and the job left alone. The lock makes the check and the
// completion one step against a concurrent rescue.
func LockAttempt(ctx context.Context, tx pgx.Tx, id int64, attempt int, clientID string) error {
	var ok bool
	err := tx.QueryRow(ctx, `
		SELECT true FROM river_job
		WHERE id = $1 AND state = 'running' AND attempt = $2 AND attempted_by[cardinality(attempted_by)] = $3
		FOR UPDATE`, id, attempt, clientID).Scan(&ok)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ErrAttemptLost
	case err != nil:
		return fmt.Errorf("lock job %d: %w", id, err)
	}
	return nil
}

// AttemptLost reports whether the attempt of job id that clientID worked
// has been taken from it: the job is still live (to be worked, or running)
// but no longer running that attempt under clientID. A job that finished
// (by this attempt, or by any) or was deleted is not lost: reporting on it
// changes nothing. Checked after an attempt returns, before River records
// its outcome, which River does on any row still running.
func AttemptLost(ctx context.Context, db DBTX, id int64, attempt int, clientID string) (bool, error) {
	var lost bool
	err := db.QueryRow(ctx, `
		SELECT state IN ('available', 'pending', 'retryable', 'scheduled')
			OR (state = 'running' AND (attempt <> $2 OR attempted_by[cardinality(attempted_by)] IS DISTINCT FROM $3))
		FROM river_job WHERE id = $1`, id, attempt, clientID).Scan(&lost)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read job %d: %w", id, err)
	}
	return lost, nil
}

// AttemptSettled reports whether job id has left River's live states (it
// completed, was discarded or cancelled, or was deleted): once it has, a
// report of an abandoned attempt can no longer land on a later attempt's
// running row. running reports whether it is running now (under whichever
// attempt): while it is not, such a report changes nothing either.
func AttemptSettled(ctx context.Context, db DBTX, id int64) (settled, running bool, err error) {
	var live bool
	err = db.QueryRow(ctx, `
		SELECT state IN ('available', 'pending', 'retryable', 'running', 'scheduled'), state = 'running'
		FROM river_job WHERE id = $1`, id).Scan(&live, &running)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return true, false, nil
	case err != nil:
		return false, false, fmt.Errorf("read job %d: %w", id, err)
	}
	return !live, running, nil
}

// Forget deletes the rows of processes that stopped beating more than
// forgetAfter ago and hold no running job, and returns how many.
func Forget(ctx context.Context, db DBTX, forgetAfter time.Duration) (int64, error) {
	tag, err := db.Exec(ctx, `
		DELETE FROM worker_heartbeats h
		WHERE beat_at < now() - make_interval(secs => $1)
		  AND NOT EXISTS (SELECT 1 FROM river_job j
			WHERE j.state = 'running' AND j.attempted_by[cardinality(j.attempted_by)] = h.client_id)`,
		forgetAfter.Seconds())
	if err != nil {
		return 0, fmt.Errorf("forget old worker heartbeats: %w", err)
	}
	return tag.RowsAffected(), nil
}

// List returns the worker processes the table knows, live ones first, then
// by latest beat; deadAfter decides which are live.
func List(ctx context.Context, db DBTX, deadAfter time.Duration) ([]Worker, error) {
	rows, err := db.Query(ctx, `
		SELECT h.client_id, h.hostname, h.pid, h.started_at, h.beat_at, h.stopped_at, h.rescued_jobs,
			(SELECT count(*) FROM river_job j
				WHERE j.state = 'running' AND j.attempted_by[cardinality(j.attempted_by)] = h.client_id)::int,
			h.stopped_at IS NULL AND h.beat_at >= now() - make_interval(secs => $1) AS live
		FROM worker_heartbeats h
		ORDER BY live DESC, h.beat_at DESC, h.client_id`, deadAfter.Seconds())
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	workers, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Worker, error) {
		var w Worker
		err := row.Scan(&w.ClientID, &w.Hostname, &w.PID, &w.StartedAt, &w.BeatAt, &w.StoppedAt, &w.RescuedJobs,
			&w.Running, &w.Live)
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	return workers, nil
}

// Querier runs a query; a pool is one.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// CountLive returns how many processes have beaten within deadAfter and
// not stopped.
func CountLive(ctx context.Context, db Querier, deadAfter time.Duration) (int, error) {
	rows, err := db.Query(ctx, `
		SELECT count(*)::int FROM worker_heartbeats
		WHERE stopped_at IS NULL AND beat_at >= now() - make_interval(secs => $1)`, deadAfter.Seconds())
	if err != nil {
		return 0, fmt.Errorf("count live workers: %w", err)
	}
	n, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int])
	if err != nil {
		return 0, fmt.Errorf("count live workers: %w", err)
	}
	return n, nil
}
