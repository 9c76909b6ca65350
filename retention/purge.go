package retention

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/store"
)

// removedText replaces free-text error messages of purged calls (runs, LLM
// requests, deliveries): a provider's or a CRM's message may quote what it
// was sent.
const removedText = "[removed by purge]"

// PurgedBeforeRun is the error of a run whose call was purged before the run
// started (pipeline.Service.Execute sends nothing then). These are
// postcall's own words, quoting nothing, so the purge leaves them.
const PurgedBeforeRun = "the call was purged before this run: its transcript is gone"

// Purge removes the personal data of every call whose agent's
// purge_after_days (or PurgeAfterDays) has passed since it ended, except
// calls on legal hold, which it counts. A purged call keeps its identity,
// timings, ended reason, disposition and scores. It loses:
//
//   - on the call: transcript, phone_number and phone_key, customer_name,
//     customer_request, recording_key (the object is queued for deletion),
//     contact_data, function_output, every opaque key of the record
//     (tool_calls, events, transfer, unknown keys...) and call_summary;
//   - in every analysis run: each field that is pii: true in any version of
//     the agent's plan, and the summary field, set to null;
//   - in every QC run: each item's evidence (quotes of the call), set to
//     null;
//   - the free-text errors of its runs, LLM requests and deliveries.
//
// Each batch commits the calls' changes, their recording keys in the
// deletion outbox with the deletion job, one audit row per call and the
// run's counts together.
func (s *Service) Purge(ctx context.Context, opts RunOptions) (*Report, error) {
	policies, err := s.agentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	agents := make([]AgentReport, len(policies))
	for i, p := range policies {
		agents[i] = AgentReport{AgentID: p.id, AfterDays: p.purgeDays, FromPlan: p.purgeFromPlan,
			Cutoff: cutoff(now, p.purgeDays), OnHold: p.onHold}
	}
	r, err := s.startRun(ctx, KindPurge, triggerOr(opts.Trigger, TriggerCommand), opts, s.runPolicy(s.PurgeAfterDays, agents))
	if err != nil {
		return nil, err
	}
	s.requeueBeforeRun(ctx, r)
	var runErr error
	for i := range agents {
		if runErr = s.purgeAgent(ctx, r, &agents[i]); runErr != nil || r.partial {
			break
		}
	}
	rep, err := s.finishRun(ctx, r, runErr)
	if rep != nil {
		rep.Agents = agents
	}
	return rep, err
}

// purgeAgent purges one agent's due calls and counts those on hold.
func (s *Service) purgeAgent(ctx context.Context, r *run, a *AgentReport) error {
	if a.OnHold {
		return s.countHeld(ctx, r, a, `
			SELECT count(*) FROM calls WHERE agent_id = $1 AND NOT is_purged AND ended_at < $2`, a.AgentID, a.Cutoff)
	}
	done, err := s.runSweep(ctx, r, sweep{
		selectBatch: func(ctx context.Context, db store.DBTX, after keyset, limit int, lock bool) ([]candidate, error) {
			return selectCandidates(ctx, db, "c.ended_at", `
				WHERE c.agent_id = $1 AND NOT c.is_purged AND c.ended_at < $2 AND c.legal_hold_at IS NULL
				  AND (c.ended_at, c.id) > ($3, $4)
				ORDER BY c.ended_at, c.id LIMIT $5`, lockClause(lock, purgeLock), a.AgentID, a.Cutoff, after.at, after.id, limit)
		},
		apply: func(ctx context.Context, tx pgx.Tx, batch []candidate) (int64, error) {
			return s.purgeCalls(ctx, tx, r.id, ReasonPolicy, batch)
		},
		dryCounts: func(batch []candidate) counts {
			return counts{purged: len(batch), objectsQueued: withRecording(batch)}
		},
	})
	a.Done += done
	if err != nil {
		return fmt.Errorf("purge calls of agent %s: %w", a.AgentID, err)
	}
	if r.partial {
		return nil
	}
	return s.countHeld(ctx, r, a, `
		SELECT count(*) FROM calls
		WHERE agent_id = $1 AND NOT is_purged AND ended_at < $2 AND legal_hold_at IS NOT NULL`, a.AgentID, a.Cutoff)
}

