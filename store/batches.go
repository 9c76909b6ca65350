package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/analysis"
)

// BatchState is the step a provider batch is at, as stored in
// llm_batches.state.
type BatchState string

// Batch states, in order.
const (
	// BatchCollecting: the command is still adding runs.
	BatchCollecting BatchState = "collecting"
	// BatchReady: to upload.
	BatchReady BatchState = "ready"
	// BatchUploaded: its input file is uploaded, the batch not created.
	BatchUploaded BatchState = "uploaded"
	// BatchSubmitted: the provider has it.
	BatchSubmitted BatchState = "submitted"
	// BatchEnded: its results are dispatched to its runs.
	BatchEnded BatchState = "ended"
	// BatchDone: every run of it has finished.
	BatchDone BatchState = "done"
)

// BatchItemState is where one run of a batch is, as stored in
// llm_batch_items.state.
type BatchItemState string

// Batch item states.
const (
	ItemQueued   BatchItemState = "queued"
	ItemAnswered BatchItemState = "answered"
	ItemLive     BatchItemState = "live"
)

// LLMBatch is one provider batch of a bulk reanalysis.
type LLMBatch struct {
	ID              int64
	BulkID          int64
	State           BatchState
	Attempt         int
	InputFileID     *string
	ProviderBatchID *string
	// Status is the provider's (analysis.BatchStatus); nil before it has
	// one.
	Status                   *string
	Total, Completed, Failed int
	OutputFileID             *string
	ErrorFileID              *string
	Error                    *string
	// Requests are the lines of its input file; Answered, Errored,
	// Resubmitted and Live what became of its runs once it ended.
	Requests, Answered, Errored, Resubmitted, Live int
	// Items counts its runs (in any state).
	Items       int
	CreatedAt   time.Time
	SubmittedAt *time.Time
	EndedAt     *time.Time
}

const batchColumns = `b.id, b.bulk_id, b.state, b.attempt, b.input_file_id, b.provider_batch_id, b.status, b.total,
	b.completed, b.failed, b.output_file_id, b.error_file_id, b.error, b.requests, b.answered, b.errored,
	b.resubmitted, b.live, (SELECT count(*) FROM llm_batch_items i WHERE i.batch_id = b.id), b.created_at,
	b.submitted_at, b.ended_at`

