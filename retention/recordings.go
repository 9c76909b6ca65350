package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/store"
)

// maxErrorText bounds the error stored per outbox key.
const maxErrorText = 300

// queueRecordings writes the recording keys of the batch's calls to the
// deletion outbox as one new outbox batch and enqueues its deletion job, in
// tx. It returns the outbox batch (0 when no call had a recording) and the
// number of keys.
func (s *Service) queueRecordings(ctx context.Context, tx pgx.Tx, runID int64, batch []candidate) (int64, int, error) {
	var keys []string
	var calls []uuid.UUID
	for _, c := range batch {
		if c.recordingKey != nil && *c.recordingKey != "" {
			keys = append(keys, *c.recordingKey)
			calls = append(calls, c.id)
		}
	}
	if len(keys) == 0 {
		return 0, 0, nil
	}
	if s.Queue == nil {
		// Without a job the keys would wait for the next run's requeue; a
		// wiring mistake must not look like a deletion.
		return 0, 0, errors.New("queue recording deletions: Service.Queue is not set")
	}
	var outbox int64
	if err := tx.QueryRow(ctx, `SELECT nextval('recording_deletion_batch_seq')`).Scan(&outbox); err != nil {
		return 0, 0, fmt.Errorf("queue recording deletions: %w", err)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO recording_deletions (batch, key, call_uuid, run_id)
		SELECT $1, u.key, u.call_uuid, $4 FROM unnest($2::text[], $3::uuid[]) AS u(key, call_uuid)`,
		outbox, keys, calls, runID)
	if err != nil {
		return 0, 0, fmt.Errorf("queue recording deletions: %w", err)
	}
	if err := s.Queue.EnqueueRecordingDeletions(ctx, tx, []int64{outbox}); err != nil {
		return 0, 0, fmt.Errorf("enqueue deletion of recording batch %d: %w", outbox, err)
	}
	return outbox, len(keys), nil
}

// DeleteRecordings deletes the recording objects of one outbox batch from
// the bucket. Each key the bucket confirms gone (a missing object counts)
// leaves the outbox and counts as deleted for the run that queued it, in one
// transaction; the others stay, with their attempt count and last error. It
// returns how many objects it deleted, and an error while any key of the
// batch is left, so that the caller tries again later. A batch no longer in
// the outbox is done: 0, nil.
func (s *Service) DeleteRecordings(ctx context.Context, batch int64) (int, error) {
	rows, err := s.DB.Query(ctx, `SELECT key FROM recording_deletions WHERE batch = $1 ORDER BY id`, batch)
	if err != nil {
		return 0, fmt.Errorf("read recording batch %d: %w", batch, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("read recording batch %d: %w", batch, err)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	if s.Recordings == nil {
		return 0, ErrNoRecordingStore
	}
	res, deleteErr := s.Recordings.Delete(ctx, keys)

	failedKeys := make([]string, 0, len(res.Failed))
	reasons := make([]string, 0, len(res.Failed))
	for key, err := range res.Failed {
		failedKeys = append(failedKeys, key)
		reasons = append(reasons, shortReason(err))
	}
	// What the bucket confirmed is recorded even when ctx has ended.
	recordCtx := context.WithoutCancel(ctx)
	err = pgx.BeginFunc(recordCtx, s.DB, func(tx pgx.Tx) error {
		if len(res.Deleted) > 0 {
			_, err := tx.Exec(recordCtx, `
				WITH gone AS (
					DELETE FROM recording_deletions WHERE batch = $1 AND key = ANY($2) RETURNING run_id
				), per_run AS (
					SELECT run_id, count(*) AS n FROM gone WHERE run_id IS NOT NULL GROUP BY run_id
				)
				UPDATE retention_runs r SET objects_deleted = r.objects_deleted + per_run.n
				FROM per_run WHERE r.id = per_run.run_id`, batch, res.Deleted)
			if err != nil {
				return fmt.Errorf("forget deleted recordings: %w", err)
			}
		}
		if len(failedKeys) > 0 {
			_, err := tx.Exec(recordCtx, `
				UPDATE recording_deletions d SET attempts = d.attempts + 1, last_error = u.reason
				FROM unnest($2::text[], $3::text[]) AS u(key, reason)
				WHERE d.batch = $1 AND d.key = u.key`, batch, failedKeys, reasons)
			if err != nil {
				return fmt.Errorf("note failed recording deletions: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("record deletion of recording batch %d: %w", batch, err)
	}
	s.logger().InfoContext(ctx, "recording objects deleted", slog.Int64("batch", batch),
		slog.Int("deleted", len(res.Deleted)), slog.Int("failed", len(failedKeys)))
	if deleteErr != nil {
		if ctx.Err() != nil {
			return len(res.Deleted), fmt.Errorf("delete recording batch %d: %w", batch, ctx.Err())
		}
		// The keys and their errors are in the outbox; the error that River
		// stores and logs names none.
		return len(res.Deleted), fmt.Errorf("delete recording batch %d: %d of %d objects not confirmed gone (recording_deletions.last_error says why)",
			batch, len(failedKeys), len(keys))
	}
	return len(res.Deleted), nil
}

// shortReason is a key's failure for the outbox: S3's code when it gave one.
func shortReason(err error) string {
	var ke *recording.KeyError
	if errors.As(err, &ke) {
		return ke.Code
	}
	msg := err.Error()
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText]
	}
	return msg
}

// RequeueRecordingDeletions enqueues a deletion job for every outbox batch
// still waiting, so that a key whose job gave up (River discarded it after
// its attempts) or never ran is retried until the bucket confirms. The
// job's uniqueness keeps this from doubling a job that is still alive. It
// returns the number of batches.
func (s *Service) RequeueRecordingDeletions(ctx context.Context) (int, error) {
	if s.Queue == nil {
		return 0, errors.New("requeue recording deletions: Service.Queue is not set")
	}
	var n int
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT batch FROM recording_deletions ORDER BY batch LIMIT 10000`)
		if err != nil {
			return err
		}
		batches, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(batches) == 0 {
			return err
		}
		n = len(batches)
		return s.Queue.EnqueueRecordingDeletions(ctx, tx, batches)
	})
	if err != nil {
		return 0, fmt.Errorf("requeue recording deletions: %w", err)
	}
	return n, nil
}

