package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/store"
)

// agentPolicy is one agent's retention: its current plan's periods, or the
// Service's defaults where the plan sets none, and its legal hold.
type agentPolicy struct {
	id                 string
	purgeDays          int
	purgeFromPlan      bool
	hardDeleteDays     int
	hardDeleteFromPlan bool
	onHold             bool
}

// agentPolicies returns every agent's policy, by id.
func (s *Service) agentPolicies(ctx context.Context) ([]agentPolicy, error) {
	rows, err := s.DB.Query(ctx, `
		SELECT a.id, a.legal_hold_at IS NOT NULL, p.plan->'retention'
		FROM agents a JOIN agent_plans p ON p.agent_id = a.id AND p.version = a.current_version
		ORDER BY a.id`)
	if err != nil {
		return nil, fmt.Errorf("read agents' retention: %w", err)
	}
	policies, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (agentPolicy, error) {
		var id string
		var held bool
		var raw []byte
		if err := row.Scan(&id, &held, &raw); err != nil {
			return agentPolicy{}, err
		}
		return s.policyOf(id, held, raw)
	})
	if err != nil {
		return nil, fmt.Errorf("read agents' retention: %w", err)
	}
	return policies, nil
}

// agentPolicy returns one agent's policy.
func (s *Service) agentPolicy(ctx context.Context, db store.DBTX, agentID string) (agentPolicy, error) {
	var held bool
	var raw []byte
	err := db.QueryRow(ctx, `
		SELECT a.legal_hold_at IS NOT NULL, p.plan->'retention'
		FROM agents a JOIN agent_plans p ON p.agent_id = a.id AND p.version = a.current_version
		WHERE a.id = $1`, agentID).Scan(&held, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return agentPolicy{}, fmt.Errorf("agent %q: %w", agentID, store.ErrNotFound)
	}
	if err != nil {
		return agentPolicy{}, fmt.Errorf("read retention of agent %s: %w", agentID, err)
	}
	return s.policyOf(agentID, held, raw)
}

func (s *Service) policyOf(agentID string, held bool, rawRetention []byte) (agentPolicy, error) {
	p := agentPolicy{id: agentID, onHold: held, purgeDays: s.PurgeAfterDays, hardDeleteDays: s.HardDeleteAfterDays}
	if len(rawRetention) == 0 || string(rawRetention) == "null" {
		return p, nil
	}
	var r agent.Retention
	if err := json.Unmarshal(rawRetention, &r); err != nil {
		return p, fmt.Errorf("decode retention of agent %s: %w", agentID, err)
	}
	if r.PurgeAfterDays != nil {
		p.purgeDays, p.purgeFromPlan = *r.PurgeAfterDays, true
	}
	if r.HardDeleteAfterDays != nil {
		p.hardDeleteDays, p.hardDeleteFromPlan = *r.HardDeleteAfterDays, true
	}
	return p, nil
}

// cutoff is now less days days.
func cutoff(now time.Time, days int) time.Time {
	return now.AddDate(0, 0, -days)
}

// redactedFields returns the analysis fields the purge sets to null in the
// agent's runs: every field marked pii: true in any version of its plan (a
// field marked later protects what earlier versions stored under that name)
// and every summary_field, because a summary retells the call and names the
// people in it.
func redactedFields(ctx context.Context, db store.DBTX, agentID string) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT plan FROM agent_plans WHERE agent_id = $1 ORDER BY version`, agentID)
	if err != nil {
		return nil, fmt.Errorf("read plans of agent %s: %w", agentID, err)
	}
	raws, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("read plans of agent %s: %w", agentID, err)
	}
	var names []string
	for _, raw := range raws {
		var p agent.Plan
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("decode a plan of agent %s: %w", agentID, err)
		}
		if p.Analysis == nil {
			continue
		}
		for _, f := range p.Analysis.Fields {
			if f.PII || f.Name == p.Analysis.SummaryField {
				names = append(names, f.Name)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// runPolicy is what a purge or hard delete records as its policy.
type runPolicy struct {
	DefaultAfterDays int            `json:"default_after_days"`
	BatchSize        int            `json:"batch_size"`
	Agents           []agentCutoffs `json:"agents"`
}

type agentCutoffs struct {
	AgentID   string    `json:"agent_id"`
	AfterDays int       `json:"after_days"`
	FromPlan  bool      `json:"from_plan"`
	Cutoff    time.Time `json:"cutoff"`
	OnHold    bool      `json:"on_hold"`
}

func (s *Service) runPolicy(defaultDays int, agents []AgentReport) runPolicy {
	p := runPolicy{DefaultAfterDays: defaultDays, BatchSize: s.batchSize(), Agents: make([]agentCutoffs, len(agents))}
	for i, a := range agents {
		p.Agents[i] = agentCutoffs{AgentID: a.AgentID, AfterDays: a.AfterDays, FromPlan: a.FromPlan, Cutoff: a.Cutoff, OnHold: a.OnHold}
	}
	return p
}
