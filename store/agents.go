package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/agent"
)

// PlanChange says what ApplyPlan did to one agent.
type PlanChange string

const (
	PlanCreated   PlanChange = "created"
	PlanUpdated   PlanChange = "updated"
	PlanUnchanged PlanChange = "unchanged"
)

// ApplyPlan stores plan as the agent's current plan. A plan whose canonical
// form differs from the current one becomes a new version; an identical one
// changes nothing.
func ApplyPlan(ctx context.Context, db DBTX, plan *agent.Plan) (PlanChange, int, error) {
	hash := plan.Hash()
	var current int
	var currentHash string
	err := db.QueryRow(ctx, `
		SELECT a.current_version, p.plan_hash
		FROM agents a JOIN agent_plans p ON p.agent_id = a.id AND p.version = a.current_version
		WHERE a.id = $1
		FOR UPDATE OF a`, plan.ID).Scan(&current, &currentHash)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := db.Exec(ctx, `INSERT INTO agents (id, name, current_version) VALUES ($1, $2, 1)`, plan.ID, plan.Name); err != nil {
			return "", 0, fmt.Errorf("create agent %s: %w", plan.ID, err)
		}
		if err := insertPlan(ctx, db, plan, 1, hash); err != nil {
			return "", 0, err
		}
		return PlanCreated, 1, nil
	case err != nil:
		return "", 0, fmt.Errorf("read agent %s: %w", plan.ID, err)
	case currentHash == hash:
		return PlanUnchanged, current, nil
	}
	next := current + 1
	if err := insertPlan(ctx, db, plan, next, hash); err != nil {
		return "", 0, err
	}
	if _, err := db.Exec(ctx, `UPDATE agents SET name = $2, current_version = $3, updated_at = now() WHERE id = $1`,
		plan.ID, plan.Name, next); err != nil {
		return "", 0, fmt.Errorf("update agent %s: %w", plan.ID, err)
	}
	return PlanUpdated, next, nil
}

func insertPlan(ctx context.Context, db DBTX, plan *agent.Plan, version int, hash string) error {
	_, err := db.Exec(ctx, `INSERT INTO agent_plans (agent_id, version, plan, plan_hash) VALUES ($1, $2, $3, $4)`,
		plan.ID, version, plan.Canonical(), hash)
	if err != nil {
		return fmt.Errorf("store plan %s v%d: %w", plan.ID, version, err)
	}
	return nil
}

// CurrentPlan returns the agent's current plan and its version.
func CurrentPlan(ctx context.Context, db DBTX, agentID string) (*agent.Plan, int, error) {
	var raw []byte
	var version int
	err := db.QueryRow(ctx, `
		SELECT p.plan, p.version FROM agents a
		JOIN agent_plans p ON p.agent_id = a.id AND p.version = a.current_version
		WHERE a.id = $1`, agentID).Scan(&raw, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, fmt.Errorf("agent %q: %w", agentID, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read plan of agent %s: %w", agentID, err)
	}
	plan, err := decodePlan(raw)
	if err != nil {
		return nil, 0, fmt.Errorf("decode plan of agent %s v%d: %w", agentID, version, err)
	}
	return plan, version, nil
}

// PlanVersion returns one stored version of the agent's plan.
func PlanVersion(ctx context.Context, db DBTX, agentID string, version int) (*agent.Plan, error) {
	var raw []byte
	err := db.QueryRow(ctx, `SELECT plan FROM agent_plans WHERE agent_id = $1 AND version = $2`, agentID, version).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("agent %q plan v%d: %w", agentID, version, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read plan of agent %s v%d: %w", agentID, version, err)
	}
	plan, err := decodePlan(raw)
	if err != nil {
		return nil, fmt.Errorf("decode plan of agent %s v%d: %w", agentID, version, err)
	}
	return plan, nil
}

func decodePlan(raw []byte) (*agent.Plan, error) {
	var p agent.Plan
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// AgentSummary is one row of `agents list`.
type AgentSummary struct {
	ID             string
	Name           string
	CurrentVersion int
	Calls          int64
	UpdatedAt      time.Time
	// CostUSD is what the priced LLM requests of the agent's calls cost,
	// reanalyses included.
	CostUSD float64
	// UnpricedRequests counts the requests CostUSD leaves out (no price
	// for their model or tier).
	UnpricedRequests int64
}

// AverageCost is the agent's cost per call: CostUSD over Calls. ok is
// false when it has no calls.
func (s AgentSummary) AverageCost() (usd float64, ok bool) {
	if s.Calls == 0 {
		return 0, false
	}
	return s.CostUSD / float64(s.Calls), true
}

// ListAgents returns every agent, by id.
func ListAgents(ctx context.Context, db DBTX) ([]AgentSummary, error) {
	rows, err := db.Query(ctx, `
		SELECT a.id, a.name, a.current_version,
		       (SELECT count(*) FROM calls c WHERE c.agent_id = a.id), a.updated_at,
		       COALESCE(cost.usd, 0), COALESCE(cost.unpriced, 0)
		FROM agents a
		LEFT JOIN LATERAL (
			SELECT sum(q.cost_usd)::float8 AS usd, count(*) FILTER (WHERE q.cost_usd IS NULL) AS unpriced
			FROM calls c JOIN llm_requests q ON q.call_id = c.id WHERE c.agent_id = a.id
		) cost ON true
		ORDER BY a.id`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AgentSummary, error) {
		var s AgentSummary
		err := row.Scan(&s.ID, &s.Name, &s.CurrentVersion, &s.Calls, &s.UpdatedAt, &s.CostUSD, &s.UnpricedRequests)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return list, nil
}
