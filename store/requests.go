package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/postcall/postcall/analysis"
)

// CompletionHistory reads what the answers of one plan version and kind
// took: over the LLM requests of its latest `runs` runs that got an answer,
// how many there are and their completion tokens at the given percentile
// (0-1; percentile_disc, a value that occurred). The output budget is
// sized from it.
func CompletionHistory(ctx context.Context, db DBTX, agentID string, version int, kind string, percentile float64, runs int) (analysis.History, error) {
	var h analysis.History
	err := db.QueryRow(ctx, `
		SELECT count(*), COALESCE(percentile_disc($4) WITHIN GROUP (ORDER BY q.completion_tokens), 0)
		FROM (SELECT id FROM analysis_runs WHERE agent_id = $1 AND plan_version = $2 AND kind = $3
		      ORDER BY id DESC LIMIT $5) r
		JOIN llm_requests q ON q.run_id = r.id
		WHERE q.completion_tokens > 0`, agentID, version, kind, percentile, runs).Scan(&h.Answers, &h.P99)
	if err != nil {
		return analysis.History{}, fmt.Errorf("read completion history of agent %s version %d %s: %w", agentID, version, kind, err)
	}
	return h, nil
}

// RequestDoc is one LLM request of a run in the call document: what it was
// sent with and how it ended. It holds no token counts (the run has them)
// and no prompt or answer text.
type RequestDoc struct {
	Purpose string `json:"purpose"`
	Model   string `json:"model"`
	// MaxTokens is the output budget it was sent with; null for requests
	// stored before budgets were recorded.
	MaxTokens    *int    `json:"max_tokens"`
	FinishReason *string `json:"finish_reason"`
	ServiceTier  *string `json:"service_tier"`
	// FlexFallback: a flex request that had to be served at the default
	// tier.
	FlexFallback bool    `json:"flex_fallback"`
	LatencyMs    int64   `json:"latency_ms"`
	Error        *string `json:"error"`
	// CostUSD is what the request cost in US dollars; null when its model
	// or tier has no price (or it was stored before costs were).
	CostUSD *float64 `json:"cost_usd"`
}

// CallRequests returns the LLM requests of every run of the call, by run id,
// in the order they were sent.
func CallRequests(ctx context.Context, db DBTX, callID uuid.UUID) (map[int64][]RequestDoc, error) {
	rows, err := db.Query(ctx, `
		SELECT run_id, purpose, model, max_tokens, finish_reason, service_tier, flex_fallback, latency_ms, error,
			cost_usd::float8
		FROM llm_requests WHERE call_id = $1 ORDER BY id`, callID)
	if err != nil {
		return nil, fmt.Errorf("list LLM requests of call %s: %w", callID, err)
	}
	defer rows.Close()
	byRun := map[int64][]RequestDoc{}
	for rows.Next() {
		var runID int64
		var d RequestDoc // fresh each row: its pointers must not be shared
		if err := rows.Scan(&runID, &d.Purpose, &d.Model, &d.MaxTokens, &d.FinishReason, &d.ServiceTier,
			&d.FlexFallback, &d.LatencyMs, &d.Error, &d.CostUSD); err != nil {
			return nil, fmt.Errorf("list LLM requests of call %s: %w", callID, err)
		}
		byRun[runID] = append(byRun[runID], d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list LLM requests of call %s: %w", callID, err)
	}
	return byRun, nil
}
