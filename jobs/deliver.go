package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/postcall/postcall/crm"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// QueueDeliveries holds CRM and webhook deliveries, apart from the model
// queues so that a slow CRM never holds up analysis.
const QueueDeliveries = "deliveries"

// DeliverArgs makes one attempt of one delivery.
type DeliverArgs struct {
	DeliveryID string `json:"delivery_id"`
}

func (DeliverArgs) Kind() string { return "postcall.deliver" }

// InsertOpts: one live job per delivery. Finished jobs do not count, so a
// replay (`postcall redeliver`) of a finished delivery enqueues again.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue: QueueDeliveries,
		// The delivery row counts attempts (crm.MaxAttempts); River's count
		// only guards against a job that keeps crashing.
		MaxAttempts: crm.MaxAttempts + 5,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
			rivertype.JobStateRunning, rivertype.JobStateScheduled,
		}},
	}
}

// DeliverWorker works DeliverArgs. Retries follow the delivery's own
// schedule (Standard Webhooks' seconds, minutes, hours, with jitter and
// Retry-After) by snoozing, so River's attempt budget is never what stops a
// delivery.
type DeliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	DB         pipeline.DB
	Deliveries *pipeline.Deliveries
}

func (w *DeliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	a, err := w.Deliveries.Attempt(ctx, w.DB, job.Args.DeliveryID)
	if err == nil {
		err = w.record(ctx, job, a)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		// The call (and its deliveries) was hard-deleted meanwhile.
		return river.JobCancel(err)
	case err != nil:
		return err
	case !a.Final():
		return river.JobSnooze(a.RetryIn)
	}
	return nil
}

// record stores the attempt and, once the delivery is decided, completes
// the job in the same transaction.
func (w *DeliverWorker) record(ctx context.Context, job *river.Job[DeliverArgs], a *pipeline.Attempted) error {
	err := pgx.BeginFunc(ctx, w.DB, func(tx pgx.Tx) error {
		if err := lockAttempt(ctx, tx, job.JobRow); err != nil {
			return err
		}
		if err := w.Deliveries.Record(ctx, tx, a); err != nil {
			return err
		}
		if !a.Final() {
			return nil
		}
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return fmt.Errorf("complete job of %s: %w", a, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.Deliveries.Recorded(ctx, a)
	return nil
}