// countHeld adds the due calls that query counts to the agent's and the
// run's skipped_hold.
func (s *Service) countHeld(ctx context.Context, r *run, a *AgentReport, query string, args ...any) error {
	var n int
	if err := s.DB.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		return fmt.Errorf("count held calls of agent %s: %w", a.AgentID, err)
	}
	if n == 0 {
		return nil
	}
	if err := addCounts(ctx, s.DB, r.id, counts{skippedHold: n}); err != nil {
		return err
	}
	a.SkippedHold += n
	return nil
}

// purgeLock locks a call for its purge. NO KEY UPDATE, because the purge
// changes no key: it does not block a concurrent insert that merely
// references the call (a delivery attempt, an LLM request), yet it waits for
// a finalization, which locks the call FOR UPDATE.
const purgeLock = " FOR NO KEY UPDATE OF c"

// purgeCalls purges the batch, locked by tx, for run runID (whose counts it
// adds to) and returns the outbox batch of its recordings (0: none).
func (s *Service) purgeCalls(ctx context.Context, tx pgx.Tx, runID int64, reason string, batch []candidate) (int64, error) {
	ids := candidateIDs(batch)
	now := s.now()
	_, err := tx.Exec(ctx, `
		UPDATE calls SET transcript = NULL, phone_number = NULL, phone_key = NULL, customer_name = NULL,
			customer_request = NULL, recording_key = NULL, contact_data = NULL, function_output = NULL,
			extra = '{}', call_summary = NULL, is_purged = true, purged_at = $2, updated_at = $2
		WHERE id = ANY($1)`, ids, now)
	if err != nil {
		return 0, fmt.Errorf("purge %d calls: %w", len(ids), err)
	}
	removed := make(map[uuid.UUID][]string, len(batch))
	for _, c := range batch {
		removed[c.id] = append(removed[c.id], c.present...)
	}
	byAgent := map[string][]uuid.UUID{}
	for _, c := range batch {
		byAgent[c.agentID] = append(byAgent[c.agentID], c.id)
	}
	for _, agentID := range sortedKeys(byAgent) {
		if err := redactRuns(ctx, tx, agentID, byAgent[agentID], removed); err != nil {
			return 0, err
		}
	}
	if err := redactDeliveries(ctx, tx, ids, removed); err != nil {
		return 0, err
	}
	batchID, queued, err := s.queueRecordings(ctx, tx, runID, batch)
	if err != nil {
		return 0, err
	}
	lists := make([][]string, len(batch))
	for i, c := range batch {
		lists[i] = removed[c.id]
	}
	if err := insertAudit(ctx, tx, &runID, ActionPurge, reason, batch, lists); err != nil {
		return 0, err
	}
	if err := addCounts(ctx, tx, runID, counts{purged: len(batch), objectsQueued: queued}); err != nil {
		return 0, err
	}
	return batchID, nil
}

