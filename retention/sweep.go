package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postcall/postcall/internal/wait"
	"github.com/postcall/postcall/store"
)

// candidate is a call selected for the purge, the hard delete or an erasure,
// with what it still holds.
type candidate struct {
	id uuid.UUID
	// tid is the row's ctid when it was selected. A locked row keeps it
	// until the transaction that locked it updates the row, so the purge
	// finds its locked rows by tid (a TID scan) instead of probing the
	// primary key once per call.
	tid     pgtype.TID
	callID  string
	agentID string
	// at is the keyset time: ended_at (purge) or deleted_at (hard delete).
	at           time.Time
	recordingKey *string
	isPurged     bool
	// done is false while the call waits for runs (its purge supersedes
	// pending reanalyses: supersedeReanalyses).
	done bool
	// present names the personal data the call row still holds.
	present []string
}

// presentExpr lists, by name, the personal data a call row c still holds.
const presentExpr = `array_remove(ARRAY[
		CASE WHEN c.transcript IS NOT NULL THEN 'transcript' END,
		CASE WHEN c.phone_number IS NOT NULL OR c.phone_key IS NOT NULL THEN 'phone_number' END,
		CASE WHEN c.customer_name IS NOT NULL THEN 'customer_name' END,
		CASE WHEN c.customer_request IS NOT NULL THEN 'customer_request' END,
		CASE WHEN c.recording_key IS NOT NULL THEN 'recording' END,
		CASE WHEN c.contact_data IS NOT NULL THEN 'contact_data' END,
		CASE WHEN c.function_output IS NOT NULL THEN 'function_output' END,
		CASE WHEN c.call_summary IS NOT NULL THEN 'call_summary' END
	]::text[], NULL)
	|| ARRAY(SELECT 'extra.' || k FROM jsonb_object_keys(
	           CASE WHEN jsonb_typeof(c.extra) = 'object' THEN c.extra ELSE '{}' END) AS k ORDER BY k)`

// selectCandidates reads calls c as candidates; atColumn is the keyset time
// column, rest the WHERE ... ORDER BY ... LIMIT clause, lock the locking
// clause ("" for none).
func selectCandidates(ctx context.Context, db store.DBTX, atColumn, rest, lock string, args ...any) ([]candidate, error) {
	rows, err := db.Query(ctx, `
		SELECT c.id, c.ctid, c.call_id, c.agent_id, COALESCE(`+atColumn+`, c.ended_at), c.recording_key, c.is_purged, c.done, `+presentExpr+`
		FROM calls c `+rest+lock, args...)
	if err != nil {
		return nil, fmt.Errorf("select calls: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (candidate, error) {
		var c candidate
		err := row.Scan(&c.id, &c.tid, &c.callID, &c.agentID, &c.at, &c.recordingKey, &c.isPurged, &c.done, &c.present)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("select calls: %w", err)
	}
	return list, nil
}

func lockClause(lock bool, clause string) string {
	if lock {
		return clause
	}
	return ""
}

// keyset is a position in a sweep: the last call of the previous batch.
type keyset struct {
	at time.Time
	id uuid.UUID
}

// sweep is one selection of calls worked batch by batch.
type sweep struct {
	// selectBatch returns up to limit calls after the keyset position,
	// locked for the caller's transaction when lock is set.
	selectBatch func(ctx context.Context, db store.DBTX, after keyset, limit int, lock bool) ([]candidate, error)
	// apply does the batch's work in tx, the run's counts included, and
	// returns its recording outbox batch (0: none).
	apply func(ctx context.Context, tx pgx.Tx, batch []candidate) (int64, error)
	// dryCounts is what a dry run counts for the batch.
	dryCounts func(batch []candidate) counts
}

// runSweep works the sweep in batches until a batch comes back short, the
// budget runs out or an error stops it, sized and paced by the Service's
// pacer. The first batch always runs, so that a run sliced by its budget
// always progresses. It returns how many calls it worked.
func (s *Service) runSweep(ctx context.Context, r *run, sw sweep) (int, error) {
	var after keyset
	worked := 0
	pace := s.pacer()
	limit := pace.size
	for {
		var batch []candidate
		var outbox int64
		var err error
		start := time.Now()
		if r.dryRun {
			if batch, err = sw.selectBatch(ctx, s.DB, after, limit, false); err == nil {
				err = addCounts(ctx, s.DB, r.id, sw.dryCounts(batch))
			}
		} else {
			err = s.inBatchTx(ctx, r, func(tx pgx.Tx) error {
				var err error
				batch, outbox = nil, 0
				if batch, err = sw.selectBatch(ctx, tx, after, limit, true); err != nil || len(batch) == 0 {
					return err
				}
				outbox, err = sw.apply(ctx, tx, batch)
				return err
			})
		}
		if err != nil {
			return worked, err
		}
		worked += len(batch)
		if outbox != 0 {
			r.batches = append(r.batches, outbox)
		}
		if len(batch) < limit {
			return worked, nil
		}
		if r.outOfBudget() {
			r.partial = true
			return worked, nil
		}
		last := batch[len(batch)-1]
		after = keyset{at: last.at, id: last.id}
		var pause time.Duration
		limit, pause = pace.next(len(batch), time.Since(start))
		if err := wait.Sleep(ctx, pause); err != nil {
			return worked, err
		}
	}
}

func triggerOr(trigger, def string) string {
	if trigger == "" {
		return def
	}
	return trigger
}

func candidateIDs(batch []candidate) []uuid.UUID {
	ids := make([]uuid.UUID, len(batch))
	for i, c := range batch {
		ids[i] = c.id
	}
	return ids
}

func withRecording(batch []candidate) int {
	n := 0
	for _, c := range batch {
		if c.recordingKey != nil && *c.recordingKey != "" {
			n++
		}
	}
	return n
}
