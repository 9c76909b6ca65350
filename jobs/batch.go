package jobs

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"

	"github.com/postcall/postcall/pipeline"
)

// DefaultBatchPollInterval is how often a submitted Batch API batch is
// polled: OpenAI's batches take minutes to hours, and polling is free.
const DefaultBatchPollInterval = time.Minute

// BatchArgs takes one Batch API batch (llm_batches) from upload to the end
// of its runs.
type BatchArgs struct {
	BatchID int64 `json:"batch_id"`
}

func (BatchArgs) Kind() string { return "postcall.llm_batch" }

func (BatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// BatchWorker advances a batch (pipeline.Batches.Advance) and snoozes
// until the next poll while it is not done. Its state lives in postcall's
// tables, each step committed with the jobs it enqueues, so a worker
// restarted at any point resumes the batch where it stopped; the job's own
// completion records nothing and needs no transaction.
type BatchWorker struct {
	river.WorkerDefaults[BatchArgs]
	Batches *pipeline.Batches
	// PollInterval is the wait between polls. Default
	// DefaultBatchPollInterval.
	PollInterval time.Duration
	// StepTimeout bounds one advance (an upload or a dispatch of up to
	// 50,000 results). Default runTimeout (10m).
	StepTimeout time.Duration
}

func (w *BatchWorker) Timeout(*river.Job[BatchArgs]) time.Duration {
	return cmp.Or(w.StepTimeout, runTimeout)
}

func (w *BatchWorker) Work(ctx context.Context, job *river.Job[BatchArgs]) error {
	done, err := w.Batches.Advance(ctx, job.Args.BatchID)
	switch {
	case errors.Is(err, pipeline.ErrNoBatchAPI):
		// Waiting is not failing: snoozing does not use up attempts.
		return river.JobSnooze(noModelSnooze)
	case err != nil:
		return err
	case !done:
		return river.JobSnooze(cmp.Or(w.PollInterval, DefaultBatchPollInterval))
	}
	return nil
}
