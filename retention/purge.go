package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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
//   - in every analysis run with evidence: each field's quote, set to null
//     (quotes are transcript text, of pii fields or not), and the values
//     analysis.evidence require withheld; turn and verified stay;
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
// a finalization, which locks the call the same way (store.LockCall).
const purgeLock = " FOR NO KEY UPDATE OF c"

// purgeCalls purges the batch, locked by tx, for run runID (whose counts it
// adds to) and returns the outbox batch of its recordings (0: none).
//
// The batch's rows were locked by the statement that selected them, so this
// one statement, whose snapshot is taken after those locks, sees every
// result a concurrent finalization committed before them; a finalization
// that comes later waits for the purge and finds the call purged
// (RedactLateResult). One statement per batch instead of one per table and
// step keeps the round trips per call near zero.
func (s *Service) purgeCalls(ctx context.Context, tx pgx.Tx, runID int64, reason string, batch []candidate) (int64, error) {
	if withRecording(batch) > 0 && s.Queue == nil {
		// Without a job the keys would wait for the next run's requeue; a
		// wiring mistake must not look like a deletion.
		return 0, errors.New("queue recording deletions: Service.Queue is not set")
	}
	u, err := newBatchArgs(ctx, tx, batch)
	if err != nil {
		return 0, err
	}
	var outbox *int64
	var purged int
	err = tx.QueryRow(ctx, purgeBatchSQL, u.ids, u.callIDs, u.agentIDs, u.recordingKeys, u.present, u.fields,
		removedText, PurgedBeforeRun, runID, reason, s.now(), u.tids).Scan(&outbox, &purged)
	if err != nil {
		return 0, fmt.Errorf("purge %d calls: %w", len(batch), err)
	}
	if purged != len(batch) {
		// A locked row keeps its tid, so this is a bug: the transaction
		// rolls back rather than audit a purge that did not happen.
		return 0, fmt.Errorf("purge %d calls: %d rows matched their tids", len(batch), purged)
	}
	if err := supersedeReanalyses(ctx, tx, batch); err != nil {
		return 0, err
	}
	if outbox == nil {
		return 0, nil
	}
	if err := s.Queue.EnqueueRecordingDeletions(ctx, tx, []int64{*outbox}); err != nil {
		return 0, fmt.Errorf("enqueue deletion of recording batch %d: %w", *outbox, err)
	}
	return *outbox, nil
}

// batchArgs are a batch's calls as the columns of the purge statements' u.
type batchArgs struct {
	ids           []uuid.UUID
	tids          []pgtype.TID
	callIDs       []string
	agentIDs      []string
	recordingKeys []*string
	// present is each call's candidate.present as a JSON array: an extra
	// key may hold any character.
	present []string
	// fields maps each agent of the batch to its redacted analysis fields
	// (redactedFields), as a JSON object.
	fields []byte
}

func newBatchArgs(ctx context.Context, db store.DBTX, batch []candidate) (*batchArgs, error) {
	n := len(batch)
	a := &batchArgs{
		ids: make([]uuid.UUID, n), tids: make([]pgtype.TID, n), callIDs: make([]string, n), agentIDs: make([]string, n),
		recordingKeys: make([]*string, n), present: make([]string, n),
	}
	fields := map[string][]string{}
	for i, c := range batch {
		a.ids[i], a.tids[i], a.callIDs[i], a.agentIDs[i], a.recordingKeys[i] = c.id, c.tid, c.callID, c.agentID, c.recordingKey
		list, err := json.Marshal(append([]string{}, c.present...))
		if err != nil {
			return nil, fmt.Errorf("encode what call %s holds: %w", c.id, err)
		}
		a.present[i] = string(list)
		if _, ok := fields[c.agentID]; ok {
			continue
		}
		f, err := redactedFields(ctx, db, c.agentID)
		if err != nil {
			return nil, err
		}
		fields[c.agentID] = append([]string{}, f...) // [], not null, for an agent without any
	}
	var err error
	if a.fields, err = json.Marshal(fields); err != nil {
		return nil, fmt.Errorf("encode redacted fields: %w", err)
	}
	return a, nil
}

