package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Bulk is one bulk reanalysis: every live call of an agent in a time range,
// enqueued in id order so that an interrupted run resumes after its cursor.
type Bulk struct {
	ID      int64
	AgentID string
	Since   *time.Time
	Until   *time.Time
	Kinds   string
	// Batch says its runs go through the Batch API.
	Batch    bool
	CursorID *uuid.UUID
	Enqueued int
	Skipped  int
	Total    int
}

// OpenBulk resumes the unfinished bulk run with the same parameters, or
// starts a new one counting its calls. It reports whether it resumed.
func OpenBulk(ctx context.Context, db DBTX, agentID string, since, until *time.Time, kinds string, batch bool) (*Bulk, bool, error) {
	b := &Bulk{AgentID: agentID, Since: since, Until: until, Kinds: kinds, Batch: batch}
	err := db.QueryRow(ctx, `
		SELECT id, cursor_id, enqueued, skipped, total FROM bulk_reanalyses
		WHERE agent_id = $1 AND since IS NOT DISTINCT FROM $2 AND until IS NOT DISTINCT FROM $3 AND kinds = $4
		  AND batch = $5 AND finished_at IS NULL
		ORDER BY id DESC LIMIT 1`, agentID, since, until, kinds, batch).Scan(&b.ID, &b.CursorID, &b.Enqueued, &b.Skipped, &b.Total)
	if err == nil {
		return b, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fmt.Errorf("find bulk reanalysis of %s: %w", agentID, err)
	}
	err = db.QueryRow(ctx, `
		WITH n AS (SELECT count(*) AS total FROM calls
		           WHERE agent_id = $1 AND NOT is_purged AND deleted_at IS NULL
		             AND ($2::timestamptz IS NULL OR ended_at >= $2) AND ($3::timestamptz IS NULL OR ended_at < $3))
		INSERT INTO bulk_reanalyses (agent_id, since, until, kinds, batch, total)
		SELECT $1, $2, $3, $4, $5, n.total FROM n
		RETURNING id, total`, agentID, since, until, kinds, batch).Scan(&b.ID, &b.Total)
	if err != nil {
		return nil, false, fmt.Errorf("start bulk reanalysis of %s: %w", agentID, err)
	}
	return b, false, nil
}

// bulkNextWhere selects up to $5 live calls of agent $1 that ended in
// [$2, $3) after the cursor $4, in id order.
const bulkNextWhere = `
	WHERE agent_id = $1 AND NOT is_purged AND deleted_at IS NULL
	  AND ($2::timestamptz IS NULL OR ended_at >= $2) AND ($3::timestamptz IS NULL OR ended_at < $3)
	  AND ($4::uuid IS NULL OR id > $4)
	ORDER BY id LIMIT $5`

// BulkNext returns up to limit calls after the bulk's cursor, in id order.
func BulkNext(ctx context.Context, db DBTX, b *Bulk, limit int) ([]uuid.UUID, error) {
	rows, err := db.Query(ctx, `SELECT id FROM calls`+bulkNextWhere, b.AgentID, b.Since, b.Until, b.CursorID, limit)
	if err != nil {
		return nil, fmt.Errorf("next calls of bulk reanalysis %d: %w", b.ID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("next calls of bulk reanalysis %d: %w", b.ID, err)
	}
	return ids, nil
}

// AdvanceBulk moves the bulk's cursor past callID, counting it as enqueued
// or skipped, and tags the runs it enqueued.
func AdvanceBulk(ctx context.Context, db DBTX, b *Bulk, callID uuid.UUID, runIDs []int64) error {
	enqueued, skipped := 0, 0
	if len(runIDs) > 0 {
		enqueued = 1
	} else {
		skipped = 1
	}
	_, err := db.Exec(ctx, `
		UPDATE bulk_reanalyses SET cursor_id = $2, enqueued = enqueued + $3, skipped = skipped + $4 WHERE id = $1`,
		b.ID, callID, enqueued, skipped)
	if err != nil {
		return fmt.Errorf("advance bulk reanalysis %d: %w", b.ID, err)
	}
	if len(runIDs) > 0 {
		if _, err := db.Exec(ctx, `UPDATE analysis_runs SET bulk_id = $1 WHERE id = ANY($2)`, b.ID, runIDs); err != nil {
			return fmt.Errorf("tag runs of bulk reanalysis %d: %w", b.ID, err)
		}
	}
	b.CursorID = &callID
	b.Enqueued += enqueued
	b.Skipped += skipped
	return nil
}

// FinishBulk marks the bulk run as having enqueued everything.
func FinishBulk(ctx context.Context, db DBTX, b *Bulk) error {
	if _, err := db.Exec(ctx, `UPDATE bulk_reanalyses SET finished_at = now() WHERE id = $1`, b.ID); err != nil {
		return fmt.Errorf("finish bulk reanalysis %d: %w", b.ID, err)
	}
	return nil
}

// BulkProgress counts the bulk's runs that have finished and those still
// pending.
func BulkProgress(ctx context.Context, db DBTX, bulkID int64) (finished, pending int, err error) {
	err = db.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE status IN ('succeeded', 'failed')),
		       count(*) FILTER (WHERE status NOT IN ('succeeded', 'failed'))
		FROM analysis_runs WHERE bulk_id = $1`, bulkID).Scan(&finished, &pending)
	if err != nil {
		return 0, 0, fmt.Errorf("progress of bulk reanalysis %d: %w", bulkID, err)
	}
	return finished, pending, nil
}

// BulkFailures counts the bulk run's runs that failed.
func BulkFailures(ctx context.Context, db DBTX, bulkID int64) (int, error) {
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM analysis_runs WHERE bulk_id = $1 AND status = 'failed'`, bulkID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count failed runs of bulk reanalysis %d: %w", bulkID, err)
	}
	return n, nil
}
