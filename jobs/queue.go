package jobs

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// Queue inserts postcall's jobs in the caller's transaction through an
// insert-only River client of its own: it is the pipeline.Queue of the use
// cases and the retention.Queue of the retention runs. Workers insert their
// follow-up jobs through their own client instead.
type Queue struct {
	client *river.Client[pgx.Tx]
}

// NewQueue returns a Queue on pool; schema is River's schema ("" for the
// connection's search_path).
func NewQueue(pool *pgxpool.Pool, schema string, logger *slog.Logger) (*Queue, error) {
	if logger == nil {
		logger = slog.Default()
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: schema, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return &Queue{client: client}, nil
}

// Enqueue inserts one job per run and per delivery of j, in tx.
func (q *Queue) Enqueue(ctx context.Context, tx pgx.Tx, j pipeline.Jobs) error {
	return insertJobs(ctx, q.client, tx, j)
}

// EnqueueRecordingDeletions inserts one deletion job per outbox batch, in
// tx.
func (q *Queue) EnqueueRecordingDeletions(ctx context.Context, tx pgx.Tx, batches []int64) error {
	params := make([]river.InsertManyParams, len(batches))
	for i, b := range batches {
		params[i] = river.InsertManyParams{Args: DeleteRecordingsArgs{Batch: b}}
	}
	if _, err := q.client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue recording deletions: %w", err)
	}
	return nil
}

// insertJobs inserts j's runs (AnalysisArgs, QCArgs at j.RunPriority),
// deliveries (DeliverArgs) and batches (BatchArgs) in tx, in one statement.
func insertJobs(ctx context.Context, client *river.Client[pgx.Tx], tx pgx.Tx, j pipeline.Jobs) error {
	if j.Empty() {
		return nil
	}
	priority := int(cmp.Or(j.RunPriority, pipeline.PriorityIngest))
	params := make([]river.InsertManyParams, 0, len(j.Runs)+len(j.Deliveries)+len(j.Batches))
	for _, r := range j.Runs {
		var args river.JobArgs
		switch r.Kind {
		case store.KindAnalysis:
			args = AnalysisArgs{CallID: r.CallID, RunID: r.ID}
		case store.KindQC:
			args = QCArgs{CallID: r.CallID, RunID: r.ID}
		default:
			return fmt.Errorf("enqueue run %d: unknown kind %q", r.ID, r.Kind)
		}
		params = append(params, river.InsertManyParams{Args: args, InsertOpts: &river.InsertOpts{Priority: priority}})
	}
	for _, id := range j.Deliveries {
		params = append(params, river.InsertManyParams{Args: DeliverArgs{DeliveryID: id}})
	}
	for _, id := range j.Batches {
		params = append(params, river.InsertManyParams{Args: BatchArgs{BatchID: id}})
	}
	if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue %d runs, %d deliveries and %d batches: %w", len(j.Runs), len(j.Deliveries), len(j.Batches), err)
	}
	return nil
}
