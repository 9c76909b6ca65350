// Package jobs is postcall's River layer: job arguments, workers, periodic
// jobs, the client constructor and the Queue that inserts what the domain
// asks for. The work itself lives in the domain packages (pipeline,
// retention); a worker here opens its transaction, calls the domain with
// it, inserts the jobs the domain returns (InsertManyTx), completes its own
// job (JobCompleteTx) and commits, and steers retries by return value. A new
// kind of job goes here; what the job does goes in a domain package.
package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// Queues. Analysis and QC have queues of their own so that a slow model on
// one does not starve the other.
const (
	QueueAnalysis = "analysis"
	QueueQC       = "qc"
	QueueDefault  = river.QueueDefault
)

// runTimeout bounds one run: the LLM client's own retries with backoff fit
// in it. A client with a short RescueAfter shortens it (timeoutsFor).
const runTimeout = 10 * time.Minute

// noModelSnooze is how often a run waiting for an LLM endpoint looks again.
const noModelSnooze = time.Minute

// giveUpTransientAfter stops snoozing a run whose provider has been failing
// for this long; from then on failures count against its attempts.
const giveUpTransientAfter = 24 * time.Hour

// AnalysisArgs runs one analysis run.
type AnalysisArgs struct {
	CallID uuid.UUID `json:"call_id"`
	RunID  int64     `json:"run_id"`
}

func (AnalysisArgs) Kind() string { return "postcall.analysis" }

func (AnalysisArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueAnalysis, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

func (a AnalysisArgs) runID() int64 { return a.RunID }

// QCArgs runs one QC run.
type QCArgs struct {
	CallID uuid.UUID `json:"call_id"`
	RunID  int64     `json:"run_id"`
}

func (QCArgs) Kind() string { return "postcall.qc" }

func (QCArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueQC, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

func (a QCArgs) runID() int64 { return a.RunID }

// runArgs are the arguments of a run job: AnalysisArgs or QCArgs. The two
// kinds differ only in their queue.
type runArgs interface {
	river.JobArgs
	runID() int64
}

// RunWorker works the run jobs of one kind (AnalysisArgs or QCArgs): it
// performs the run, then in one transaction completes its job, stores the
// result (finalizing the call if it was its last run) and enqueues the
// deliveries the finalization created.
type RunWorker[T runArgs] struct {
	river.WorkerDefaults[T]
	DB       pipeline.DB
	Pipeline *pipeline.Service
	// RunTimeout bounds one run. Default runTimeout (10m).
	RunTimeout time.Duration
}

func (w *RunWorker[T]) Timeout(*river.Job[T]) time.Duration {
	return cmp.Or(w.RunTimeout, runTimeout)
}

// Work turns the pipeline's errors into River's retry decisions.
func (w *RunWorker[T]) Work(ctx context.Context, job *river.Job[T]) error {
	err := w.work(ctx, job)
	var transient *pipeline.TransientError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pipeline.ErrNoModel):
		// Waiting is not failing: snoozing does not use up attempts.
		return river.JobSnooze(noModelSnooze)
	case errors.As(err, &transient) && time.Since(job.CreatedAt) < giveUpTransientAfter:
		return river.JobSnooze(max(transient.RetryAfter, time.Second))
	case errors.Is(err, store.ErrNotFound):
		// The call was hard-deleted while its run waited.
		return river.JobCancel(err)
	}
	return err
}

func (w *RunWorker[T]) work(ctx context.Context, job *river.Job[T]) error {
	done, err := w.Pipeline.Execute(ctx, w.DB, job.Args.runID())
	if err != nil {
		return err
	}
	err = w.store(ctx, job, done)
	if failed, ok := w.Pipeline.Unstorable(ctx, done, err); ok {
		// The database refused the result for good: the run fails with
		// the reason, and its job completes.
		err = w.store(ctx, job, failed)
	}
	return err
}

// store completes the job, stores the run's result (finalizing the call if
// it was its last run) and enqueues the deliveries the finalization
// created, in one transaction.
func (w *RunWorker[T]) store(ctx context.Context, job *river.Job[T], done *pipeline.Executed) error {
	tx, err := w.DB.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store %s: %w", done, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	if err := lockAttempt(ctx, tx, job.JobRow); err != nil {
		return err
	}
	// The job's completion touches nothing the call's lock guards, so it
	// goes first: Store holds that lock for a statement less.
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("complete job of %s: %w", done, err)
	}
	followups, err := w.Pipeline.Store(ctx, tx, done)
	if err != nil {
		return err
	}
	if err := insertJobs(ctx, river.ClientFromContext[pgx.Tx](ctx), tx, followups); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store %s: %w", done, err)
	}
	return nil
}
