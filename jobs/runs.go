// Package jobs is postcall's River layer: job arguments, workers and
// periodic jobs. The work itself lives in the domain packages; a worker here
// only adapts River's job to it and steers retries by return value.
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

// Priorities: River works priority 1 first. An admin's reanalysis of a call
// jumps ahead of the ingest backlog; bulk reanalysis goes after it, so that
// thousands of old calls never delay the analysis of new ones.
const (
	PriorityReanalyze = 1
	PriorityIngest    = 2
	PriorityBulk      = 3
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

// QCArgs runs one QC run.
type QCArgs struct {
	CallID uuid.UUID `json:"call_id"`
	RunID  int64     `json:"run_id"`
}

func (QCArgs) Kind() string { return "postcall.qc" }

func (QCArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueQC, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// AnalysisWorker works AnalysisArgs.
type AnalysisWorker struct {
	river.WorkerDefaults[AnalysisArgs]
	DB       pipeline.DB
	Pipeline *pipeline.Service
	// RunTimeout bounds one run. Default runTimeout (10m).
	RunTimeout time.Duration
}

func (w *AnalysisWorker) Timeout(*river.Job[AnalysisArgs]) time.Duration {
	return cmp.Or(w.RunTimeout, runTimeout)
}

func (w *AnalysisWorker) Work(ctx context.Context, job *river.Job[AnalysisArgs]) error {
	return executeRun(ctx, w.DB, w.Pipeline, job.Args.RunID, job)
}

// QCWorker works QCArgs.
type QCWorker struct {
	river.WorkerDefaults[QCArgs]
	DB       pipeline.DB
	Pipeline *pipeline.Service
	// RunTimeout bounds one run. Default runTimeout (10m).
	RunTimeout time.Duration
}

func (w *QCWorker) Timeout(*river.Job[QCArgs]) time.Duration {
	return cmp.Or(w.RunTimeout, runTimeout)
}

func (w *QCWorker) Work(ctx context.Context, job *river.Job[QCArgs]) error {
	return executeRun(ctx, w.DB, w.Pipeline, job.Args.RunID, job)
}

// executeRun runs the pipeline and completes the job in the transaction that
// stores the run's result, then turns the pipeline's errors into River's
// retry decisions.
func executeRun[T river.JobArgs](ctx context.Context, db pipeline.DB, p *pipeline.Service, runID int64, job *river.Job[T]) error {
	err := p.Execute(ctx, db, runID, func(ctx context.Context, tx pgx.Tx) error {
		_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
		return err
	})
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

// enqueueRuns inserts one job per run, in tx.
func enqueueRuns(ctx context.Context, client *river.Client[pgx.Tx], tx pgx.Tx, callID uuid.UUID, runs []pipeline.RunRef, priority int) error {
	if len(runs) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, 0, len(runs))
	for _, r := range runs {
		var args river.JobArgs
		switch r.Kind {
		case store.KindAnalysis:
			args = AnalysisArgs{CallID: callID, RunID: r.ID}
		case store.KindQC:
			args = QCArgs{CallID: callID, RunID: r.ID}
		default:
			return fmt.Errorf("enqueue run %d: unknown kind %q", r.ID, r.Kind)
		}
		params = append(params, river.InsertManyParams{Args: args, InsertOpts: &river.InsertOpts{Priority: priority}})
	}
	if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue runs of call %s: %w", callID, err)
	}
	return nil
}