// requeueBeforeRun requeues waiting deletions at the start of a purge or
// hard delete, so every run also retries what earlier runs left. A failure
// is counted and logged, not fatal: the run's own work does not depend on
// it.
func (s *Service) requeueBeforeRun(ctx context.Context, r *run) {
	if r.dryRun || s.Queue == nil {
		return
	}
	n, err := s.RequeueRecordingDeletions(ctx)
	if err != nil {
		s.noteRetry(ctx, r)(err)
		s.logger().WarnContext(ctx, "requeue recording deletions", slog.Int64("run", r.id), slog.String("error", err.Error()))
		return
	}
	if n > 0 {
		s.logger().InfoContext(ctx, "recording deletions requeued", slog.Int64("run", r.id), slog.Int("batches", n))
	}
}

// PendingDeletions describes the recording objects not yet confirmed gone.
type PendingDeletions struct {
	// Objects is the number of keys in the outbox.
	Objects int
	// Failing counts keys at least one deletion attempt failed for.
	Failing int
	// Oldest is when the oldest key was queued; nil when there is none.
	Oldest *time.Time
}

// PendingRecordingDeletions reports the deletion outbox.
func PendingRecordingDeletions(ctx context.Context, db store.DBTX) (PendingDeletions, error) {
	var p PendingDeletions
	err := db.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE attempts > 0), min(created_at) FROM recording_deletions`).
		Scan(&p.Objects, &p.Failing, &p.Oldest)
	if err != nil {
		return p, fmt.Errorf("read recording deletion outbox: %w", err)
	}
	return p, nil
}
