package retention

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/store"
)

// ErrPastWindow is returned by Restore for a call soft-deleted longer ago
// than its retention window: it is due for hard delete.
var ErrPastWindow = errors.New("past its retention window")

// SoftDeleteResult says what Delete or Restore did.
type SoftDeleteResult struct {
	// ID is postcall's id of the call.
	ID uuid.UUID
	// Changed is false when there was nothing to do (already deleted, or
	// not deleted).
	Changed bool
	// DeletedAt is the call's soft-delete time; nil once restored.
	DeletedAt *time.Time
	// HardDeleteAt is when the call becomes due for hard delete (the first
	// retention run after it deletes it); nil once restored.
	HardDeleteAt *time.Time
	// OnHold is true when the call or its agent is on legal hold: it is not
	// hard-deleted while the hold lasts.
	OnHold bool
}

// Delete soft-deletes the call named by ref (postcall's id or the
// platform's call_id). It stays readable, marked deleted, and can be
// restored until its agent's hard_delete_after_days have passed; the
// first retention run after that hard-deletes it. Deleting a deleted call
// changes nothing.
func (s *Service) Delete(ctx context.Context, ref string) (*SoftDeleteResult, error) {
	return s.changeDeleted(ctx, ref, true)
}

// Restore undoes Delete while the call is inside its retention window (or
// on legal hold, which keeps it from being hard-deleted anyway). Past the
// window it returns an error wrapping ErrPastWindow. Restoring a call that
// is not deleted changes nothing.
func (s *Service) Restore(ctx context.Context, ref string) (*SoftDeleteResult, error) {
	return s.changeDeleted(ctx, ref, false)
}

