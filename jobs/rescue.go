package jobs

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/postcall/postcall/heartbeat"
)

// rescueDeadInterval is how often the leader enqueues the dead-worker
// rescue: a dead worker's jobs wait at most WorkerDeadAfter plus this.
const rescueDeadInterval = 5 * time.Second

// settledPoll is how often an abandoned attempt checks whether its job has
// settled.
const settledPoll = time.Second

// RescueDeadWorkersArgs is the periodic job that makes the jobs of dead
// worker processes available again (heartbeat.RescueDead) and forgets old
// heartbeat rows.
type RescueDeadWorkersArgs struct{}

// Kind implements river.JobArgs.
func (RescueDeadWorkersArgs) Kind() string { return "postcall.rescue_dead_workers" }

// InsertOpts keeps one pass waiting at a time: when no worker can take it,
// passes do not pile up.
func (RescueDeadWorkersArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled,
	}}}
}

// RescueDeadWorkersWorker runs one rescue pass.
type RescueDeadWorkersWorker struct {
	river.WorkerDefaults[RescueDeadWorkersArgs]
	DB heartbeat.DBTX
	// DeadAfter is how long a process may miss heartbeats before its jobs
	// are rescued. Default heartbeat.DefaultDeadAfter.
	DeadAfter time.Duration
	// Observe counts the jobs rescued (metrics). Default nil: not counted.
	Observe func(cause string, n int)
	Logger  *slog.Logger
}

// Work rescues, then forgets heartbeat rows older than
// heartbeat.DefaultForgetAfter.
func (w *RescueDeadWorkersWorker) Work(ctx context.Context, _ *river.Job[RescueDeadWorkersArgs]) error {
	n, err := heartbeat.RescueDead(ctx, w.DB, w.DeadAfter)
	if err != nil {
		return err
	}
	if n > 0 {
		w.Logger.WarnContext(ctx, "jobs of dead workers made available again", slog.Int("jobs", n),
			slog.Duration("dead_after", w.DeadAfter))
		if w.Observe != nil {
			w.Observe(RecoveredDead, n)
		}
	}
	_, err = heartbeat.Forget(ctx, w.DB, heartbeat.DefaultForgetAfter)
	return err
}

// Causes of a job's recovery (the cause label of the metric).
const (
	// RecoveredDead: its worker stopped beating for WorkerDeadAfter.
	RecoveredDead = "dead"
	// RecoveredStopped: its worker stopped past its stop timeout with the
	// job unfinished.
	RecoveredStopped = "stopped"
)

// attemptGuard keeps an attempt that was taken from this process (it was
// declared dead while paused or cut off, and its job rescued) from
// reporting: River records an attempt's outcome on any row still running,
// which would be the next attempt's, worked elsewhere. Workers that
// complete in their own transaction check first (heartbeat.LockAttempt)
// and return heartbeat.ErrAttemptLost; for every job the guard checks
// again when the attempt returns, and holds a lost attempt back until its
// job has settled (finished, by whichever attempt), so that River's report
// of it changes nothing. Stopping releases it only while the job runs
// nowhere; otherwise the process exits with the attempt unreported.
type attemptGuard struct {
	river.MiddlewareDefaults
	db heartbeat.DBTX
	// maxHold bounds the hold: past it (the job still live) the attempt
	// reports, as it would have without a guard.
	maxHold time.Duration
	logger  *slog.Logger
}

// Work implements rivertype.WorkerMiddleware.
func (g *attemptGuard) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	err := doInner(ctx)
	client := river.ClientFromContext[pgx.Tx](ctx)
	if !errors.Is(err, heartbeat.ErrAttemptLost) {
		lost, checkErr := heartbeat.AttemptLost(context.WithoutCancel(ctx), g.db, job.ID, job.Attempt, client.ID())
		if checkErr != nil {
			g.logger.WarnContext(ctx, "could not check whether the attempt was taken from this worker; reporting it",
				slog.Int64("job_id", job.ID), slog.String("error", checkErr.Error()))
		}
		if checkErr != nil || !lost {
			return err
		}
	}
	g.logger.WarnContext(ctx, "attempt taken from this worker (declared dead); holding it back until its job settles",
		slog.Int64("job_id", job.ID), slog.String("kind", job.Kind), slog.Int("attempt", job.Attempt))
	g.hold(ctx, job.ID)
	return heartbeat.ErrAttemptLost
}

// hold returns once the job has settled, or once this client is stopping
// (ctx done) and the job is not running anywhere, when a report changes
// nothing either; at most maxHold.
func (g *attemptGuard) hold(ctx context.Context, id int64) {
	deadline := time.Now().Add(g.maxHold)
	for time.Now().Before(deadline) {
		settled, running, err := heartbeat.AttemptSettled(context.WithoutCancel(ctx), g.db, id)
		if err != nil {
			g.logger.WarnContext(ctx, "could not check whether a held-back attempt's job has settled; holding on",
				slog.Int64("job_id", id), slog.String("error", err.Error()))
		}
		if err == nil && (settled || ctx.Err() != nil && !running) {
			return
		}
		time.Sleep(settledPoll)
	}
}

// lockAttempt is the first statement of a worker's completing transaction:
// it fails with heartbeat.ErrAttemptLost when the attempt was rescued from
// this process, so nothing of it is stored.
func lockAttempt(ctx context.Context, tx pgx.Tx, job *rivertype.JobRow) error {
	return heartbeat.LockAttempt(ctx, tx, job.ID, job.Attempt, river.ClientFromContext[pgx.Tx](ctx).ID())
}
