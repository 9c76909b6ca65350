package retention

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// supersedeReanalysesSQL runs in a purge's batch transaction, after the
// batch statement, on the batch's calls ($1) that are not done: their
// reanalysis runs that have not finished can never run (the transcript is
// gone), so they are marked failed with PurgedBeforeRun ($2) and each call
// goes back to the results it had: for each kind whose current run was
// superseded, the newest finished run of that kind, else the call's
// ingest-time run of that kind (still to run, or failed), else none (the
// call's outcome never depended on that kind, e.g. an auto disposition).
// A call whose current runs have then all finished is done again, failed if
// one of them failed; its disposition, success and scores were never
// changed by the reanalysis, so they are what it keeps. Ingest-time runs are
// left to the worker: one that already talks to the model stores its result,
// purged (RedactLateResult), and one that starts later fails with
// PurgedBeforeRun. The statement's snapshot is taken after the batch's
// locks, so it sees every reanalysis committed before them; a later one is
// refused (the call is purged).
const supersedeReanalysesSQL = `
	WITH superseded AS (
		UPDATE analysis_runs r SET status = 'failed', error = $2, finished_at = now()
		FROM calls c
		WHERE c.id = ANY($1) AND NOT c.done AND r.call_id = c.id
		  AND r.trigger = 'reanalyze' AND r.status NOT IN ('succeeded', 'failed')
		RETURNING r.id, r.call_id
	),
	restored AS (
		SELECT c.id,
			CASE WHEN c.analysis_run_id IN (SELECT id FROM superseded) THEN (
				SELECT r.id FROM analysis_runs r
				WHERE r.call_id = c.id AND r.kind = 'analysis' AND (r.status IN ('succeeded', 'failed') OR r.trigger = 'ingest')
				ORDER BY r.status IN ('succeeded', 'failed') DESC, r.id DESC LIMIT 1)
			ELSE c.analysis_run_id END AS analysis_run_id,
			CASE WHEN c.qc_run_id IN (SELECT id FROM superseded) THEN (
				SELECT r.id FROM analysis_runs r
				WHERE r.call_id = c.id AND r.kind = 'qc' AND (r.status IN ('succeeded', 'failed') OR r.trigger = 'ingest')
				ORDER BY r.status IN ('succeeded', 'failed') DESC, r.id DESC LIMIT 1)
			ELSE c.qc_run_id END AS qc_run_id
		FROM calls c
		WHERE c.id IN (SELECT call_id FROM superseded)
	),
	current AS (
		SELECT s.id, s.analysis_run_id, s.qc_run_id,
			bool_and(r.status IN ('succeeded', 'failed')) FILTER (WHERE r.id IS NOT NULL) AS finished,
			bool_or(r.status = 'failed') AS failed,
			max(r.plan_version) AS plan_version
		FROM restored s LEFT JOIN analysis_runs r ON r.id IN (s.analysis_run_id, s.qc_run_id)
		GROUP BY s.id, s.analysis_run_id, s.qc_run_id
	)
	UPDATE calls c SET analysis_run_id = cur.analysis_run_id, qc_run_id = cur.qc_run_id,
		plan_version = COALESCE(cur.plan_version, c.plan_version),
		done = COALESCE(cur.finished, true),
		state = CASE WHEN NOT COALESCE(cur.finished, true) THEN c.state
		             WHEN COALESCE(cur.failed, false) THEN 'failed' ELSE 'done' END
	FROM current cur WHERE c.id = cur.id`

// supersedeReanalyses applies supersedeReanalysesSQL to the calls of the
// batch (locked by tx) that are not done; most batches have none.
func supersedeReanalyses(ctx context.Context, tx pgx.Tx, batch []candidate) error {
	var ids []uuid.UUID
	for _, c := range batch {
		if !c.done {
			ids = append(ids, c.id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, supersedeReanalysesSQL, ids, PurgedBeforeRun); err != nil {
		return fmt.Errorf("supersede pending reanalyses of %d purged calls: %w", len(ids), err)
	}
	return nil
}