// redactRuns purges the analysis and QC runs and the LLM requests of calls
// of one agent, and adds what it removed to removed.
func redactRuns(ctx context.Context, db store.DBTX, agentID string, callIDs []uuid.UUID, removed map[uuid.UUID][]string) error {
	fields, err := redactedFields(ctx, db, agentID)
	if err != nil {
		return err
	}
	if len(fields) > 0 {
		// Overwriting the fields with one constant object of nulls (jsonb
		// ||) costs a fraction of rebuilding every output key by key.
		nulls := make(map[string]any, len(fields))
		for _, f := range fields {
			nulls[f] = nil
		}
		rows, err := db.Query(ctx, `
			UPDATE analysis_runs r SET output = r.output || $3::jsonb
			FROM (SELECT r.id, ARRAY(SELECT k FROM unnest($2::text[]) AS k
			                         WHERE r.output->k IS NOT NULL AND r.output->k <> 'null'::jsonb ORDER BY k) AS keys
			      FROM analysis_runs r
			      WHERE r.call_id = ANY($1) AND r.kind = 'analysis' AND jsonb_typeof(r.output) = 'object'
			        AND r.output ?| $2::text[]) AS old
			WHERE r.id = old.id AND cardinality(old.keys) > 0
			RETURNING r.call_id, old.keys`, callIDs, fields, nulls)
		if err != nil {
			return fmt.Errorf("purge analysis fields of agent %s: %w", agentID, err)
		}
		err = forEachRow(rows, func(row pgx.CollectableRow) error {
			var id uuid.UUID
			var keys []string
			if err := row.Scan(&id, &keys); err != nil {
				return err
			}
			for _, k := range keys {
				removed[id] = appendOnce(removed[id], "analysis."+k)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("purge analysis fields of agent %s: %w", agentID, err)
		}
	}
	for _, step := range []struct{ name, sql string }{
		{"qc.evidence", `
			UPDATE analysis_runs r
			SET output = (SELECT COALESCE(jsonb_agg(CASE WHEN jsonb_typeof(t.e) = 'object' AND t.e ? 'evidence'
			                                             THEN jsonb_set(t.e, '{evidence}', 'null') ELSE t.e END
			                                        ORDER BY t.n), '[]')
			              FROM jsonb_array_elements(r.output) WITH ORDINALITY AS t(e, n))
			WHERE r.call_id = ANY($1) AND r.kind = 'qc' AND jsonb_typeof(r.output) = 'array'
			  AND EXISTS (SELECT 1 FROM jsonb_array_elements(r.output) AS t(e)
			              WHERE jsonb_typeof(t.e) = 'object' AND t.e->'evidence' <> 'null'::jsonb)
			RETURNING r.call_id`},
		{"run_errors", `
			UPDATE analysis_runs SET error = $2
			WHERE call_id = ANY($1) AND error IS NOT NULL AND error <> $2 AND error <> $3
			RETURNING call_id`},
		{"llm_request_errors", `
			UPDATE llm_requests SET error = $2 WHERE call_id = ANY($1) AND error IS NOT NULL AND error <> $2
			RETURNING call_id`},
	} {
		args := []any{callIDs}
		switch step.name {
		case "run_errors":
			args = append(args, removedText, PurgedBeforeRun)
		case "llm_request_errors":
			args = append(args, removedText)
		}
		if err := collectRemoved(ctx, db, step.name, step.sql, args, removed); err != nil {
			return err
		}
	}
	return nil
}

// redactDeliveries replaces the error texts of the calls' deliveries and
// delivery attempts. external_id is kept: it is the receiving CRM's own id of
// what postcall created there, which is how the data is found and erased in
// that CRM too.
func redactDeliveries(ctx context.Context, db store.DBTX, callIDs []uuid.UUID, removed map[uuid.UUID][]string) error {
	for _, query := range []string{
		`UPDATE deliveries SET last_error = $2 WHERE call_id = ANY($1) AND last_error IS NOT NULL AND last_error <> $2
		 RETURNING call_id`,
		`UPDATE delivery_attempts SET error = $2 WHERE call_id = ANY($1) AND error IS NOT NULL AND error <> $2
		 RETURNING call_id`,
	} {
		if err := collectRemoved(ctx, db, "delivery_errors", query, []any{callIDs, removedText}, removed); err != nil {
			return err
		}
	}
	return nil
}

// collectRemoved runs an UPDATE ... RETURNING call_id and notes name as
// removed from each call returned.
func collectRemoved(ctx context.Context, db store.DBTX, name, query string, args []any, removed map[uuid.UUID][]string) error {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("purge %s: %w", name, err)
	}
	err = forEachRow(rows, func(row pgx.CollectableRow) error {
		var id uuid.UUID
		if err := row.Scan(&id); err != nil {
			return err
		}
		removed[id] = appendOnce(removed[id], name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("purge %s: %w", name, err)
	}
	return nil
}

// RedactLateResult purges what runs of a purged call stored after the
// purge: an analysis or QC run that was already waiting for the model when
// the call was purged stores its output (and any error) afterwards.
// pipeline.Service calls it in the transaction that stores a run's result,
// after locking the call, so the call's personal data never comes back. It
// writes an audit row (reason late_result) when it removed anything.
func RedactLateResult(ctx context.Context, tx store.DBTX, c *store.Call) error {
	removed := map[uuid.UUID][]string{}
	if err := redactRuns(ctx, tx, c.Record.AgentID, []uuid.UUID{c.ID}, removed); err != nil {
		return fmt.Errorf("purge late result of call %s: %w", c.ID, err)
	}
	if len(removed[c.ID]) == 0 {
		return nil
	}
	cand := candidate{id: c.ID, callID: c.Record.CallID, agentID: c.Record.AgentID}
	if err := insertAudit(ctx, tx, nil, ActionPurge, ReasonLateResult, []candidate{cand}, [][]string{removed[c.ID]}); err != nil {
		return fmt.Errorf("purge late result of call %s: %w", c.ID, err)
	}
	return nil
}