func scanBatch(row pgx.Row) (*LLMBatch, error) {
	var b LLMBatch
	err := row.Scan(&b.ID, &b.BulkID, &b.State, &b.Attempt, &b.InputFileID, &b.ProviderBatchID, &b.Status, &b.Total,
		&b.Completed, &b.Failed, &b.OutputFileID, &b.ErrorFileID, &b.Error, &b.Requests, &b.Answered, &b.Errored,
		&b.Resubmitted, &b.Live, &b.Items, &b.CreatedAt, &b.SubmittedAt, &b.EndedAt)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// GetBatch returns one batch.
func GetBatch(ctx context.Context, db DBTX, id int64) (*LLMBatch, error) {
	b, err := scanBatch(db.QueryRow(ctx, `SELECT `+batchColumns+` FROM llm_batches b WHERE b.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("batch %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read batch %d: %w", id, err)
	}
	return b, nil
}

// BulkBatches returns the batches of a bulk reanalysis, oldest first.
func BulkBatches(ctx context.Context, db DBTX, bulkID int64) ([]*LLMBatch, error) {
	rows, err := db.Query(ctx, `SELECT `+batchColumns+` FROM llm_batches b WHERE b.bulk_id = $1 ORDER BY b.id`, bulkID)
	if err != nil {
		return nil, fmt.Errorf("list batches of bulk reanalysis %d: %w", bulkID, err)
	}
	batches, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*LLMBatch, error) { return scanBatch(row) })
	if err != nil {
		return nil, fmt.Errorf("list batches of bulk reanalysis %d: %w", bulkID, err)
	}
	return batches, nil
}

// AddToBatch adds runs to the bulk's collecting batch, creating it when
// there is none.
func AddToBatch(ctx context.Context, db DBTX, bulkID int64, runIDs []int64) error {
	if len(runIDs) == 0 {
		return nil
	}
	_, err := db.Exec(ctx, `
		WITH existing AS (
			SELECT id FROM llm_batches WHERE bulk_id = $1 AND state = 'collecting' ORDER BY id LIMIT 1
		), created AS (
			INSERT INTO llm_batches (bulk_id) SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM existing) RETURNING id
		)
		INSERT INTO llm_batch_items (run_id, batch_id)
		SELECT r, (SELECT id FROM existing UNION ALL SELECT id FROM created LIMIT 1) FROM unnest($2::bigint[]) AS r`,
		bulkID, runIDs)
	if err != nil {
		return fmt.Errorf("add %d runs to the batch of bulk reanalysis %d: %w", len(runIDs), bulkID, err)
	}
	return nil
}

// ReadyBatches marks the bulk's collecting batch ready to upload and returns
// the ids of its batches that wait for their job to start or resume them
// (ready, uploaded, submitted or ended).
func ReadyBatches(ctx context.Context, db DBTX, bulkID int64) ([]int64, error) {
	if _, err := db.Exec(ctx, `UPDATE llm_batches SET state = 'ready' WHERE bulk_id = $1 AND state = 'collecting'`, bulkID); err != nil {
		return nil, fmt.Errorf("close the batch of bulk reanalysis %d: %w", bulkID, err)
	}
	rows, err := db.Query(ctx, `SELECT id FROM llm_batches WHERE bulk_id = $1 AND state <> 'done' ORDER BY id`, bulkID)
	if err != nil {
		return nil, fmt.Errorf("list batches of bulk reanalysis %d: %w", bulkID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("list batches of bulk reanalysis %d: %w", bulkID, err)
	}
	return ids, nil
}

// QueuedBatchRuns returns up to limit queued runs of the batch after
// afterRunID, in run id order, each with its call.
func QueuedBatchRuns(ctx context.Context, db DBTX, batchID, afterRunID int64, limit int) ([]*Run, []*Call, error) {
	rows, err := db.Query(ctx, `
		SELECT `+qualified(callColumns, "c")+`, `+qualified(runColumns, "r")+`
		FROM llm_batch_items i JOIN analysis_runs r ON r.id = i.run_id JOIN calls c ON c.id = r.call_id
		WHERE i.batch_id = $1 AND i.state = 'queued' AND i.run_id > $2
		ORDER BY i.run_id LIMIT $3`, batchID, afterRunID, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("read the runs of batch %d: %w", batchID, err)
	}
	defer rows.Close()
	var (
		runs  []*Run
		calls []*Call
	)
	for rows.Next() {
		var run Run
		c, err := scanCall(rows, run.dest()...)
		if err != nil {
			return nil, nil, fmt.Errorf("read the runs of batch %d: %w", batchID, err)
		}
		runs, calls = append(runs, &run), append(calls, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read the runs of batch %d: %w", batchID, err)
	}
	return runs, calls, nil
}

// SetBatchUploaded records the batch's uploaded input file, the output
// budget each run's request was sent with (runIDs[i] with maxTokens[i]),
// and moves its queued runs after lastRunID (those the file had no room
// for) to a new ready batch, whose id it returns (0: none).
func SetBatchUploaded(ctx context.Context, db DBTX, batchID int64, fileID string, runIDs []int64, maxTokens []int64, lastRunID int64) (int64, error) {
	_, err := db.Exec(ctx, `
		WITH budgets AS (
			UPDATE llm_batch_items i SET max_tokens = u.max_tokens
			FROM unnest($3::bigint[], $4::int[]) AS u(run_id, max_tokens)
			WHERE i.run_id = u.run_id AND i.batch_id = $1
		)
		UPDATE llm_batches SET state = 'uploaded', input_file_id = $2, requests = $5 WHERE id = $1`,
		batchID, fileID, runIDs, maxTokens, len(runIDs))
	if err != nil {
		return 0, fmt.Errorf("record the input file of batch %d: %w", batchID, err)
	}
	var rest int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM llm_batch_items WHERE batch_id = $1 AND state = 'queued' AND run_id > $2`,
		batchID, lastRunID).Scan(&rest); err != nil {
		return 0, fmt.Errorf("count the runs left out of batch %d: %w", batchID, err)
	}
	if rest == 0 {
		return 0, nil
	}
	var next int64
	err = db.QueryRow(ctx, `
		WITH next AS (
			INSERT INTO llm_batches (bulk_id, state, attempt) SELECT bulk_id, 'ready', attempt FROM llm_batches WHERE id = $1
			RETURNING id
		), moved AS (
			UPDATE llm_batch_items SET batch_id = (SELECT id FROM next)
			WHERE batch_id = $1 AND state = 'queued' AND run_id > $2
		)
		SELECT id FROM next`, batchID, lastRunID).Scan(&next)
	if err != nil {
		return 0, fmt.Errorf("split batch %d: %w", batchID, err)
	}
	return next, nil
}

// SetBatchSubmitted records the provider's batch.
func SetBatchSubmitted(ctx context.Context, db DBTX, batchID int64, b *analysis.Batch) error {
	_, err := db.Exec(ctx, `UPDATE llm_batches SET state = 'submitted', provider_batch_id = $2, submitted_at = now() WHERE id = $1`,
		batchID, b.ID)
	if err != nil {
		return fmt.Errorf("record the provider batch of batch %d: %w", batchID, err)
	}
	return SetBatchStatus(ctx, db, batchID, b)
}

// SetBatchStatus records the provider's status, counts and files.
func SetBatchStatus(ctx context.Context, db DBTX, batchID int64, b *analysis.Batch) error {
	var reason *string
	if len(b.Errors) > 0 {
		reason = new(storableText(fmt.Sprint(b.Errors)))
	}
	_, err := db.Exec(ctx, `
		UPDATE llm_batches SET status = $2, total = $3, completed = $4, failed = $5, output_file_id = $6,
			error_file_id = $7, error = COALESCE($8, error)
		WHERE id = $1`, batchID, string(b.Status), b.Total, b.Completed, b.Failed, null(b.OutputFileID), null(b.ErrorFileID), reason)
	if err != nil {
		return fmt.Errorf("record the status of batch %d: %w", batchID, err)
	}
	return nil
}

// BatchItemAnswer is the provider's answer to one queued run of a batch.
type BatchItemAnswer struct {
	RunID  int64
	Answer *analysis.Response
}

// AnswerBatchItems stores the answers of queued runs of the batch and
// returns the runs answered; a run that is not queued in this batch (an
// answer seen before, or a custom_id that is not ours) is left as it is.
func AnswerBatchItems(ctx context.Context, db DBTX, batchID int64, answers []BatchItemAnswer) ([]BatchRun, error) {
	ids, docs := make([]int64, len(answers)), make([][]byte, len(answers))
	for i, a := range answers {
		b, err := json.Marshal(a.Answer)
		if err != nil {
			return nil, fmt.Errorf("encode the answer of run %d: %w", a.RunID, err)
		}
		ids[i], docs[i] = a.RunID, b
	}
	return updateBatchItems(ctx, db, `
		UPDATE llm_batch_items i SET state = 'answered', answer = u.answer
		FROM unnest($2::bigint[], $3::jsonb[]) AS u(run_id, answer)
		WHERE i.run_id = u.run_id AND i.batch_id = $1 AND i.state = 'queued'
		RETURNING i.run_id`, batchID, ids, docs)
}

// SendBatchItemsLive marks queued runs of the batch to be sent live, with
// the reason (errs[i] for runIDs[i]; nil: none), and returns the runs
// marked.
func SendBatchItemsLive(ctx context.Context, db DBTX, batchID int64, runIDs []int64, errs []*string) ([]BatchRun, error) {
	return updateBatchItems(ctx, db, `
		UPDATE llm_batch_items i SET state = 'live', error = u.error
		FROM unnest($2::bigint[], $3::text[]) AS u(run_id, error)
		WHERE i.run_id = u.run_id AND i.batch_id = $1 AND i.state = 'queued'
		RETURNING i.run_id`, batchID, runIDs, errs)
}

// QueuedBatchItems returns the runs of the batch still queued.
func QueuedBatchItems(ctx context.Context, db DBTX, batchID int64) ([]int64, error) {
	rows, err := db.Query(ctx, `SELECT run_id FROM llm_batch_items WHERE batch_id = $1 AND state = 'queued' ORDER BY run_id`, batchID)
	if err != nil {
		return nil, fmt.Errorf("list the queued runs of batch %d: %w", batchID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("list the queued runs of batch %d: %w", batchID, err)
	}
	return ids, nil
}

// ResubmitBatchItems moves the given queued runs of the batch to a new
// ready batch of the next attempt and returns its id.
func ResubmitBatchItems(ctx context.Context, db DBTX, batchID int64, runIDs []int64) (int64, error) {
	var next int64
	err := db.QueryRow(ctx, `
		WITH next AS (
			INSERT INTO llm_batches (bulk_id, state, attempt) SELECT bulk_id, 'ready', attempt + 1 FROM llm_batches WHERE id = $1
			RETURNING id
		), moved AS (
			UPDATE llm_batch_items SET batch_id = (SELECT id FROM next)
			WHERE batch_id = $1 AND state = 'queued' AND run_id = ANY($2)
		)
		SELECT id FROM next`, batchID, runIDs).Scan(&next)
	if err != nil {
		return 0, fmt.Errorf("resubmit %d runs of batch %d: %w", len(runIDs), batchID, err)
	}
	return next, nil
}

// BatchRun is a run of a batch, for its job.
type BatchRun struct {
	ID     int64
	CallID uuid.UUID
	Kind   string
}

func updateBatchItems(ctx context.Context, db DBTX, update string, batchID int64, args ...any) ([]BatchRun, error) {
	rows, err := db.Query(ctx, `
		WITH updated AS (`+update+`)
		SELECT r.id, r.call_id, r.kind FROM updated u JOIN analysis_runs r ON r.id = u.run_id ORDER BY r.id`,
		append([]any{batchID}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("update the runs of batch %d: %w", batchID, err)
	}
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (BatchRun, error) {
		var r BatchRun
		return r, row.Scan(&r.ID, &r.CallID, &r.Kind)
	})
	if err != nil {
		return nil, fmt.Errorf("update the runs of batch %d: %w", batchID, err)
	}
	return runs, nil
}

// BatchOutcome is what became of an ended batch's runs.
type BatchOutcome struct {
	// Answered got an answer; Errored an error line; Resubmitted went to a
	// new batch; Live are sent live.
	Answered, Errored, Resubmitted, Live int
}

// EndBatch records that the batch's results are dispatched.
func EndBatch(ctx context.Context, db DBTX, batchID int64, o BatchOutcome) error {
	_, err := db.Exec(ctx, `
		UPDATE llm_batches SET state = 'ended', ended_at = now(), answered = answered + $2, errored = errored + $3,
			resubmitted = resubmitted + $4, live = live + $5
		WHERE id = $1`, batchID, o.Answered, o.Errored, o.Resubmitted, o.Live)
	if err != nil {
		return fmt.Errorf("end batch %d: %w", batchID, err)
	}
	return nil
}

// CountBatchDispatch adds to the ended batch's counts while its results are
// dispatched, so that a dispatch interrupted and resumed counts each run
// once.
func CountBatchDispatch(ctx context.Context, db DBTX, batchID int64, o BatchOutcome) error {
	_, err := db.Exec(ctx, `
		UPDATE llm_batches SET answered = answered + $2, errored = errored + $3, resubmitted = resubmitted + $4,
			live = live + $5
		WHERE id = $1`, batchID, o.Answered, o.Errored, o.Resubmitted, o.Live)
	if err != nil {
		return fmt.Errorf("count the results of batch %d: %w", batchID, err)
	}
	return nil
}

// FinishBatchIfDone marks an ended batch done, and drops the answers it
// holds, when every run it answered or sent live has finished; it reports
// whether it did.
func FinishBatchIfDone(ctx context.Context, db DBTX, batchID int64) (bool, error) {
	tag, err := db.Exec(ctx, `
		WITH pending AS (
			SELECT 1 FROM llm_batch_items i JOIN analysis_runs r ON r.id = i.run_id
			WHERE i.batch_id = $1 AND r.status NOT IN ('succeeded', 'failed') LIMIT 1
		), cleared AS (
			UPDATE llm_batch_items SET answer = NULL
			WHERE batch_id = $1 AND answer IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pending)
		)
		UPDATE llm_batches SET state = 'done' WHERE id = $1 AND state = 'ended' AND NOT EXISTS (SELECT 1 FROM pending)`,
		batchID)
	if err != nil {
		return false, fmt.Errorf("finish batch %d: %w", batchID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// BatchAnswer is the Batch API's answer to a run's first request.
type BatchAnswer struct {
	analysis.Answered
	// Recorded says the batch request is already in llm_requests (an
	// earlier attempt of the run recorded it): it is not recorded again.
	Recorded bool
}

// GetBatchAnswer returns the answer the Batch API gave the run, or nil when
// it has none (a live run, or a batch run sent live).
func GetBatchAnswer(ctx context.Context, db DBTX, runID int64) (*BatchAnswer, error) {
	var (
		doc       []byte
		maxTokens *int
		a         BatchAnswer
	)
	err := db.QueryRow(ctx, `
		SELECT i.answer, i.max_tokens,
		       EXISTS (SELECT 1 FROM llm_requests q WHERE q.run_id = i.run_id AND q.service_tier = $2)
		FROM llm_batch_items i WHERE i.run_id = $1 AND i.state = 'answered' AND i.answer IS NOT NULL`,
		runID, analysis.TierBatch).Scan(&doc, &maxTokens, &a.Recorded)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the batch answer of run %d: %w", runID, err)
	}
	a.Response = &analysis.Response{}
	if err := json.Unmarshal(doc, a.Response); err != nil {
		return nil, fmt.Errorf("decode the batch answer of run %d: %w", runID, err)
	}
	if maxTokens != nil {
		a.MaxTokens = *maxTokens
	}
	return &a, nil
}

// FinishBulkIfBatchesDone marks a batch bulk reanalysis finished once every
// one of its batches is done.
func FinishBulkIfBatchesDone(ctx context.Context, db DBTX, bulkID int64) error {
	_, err := db.Exec(ctx, `
		UPDATE bulk_reanalyses SET finished_at = now()
		WHERE id = $1 AND finished_at IS NULL
		  AND NOT EXISTS (SELECT 1 FROM llm_batches WHERE bulk_id = $1 AND state <> 'done')`, bulkID)
	if err != nil {
		return fmt.Errorf("finish bulk reanalysis %d: %w", bulkID, err)
	}
	return nil
}
