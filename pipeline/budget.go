package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/store"
)

// Output budget history: what the answers of a plan version and kind took,
// read from the store at most once per historyTTL per plan version and kind
// (a run's budget needs no fresher number), over the latest historyRuns runs.
const (
	historyTTL  = time.Minute
	historyRuns = 500
	// historyCacheSize bounds the cached entries; a full cache starts over.
	historyCacheSize = 1024
)

// histories caches the answers' history of the plan versions and kinds this
// process runs.
type histories struct {
	mu sync.Mutex
	m  map[historyKey]cachedHistory
}

type historyKey struct {
	agentID string
	version int
	kind    string
}

type cachedHistory struct {
	history analysis.History
	read    time.Time
}

// get returns the history of one plan version and kind. When the cached
// one has expired, the first caller reads it again and the runs that start
// meanwhile keep the old one, so that the runs in flight of a plan do not
// all send the same query at once.
func (h *histories) get(ctx context.Context, db store.DBTX, agentID string, version int, kind string) (analysis.History, error) {
	key := historyKey{agentID, version, kind}
	now := time.Now()
	h.mu.Lock()
	c, ok := h.m[key]
	if ok && now.Sub(c.read) >= historyTTL {
		h.m[key] = cachedHistory{history: c.history, read: now} // this caller reads it
	}
	h.mu.Unlock()
	if ok && now.Sub(c.read) < historyTTL {
		return c.history, nil
	}
	hist, err := store.CompletionHistory(ctx, db, agentID, version, kind, analysis.BudgetPercentile, historyRuns)
	if err != nil {
		return analysis.History{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= historyCacheSize {
		h.m = make(map[historyKey]cachedHistory)
	}
	h.m[key] = cachedHistory{history: hist, read: now}
	return hist, nil
}

// plansOwnBudget reports whether the plan sets the output budget of kind
// itself (analysis.max_tokens, qc.max_tokens): the answers' history is then
// never used, so it is not read.
func plansOwnBudget(plan *agent.Plan, kind string) bool {
	switch kind {
	case store.KindAnalysis:
		return plan.Analysis != nil && plan.Analysis.MaxTokens > 0
	case store.KindQC:
		return plan.QC != nil && plan.QC.MaxTokens > 0
	}
	return false
}
