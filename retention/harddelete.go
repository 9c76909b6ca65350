package retention

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/store"
)

// HardDelete deletes every call that was soft-deleted longer ago than its
// agent's hard_delete_after_days (or HardDeleteAfterDays), with its runs,
// LLM requests, deliveries and delivery attempts (they cascade), except
// calls on legal hold, which it counts. A call that still had a recording
// gets the object queued for deletion in the same transaction. Afterwards
// the call is gone from every table: only its audit rows remain.
func (s *Service) HardDelete(ctx context.Context, opts RunOptions) (*Report, error) {
	policies, err := s.agentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	agents := make([]AgentReport, len(policies))
	for i, p := range policies {
		agents[i] = AgentReport{AgentID: p.id, AfterDays: p.hardDeleteDays, FromPlan: p.hardDeleteFromPlan,
			Cutoff: cutoff(now, p.hardDeleteDays), OnHold: p.onHold}
	}
	r, err := s.startRun(ctx, KindHardDelete, triggerOr(opts.Trigger, TriggerCommand), opts,
		s.runPolicy(s.HardDeleteAfterDays, agents))
	if err != nil {
		return nil, err
	}
	s.requeueBeforeRun(ctx, r)
	var runErr error
	for i := range agents {
		if runErr = s.hardDeleteAgent(ctx, r, &agents[i]); runErr != nil || r.partial {
			break
		}
	}
	rep, err := s.finishRun(ctx, r, runErr)
	if rep != nil {
		rep.Agents = agents
	}
	return rep, err
}

// hardDeleteLock locks a call for deletion.
const hardDeleteLock = " FOR UPDATE OF c"

func (s *Service) hardDeleteAgent(ctx context.Context, r *run, a *AgentReport) error {
	if a.OnHold {
		return s.countHeld(ctx, r, a, `
			SELECT count(*) FROM calls WHERE agent_id = $1 AND deleted_at IS NOT NULL AND deleted_at < $2`,
			a.AgentID, a.Cutoff)
	}
	done, err := s.runSweep(ctx, r, sweep{
		selectBatch: func(ctx context.Context, db store.DBTX, after keyset, limit int, lock bool) ([]candidate, error) {
			return selectCandidates(ctx, db, "c.deleted_at", `
				WHERE c.agent_id = $1 AND c.deleted_at IS NOT NULL AND c.deleted_at < $2 AND c.legal_hold_at IS NULL
				  AND (c.deleted_at, c.id) > ($3, $4)
				ORDER BY c.deleted_at, c.id LIMIT $5`, lockClause(lock, hardDeleteLock),
				a.AgentID, a.Cutoff, after.at, after.id, limit)
		},
		apply: func(ctx context.Context, tx pgx.Tx, batch []candidate) (int64, error) {
			return s.deleteCalls(ctx, tx, r.id, batch)
		},
		dryCounts: func(batch []candidate) counts {
			return counts{deleted: len(batch), objectsQueued: withRecording(batch)}
		},
	})
	a.Done += done
	if err != nil {
		return fmt.Errorf("hard-delete calls of agent %s: %w", a.AgentID, err)
	}
	if r.partial {
		return nil
	}
	return s.countHeld(ctx, r, a, `
		SELECT count(*) FROM calls
		WHERE agent_id = $1 AND deleted_at IS NOT NULL AND deleted_at < $2 AND legal_hold_at IS NOT NULL`,
		a.AgentID, a.Cutoff)
}

// deleteCalls hard-deletes the batch, locked by tx, for run runID (whose
// counts it adds to): recording keys to the outbox, one audit row per call,
// then the rows. It returns the outbox batch (0: none).
func (s *Service) deleteCalls(ctx context.Context, tx pgx.Tx, runID int64, batch []candidate) (int64, error) {
	outbox, queued, err := s.queueRecordings(ctx, tx, runID, batch)
	if err != nil {
		return 0, err
	}
	// The audit names the call row and every row that references it, then
	// the personal data the call still held.
	lists := make([][]string, len(batch))
	for i, c := range batch {
		lists[i] = append([]string{"call", "analysis_runs", "llm_requests", "deliveries", "delivery_attempts"}, c.present...)
	}
	if err := insertAudit(ctx, tx, &runID, ActionHardDelete, ReasonPolicy, batch, lists); err != nil {
		return 0, err
	}
	ids := candidateIDs(batch)
	if _, err := tx.Exec(ctx, `DELETE FROM calls WHERE id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("hard-delete %d calls: %w", len(ids), err)
	}
	if err := addCounts(ctx, tx, runID, counts{deleted: len(batch), objectsQueued: queued}); err != nil {
		return 0, err
	}
	return outbox, nil
}
