package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// BulkCalls returns up to limit of the calls a bulk reanalysis b would
// select after its cursor, in id order, as BulkNext does but whole: a cost
// estimate reads them without starting a bulk run (b need not be stored).
func BulkCalls(ctx context.Context, db DBTX, b *Bulk, limit int) ([]*Call, error) {
	rows, err := db.Query(ctx, `SELECT `+callColumns+` FROM calls`+bulkNextWhere, b.AgentID, b.Since, b.Until, b.CursorID, limit)
	if err != nil {
		return nil, fmt.Errorf("read calls of agent %s: %w", b.AgentID, err)
	}
	calls, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Call, error) { return scanCall(row) })
	if err != nil {
		return nil, fmt.Errorf("read calls of agent %s: %w", b.AgentID, err)
	}
	return calls, nil
}

// RunHistory is what the finished runs of one plan version and kind took,
// on average per run: every request counted (a cut-off answer's second
// request, a repair).
type RunHistory struct {
	// Runs is how many runs the averages are over; 0: no history.
	Runs int
	// Requests, Prompt, CachedRead and Completion are per-run averages;
	// Prompt includes CachedRead.
	Requests, Prompt, CachedRead, Completion float64
}

// RunAverages reads the averages over the latest `runs` finished runs of
// one plan version (0: any version of the agent) and kind that sent a
// request.
func RunAverages(ctx context.Context, db DBTX, agentID string, version int, kind string, runs int) (RunHistory, error) {
	var h RunHistory
	err := db.QueryRow(ctx, `
		SELECT count(*), COALESCE(avg(requests), 0)::float8, COALESCE(avg(prompt_tokens), 0)::float8,
		       COALESCE(avg(cached_read_tokens), 0)::float8, COALESCE(avg(completion_tokens), 0)::float8
		FROM (SELECT requests, prompt_tokens, cached_read_tokens, completion_tokens FROM analysis_runs
		      WHERE agent_id = $1 AND ($2 = 0 OR plan_version = $2) AND kind = $3 AND status IN ('succeeded', 'failed')
		        AND requests > 0
		      ORDER BY id DESC LIMIT $4) r`, agentID, version, kind, runs).
		Scan(&h.Runs, &h.Requests, &h.Prompt, &h.CachedRead, &h.Completion)
	if err != nil {
		return RunHistory{}, fmt.Errorf("read run history of agent %s version %d %s: %w", agentID, version, kind, err)
	}
	return h, nil
}
