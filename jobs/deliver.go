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
	err := w.Deliveries.Attempt(ctx, w.DB, job.Args.DeliveryID, func(ctx context.Context, tx pgx.Tx) error {
		_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
		return err
	})
	var later *pipeline.RetryLater
	switch {
	case errors.As(err, &later):
		return river.JobSnooze(later.After)
	case errors.Is(err, store.ErrNotFound):
		// The call (and its deliveries) was hard-deleted meanwhile.
		return river.JobCancel(err)
	}
	return err
}

// enqueueDeliveries inserts one job per delivery, in tx.
func enqueueDeliveries(ctx context.Context, client *river.Client[pgx.Tx], tx pgx.Tx, ids []string) error {
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: DeliverArgs{DeliveryID: id}}
	}
	if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue deliveries: %w", err)
	}
	return nil
}