// The purge statements are built from these common table expressions. u
// holds the calls ($1 id, $2 call_id, $3 agent_id, $4 recording_key, $5
// what the call row holds, as a JSON array), f each agent's redacted fields
// ($6, a JSON object of arrays) with the object of nulls that overwrites
// them, $7 is removedText and $8 PurgedBeforeRun.
const (
	purgeUnitsCTE = `
	u AS (
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
			AS u(id, call_id, agent_id, recording_key, present)
	),
	f AS (
		SELECT e.key AS agent_id, ARRAY(SELECT jsonb_array_elements_text(e.value)) AS fields,
			(SELECT COALESCE(jsonb_object_agg(n, NULL), '{}') FROM jsonb_array_elements_text(e.value) AS n) AS nulls
		FROM jsonb_each($6::jsonb) AS e
	)`

	// purgeRunsCTE purges the calls' analysis and QC runs: in analysis
	// outputs every redacted field that holds a value (overwritten with
	// one constant object of nulls, jsonb ||, a fraction of the cost of
	// rebuilding the object key by key), in QC outputs each item's
	// evidence, and the runs' free-text errors. What a run holds is read
	// from the statement's snapshot, what is written from the row itself,
	// so that a run changed since (a concurrent update waits for the row
	// lock, then the SET sees its version) is never set back.
	purgeRunsCTE = `
	run_names AS (
		SELECT * FROM (
			SELECT r.id, r.call_id, COALESCE(f.nulls, '{}') AS nulls,
				CASE WHEN r.kind = 'analysis' AND jsonb_typeof(r.output) = 'object' AND r.output ?| f.fields
				     THEN ARRAY(SELECT k FROM unnest(f.fields) AS k WHERE r.output->k <> 'null'::jsonb ORDER BY k)
				     ELSE '{}' END AS fields,
				r.kind = 'qc' AND jsonb_typeof(r.output) = 'array'
				  AND EXISTS (SELECT 1 FROM jsonb_array_elements(r.output) AS t(e)
				              WHERE jsonb_typeof(t.e) = 'object' AND t.e->'evidence' <> 'null'::jsonb) AS evidence,
				COALESCE(jsonb_typeof(r.evidence) = 'object'
				  AND EXISTS (SELECT 1 FROM jsonb_each(r.evidence) AS q(k, v)
				              WHERE jsonb_typeof(q.v) = 'object' AND (q.v->'quote' <> 'null'::jsonb OR q.v ? 'withheld')),
				  false) AS quotes,
				COALESCE(r.error <> $7 AND r.error <> $8, false) AS error
			FROM u LEFT JOIN f ON f.agent_id = u.agent_id
			-- OFFSET 0 keeps this a lookup of each call's runs by index,
			-- which a join might plan as a scan of every run.
			CROSS JOIN LATERAL (SELECT r.id, r.call_id, r.kind, r.output, r.evidence, r.error FROM analysis_runs r
			                    WHERE r.call_id = u.id OFFSET 0) AS r
			-- OFFSET 0: each column is computed once per run, not once per
			-- reference below.
			OFFSET 0) AS n
		WHERE cardinality(n.fields) > 0 OR n.evidence OR n.quotes OR n.error
	),
	runs AS (
		UPDATE analysis_runs r SET
			output = CASE
				WHEN cardinality(n.fields) > 0 THEN r.output || n.nulls
				WHEN n.evidence THEN (
					SELECT COALESCE(jsonb_agg(CASE WHEN jsonb_typeof(t.e) = 'object' AND t.e ? 'evidence'
					                               THEN jsonb_set(t.e, '{evidence}', 'null') ELSE t.e END
					                          ORDER BY t.n), '[]')
					FROM jsonb_array_elements(r.output) WITH ORDINALITY AS t(e, n))
				ELSE r.output END,
			evidence = CASE WHEN n.quotes THEN (
					SELECT jsonb_object_agg(q.k, CASE WHEN jsonb_typeof(q.v) = 'object'
					                                  THEN (q.v - 'withheld') || '{"quote": null}' ELSE q.v END)
					FROM jsonb_each(r.evidence) AS q(k, v))
				ELSE r.evidence END,
			error = CASE WHEN n.error THEN $7 ELSE r.error END
		FROM run_names n WHERE r.id = n.id
		RETURNING n.call_id, n.fields, n.evidence, n.quotes, n.error
	),
	llm AS (
		UPDATE llm_requests SET error = $7 WHERE call_id = ANY($1) AND error IS NOT NULL AND error <> $7
		RETURNING call_id
	)`
)

// removedCTE names what runs and llm removed, per call: analysis fields,
// then the evidence and the errors; extra adds more (call_id, name, rank)
// rows to the union.
func removedCTE(extra string) string {
	return `
	removed AS (
		SELECT call_id, array_agg(name ORDER BY rank, name) AS names
		FROM (SELECT DISTINCT call_id, name, rank FROM (
			SELECT call_id, 'analysis.' || k AS name, 0 AS rank FROM runs, unnest(runs.fields) AS k
			UNION ALL SELECT call_id, 'analysis.evidence', 1 FROM runs WHERE quotes
			UNION ALL SELECT call_id, 'qc.evidence', 1 FROM runs WHERE evidence
			UNION ALL SELECT call_id, 'run_errors', 2 FROM runs WHERE error
			UNION ALL SELECT call_id, 'llm_request_errors', 3 FROM llm` + extra + `
		) AS all_names) AS d
		GROUP BY call_id
	)`
}