func (s *Service) changeDeleted(ctx context.Context, ref string, del bool) (*SoftDeleteResult, error) {
	var res SoftDeleteResult
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		found, err := store.GetCall(ctx, tx, ref)
		if err != nil {
			return err
		}
		var deletedAt *time.Time
		var callHeld, agentHeld bool
		err = tx.QueryRow(ctx, `
			SELECT c.deleted_at, c.legal_hold_at IS NOT NULL, a.legal_hold_at IS NOT NULL
			FROM calls c JOIN agents a ON a.id = c.agent_id WHERE c.id = $1 FOR NO KEY UPDATE OF c`,
			found.ID).Scan(&deletedAt, &callHeld, &agentHeld)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("call %q: %w", ref, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock call %s: %w", ref, err)
		}
		policy, err := s.agentPolicy(ctx, tx, found.Record.AgentID)
		if err != nil {
			return err
		}
		res = SoftDeleteResult{ID: found.ID, DeletedAt: deletedAt, OnHold: callHeld || agentHeld}
		now := s.now()
		switch {
		case del && deletedAt == nil:
			res.Changed, res.DeletedAt = true, &now
		case !del && deletedAt != nil:
			due := deletedAt.AddDate(0, 0, policy.hardDeleteDays)
			if !now.Before(due) && !res.OnHold {
				return fmt.Errorf("call %s was deleted at %s and agent %s keeps deleted calls %d days: %w; the next retention run hard-deletes it",
					ref, deletedAt.UTC().Format(time.RFC3339), policy.id, policy.hardDeleteDays, ErrPastWindow)
			}
			res.Changed, res.DeletedAt = true, nil
		}
		if res.DeletedAt != nil {
			due := res.DeletedAt.AddDate(0, 0, policy.hardDeleteDays)
			res.HardDeleteAt = &due
		}
		if !res.Changed {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE calls SET deleted_at = $2, updated_at = $3 WHERE id = $1`,
			found.ID, res.DeletedAt, now); err != nil {
			return fmt.Errorf("update call %s: %w", ref, err)
		}
		action := ActionRestore
		if del {
			action = ActionSoftDelete
		}
		cand := candidate{id: found.ID, callID: found.Record.CallID, agentID: found.Record.AgentID}
		return insertAudit(ctx, tx, nil, action, ReasonOperator, []candidate{cand}, [][]string{nil})
	})
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// Hold is a legal hold on one call or on every call of an agent.
type Hold struct {
	AgentID string
	// CallUUID and CallID name the call; nil for a hold on the agent.
	CallUUID *uuid.UUID
	CallID   *string
	At       time.Time
	// Reason is the operator's case reference.
	Reason *string
}

// HoldCall puts the call named by ref on legal hold: the purge, the hard
// delete and erasure requests leave it alone until ReleaseCall. reason is a
// case reference, not personal data. It reports whether the hold is new.
func (s *Service) HoldCall(ctx context.Context, ref, reason string) (bool, error) {
	return s.setCallHold(ctx, ref, reason, true)
}

// ReleaseCall clears the call's legal hold. It reports whether there was
// one.
func (s *Service) ReleaseCall(ctx context.Context, ref string) (bool, error) {
	return s.setCallHold(ctx, ref, "", false)
}

func (s *Service) setCallHold(ctx context.Context, ref, reason string, hold bool) (bool, error) {
	found, err := store.GetCall(ctx, s.DB, ref)
	if err != nil {
		return false, err
	}
	var changed bool
	err = s.DB.QueryRow(ctx, `
		WITH upd AS (
			UPDATE calls SET legal_hold_at = CASE WHEN $2 THEN $4::timestamptz END,
				legal_hold_reason = CASE WHEN $2 THEN $3 END
			WHERE id = $1 AND (legal_hold_at IS NULL) = $2
			RETURNING id, call_id, agent_id
		), audit AS (
			INSERT INTO retention_audit (action, reason, call_uuid, call_id, agent_id, note)
			SELECT CASE WHEN $2 THEN 'hold_set' ELSE 'hold_clear' END, 'operator', id, call_id, agent_id, $3 FROM upd
		)
		SELECT count(*) > 0 FROM upd`, found.ID, hold, nullable(reason), s.now()).Scan(&changed)
	if err != nil {
		return false, fmt.Errorf("change legal hold of call %s: %w", ref, err)
	}
	return changed, nil
}

// HoldAgent puts every call of the agent, present and future, on legal
// hold until ReleaseAgent. It reports whether the hold is new.
func (s *Service) HoldAgent(ctx context.Context, agentID, reason string) (bool, error) {
	return s.setAgentHold(ctx, agentID, reason, true)
}

// ReleaseAgent clears the agent's legal hold (holds on single calls stay).
// It reports whether there was one.
func (s *Service) ReleaseAgent(ctx context.Context, agentID string) (bool, error) {
	return s.setAgentHold(ctx, agentID, "", false)
}

func (s *Service) setAgentHold(ctx context.Context, agentID, reason string, hold bool) (bool, error) {
	var exists, changed bool
	err := s.DB.QueryRow(ctx, `
		WITH upd AS (
			UPDATE agents SET legal_hold_at = CASE WHEN $2 THEN $4::timestamptz END,
				legal_hold_reason = CASE WHEN $2 THEN $3 END
			WHERE id = $1 AND (legal_hold_at IS NULL) = $2
			RETURNING id
		), audit AS (
			INSERT INTO retention_audit (action, reason, agent_id, note)
			SELECT CASE WHEN $2 THEN 'hold_set' ELSE 'hold_clear' END, 'operator', id, $3 FROM upd
		)
		SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1), count(*) > 0 FROM upd`,
		agentID, hold, nullable(reason), s.now()).Scan(&exists, &changed)
	if err != nil {
		return false, fmt.Errorf("change legal hold of agent %s: %w", agentID, err)
	}
	if !exists {
		return false, fmt.Errorf("agent %q: %w", agentID, store.ErrNotFound)
	}
	return changed, nil
}

// ListHolds returns every legal hold: agents first, then calls, oldest
// first.
func ListHolds(ctx context.Context, db store.DBTX) ([]Hold, error) {
	rows, err := db.Query(ctx, `
		SELECT id, NULL::uuid, NULL::text, legal_hold_at, legal_hold_reason, 0 AS sort
		FROM agents WHERE legal_hold_at IS NOT NULL
		UNION ALL
		SELECT agent_id, id, call_id, legal_hold_at, legal_hold_reason, 1
		FROM calls WHERE legal_hold_at IS NOT NULL
		ORDER BY sort, legal_hold_at`)
	if err != nil {
		return nil, fmt.Errorf("list legal holds: %w", err)
	}
	holds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Hold, error) {
		var h Hold
		var sort int
		err := row.Scan(&h.AgentID, &h.CallUUID, &h.CallID, &h.At, &h.Reason, &sort)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("list legal holds: %w", err)
	}
	return holds, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CallStatus is where a call stands in retention, for a page that shows it.
type CallStatus struct {
	// OnHold is true when the call or its agent is on legal hold; HoldReason
	// is the call's (else the agent's) case reference, if any.
	OnHold     bool
	HoldReason *string
	// HardDeleteAt is when a soft-deleted call becomes due for hard delete
	// (the end of its restore window); nil when the call is not deleted.
	HardDeleteAt *time.Time
}

// Status returns the call's legal hold and, when it is soft-deleted, the
// end of its restore window.
func (s *Service) Status(ctx context.Context, c *store.Call) (*CallStatus, error) {
	var st CallStatus
	var callHeld, agentHeld bool
	var callReason, agentReason *string
	err := s.DB.QueryRow(ctx, `
		SELECT c.legal_hold_at IS NOT NULL, c.legal_hold_reason, a.legal_hold_at IS NOT NULL, a.legal_hold_reason
		FROM calls c JOIN agents a ON a.id = c.agent_id WHERE c.id = $1`, c.ID).Scan(&callHeld, &callReason, &agentHeld, &agentReason)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("call %s: %w", c.ID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read the retention status of call %s: %w", c.ID, err)
	}
	st.OnHold = callHeld || agentHeld
	switch {
	case callHeld:
		st.HoldReason = callReason
	case agentHeld:
		st.HoldReason = agentReason
	}
	if c.DeletedAt != nil {
		policy, err := s.agentPolicy(ctx, s.DB, c.Record.AgentID)
		if err != nil {
			return nil, err
		}
		due := c.DeletedAt.AddDate(0, 0, policy.hardDeleteDays)
		st.HardDeleteAt = &due
	}
	return &st, nil
}
