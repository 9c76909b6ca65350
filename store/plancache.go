package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/agent"
)

// planCacheSize bounds a PlanCache. Agents times versions in use is far
// below it; a cache that fills up starts over rather than growing.
const planCacheSize = 1024

// PlanCache keeps decoded plan versions in memory. A stored version never
// changes (a changed plan is a new version), so a cached one is never
// stale; only an agent's current version is read from the database each
// time. Every job of a call needs its plan, so this saves a query and a
// JSON decode per job. The zero value is ready to use and safe for
// concurrent use. Cached plans are shared: callers must not modify them.
type PlanCache struct {
	mu    sync.Mutex
	plans map[planKey]*agent.Plan
}

type planKey struct {
	agentID string
	version int
}

// Version returns one stored version of the agent's plan, as PlanVersion.
func (c *PlanCache) Version(ctx context.Context, db DBTX, agentID string, version int) (*agent.Plan, error) {
	key := planKey{agentID, version}
	c.mu.Lock()
	plan, ok := c.plans[key]
	c.mu.Unlock()
	if ok {
		return plan, nil
	}
	plan, err := PlanVersion(ctx, db, agentID, version)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.plans == nil || len(c.plans) >= planCacheSize {
		c.plans = make(map[planKey]*agent.Plan)
	}
	c.plans[key] = plan
	return plan, nil
}

// Current returns the agent's current plan and its version, as CurrentPlan.
func (c *PlanCache) Current(ctx context.Context, db DBTX, agentID string) (*agent.Plan, int, error) {
	version, err := CurrentVersion(ctx, db, agentID)
	if err != nil {
		return nil, 0, err
	}
	plan, err := c.Version(ctx, db, agentID, version)
	if err != nil {
		return nil, 0, err
	}
	return plan, version, nil
}

// CurrentVersion returns the agent's current plan version.
func CurrentVersion(ctx context.Context, db DBTX, agentID string) (int, error) {
	var version int
	err := db.QueryRow(ctx, `SELECT current_version FROM agents WHERE id = $1`, agentID).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("agent %q: %w", agentID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("read current plan version of agent %s: %w", agentID, err)
	}
	return version, nil
}