// purgeBatchSQL purges a batch of calls (see purgeCalls) with its runs, LLM
// requests, deliveries and delivery attempts, queues the recording keys as
// one new outbox batch, writes one audit row per call ($9 the run, $10 the
// reason) and adds the batch to the run's counts. $11 is the purge time, $12
// the calls' tids (candidate.tid). It
// returns the outbox batch (NULL: no recording) and the number of calls it
// purged.
var purgeBatchSQL = `WITH` + purgeUnitsCTE + `,` + purgeRunsCTE + `,
	deliveries_upd AS (
		UPDATE deliveries SET last_error = $7
		WHERE call_id = ANY($1) AND last_error IS NOT NULL AND last_error <> $7
		RETURNING call_id
	),
	attempts_upd AS (
		UPDATE delivery_attempts SET error = $7 WHERE call_id = ANY($1) AND error IS NOT NULL AND error <> $7
		RETURNING call_id
	),` + removedCTE(`
			UNION ALL SELECT call_id, 'delivery_errors', 4 FROM deliveries_upd
			UNION ALL SELECT call_id, 'delivery_errors', 4 FROM attempts_upd`) + `,
	calls_upd AS (
		UPDATE calls SET transcript = NULL, phone_number = NULL, phone_key = NULL, customer_name = NULL,
			customer_request = NULL, recording_key = NULL, contact_data = NULL, function_output = NULL,
			extra = '{}', call_summary = NULL, is_purged = true, purged_at = $11, updated_at = $11
		WHERE ctid = ANY($12::tid[]) AND id = ANY($1)
		RETURNING 1
	),
	outbox AS (
		SELECT nextval('recording_deletion_batch_seq') AS batch WHERE EXISTS (SELECT 1 FROM u WHERE u.recording_key <> '')
	),
	queued AS (
		INSERT INTO recording_deletions (batch, key, call_uuid, run_id)
		SELECT outbox.batch, u.recording_key, u.id, $9 FROM u, outbox WHERE u.recording_key <> ''
		RETURNING 1
	),
	audit AS (
		INSERT INTO retention_audit (run_id, action, reason, call_uuid, call_id, agent_id, removed)
		SELECT $9, '` + string(ActionPurge) + `', $10, u.id, u.call_id, u.agent_id,
			ARRAY(SELECT jsonb_array_elements_text(u.present::jsonb)) || COALESCE(removed.names, '{}')
		FROM u LEFT JOIN removed ON removed.call_id = u.id
	),
	counted AS (
		UPDATE retention_runs SET purged = purged + cardinality($1::uuid[]),
			objects_queued = objects_queued + (SELECT count(*) FROM queued), updated_at = now()
		WHERE id = $9
	)
	SELECT (SELECT batch FROM outbox), (SELECT count(*) FROM calls_upd)`

// lateResultSQL purges the runs and LLM requests of one purged call (u) and
// writes an audit row (reason $10, no run: $9 is NULL) when it removed
// anything.
var lateResultSQL = `WITH` + purgeUnitsCTE + `,` + purgeRunsCTE + `,` + removedCTE("") + `
	INSERT INTO retention_audit (run_id, action, reason, call_uuid, call_id, agent_id, removed)
	SELECT $9, '` + string(ActionPurge) + `', $10, u.id, u.call_id, u.agent_id, removed.names
	FROM u JOIN removed ON removed.call_id = u.id`

// RedactLateResult purges what runs of a purged call stored after the
// purge: an analysis or QC run that was already waiting for the model when
// the call was purged stores its output (and any error) afterwards.
// pipeline.Service calls it in the transaction that stores a run's result,
// after locking the call, so the call's personal data never comes back. It
// writes an audit row (reason late_result) when it removed anything.
func RedactLateResult(ctx context.Context, tx store.DBTX, c *store.Call) error {
	cand := candidate{id: c.ID, callID: c.Record.CallID, agentID: c.Record.AgentID}
	u, err := newBatchArgs(ctx, tx, []candidate{cand})
	if err != nil {
		return fmt.Errorf("purge late result of call %s: %w", c.ID, err)
	}
	_, err = tx.Exec(ctx, lateResultSQL, u.ids, u.callIDs, u.agentIDs, u.recordingKeys, u.present, u.fields,
		removedText, PurgedBeforeRun, nil, ReasonLateResult)
	if err != nil {
		return fmt.Errorf("purge late result of call %s: %w", c.ID, err)
	}
	return nil
}
