package pipeline

import (
	"context"
	"math"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/pricing"
	"github.com/postcall/postcall/store"
)

// estimateHistoryRuns is how many of the latest runs of a plan version and
// kind an estimate averages over.
const estimateHistoryRuns = 1000

// Estimate is what a bulk reanalysis would send and cost, worked out from
// the stored calls and history alone: nothing is enqueued or sent.
type Estimate struct {
	AgentID     string
	PlanVersion int
	// Model is the model the plan's requests go to.
	Model string
	// ServiceTier is the tier of live requests: analysis.TierDefault or
	// analysis.TierFlex (the plan's service_tier).
	ServiceTier string
	// Calls counts the live calls selected; Auto those of them the plan
	// gives an auto disposition, which send no request.
	Calls, Auto int
	// Kinds are the estimates per run kind, analysis then QC.
	Kinds []KindEstimate
}

// KindEstimate is the estimate of one run kind.
type KindEstimate struct {
	Kind string
	// Runs is how many runs would be made.
	Runs int
	// HistoryRuns is how many stored runs of the plan version and kind the
	// per-run averages come from. 0: there are none, and each run is
	// estimated from its prompt's size (analysis.EstimateRun: one request,
	// the schema's bound as completion, nothing cached), an upper bound.
	HistoryRuns int
	// Requests and Tokens are the expected totals; Tokens.Prompt includes
	// Tokens.CachedRead.
	Requests int
	Tokens   analysis.Usage
	// LiveUSD is the expected cost of live requests at the plan's tier,
	// BatchUSD through the Batch API; nil: the model has no price for it.
	LiveUSD, BatchUSD *float64
}

// Total adds up the kinds: requests, tokens and the costs (nil when any
// kind's is).
func (e *Estimate) Total() KindEstimate {
	t := KindEstimate{Kind: "total", LiveUSD: new(float64), BatchUSD: new(float64)}
	for _, k := range e.Kinds {
		t.Runs += k.Runs
		t.Requests += k.Requests
		t.Tokens = t.Tokens.Add(k.Tokens)
		t.LiveUSD, t.BatchUSD = addCost(t.LiveUSD, k.LiveUSD), addCost(t.BatchUSD, k.BatchUSD)
	}
	return t
}

func addCost(sum, v *float64) *float64 {
	if sum == nil || v == nil {
		return nil
	}
	total := *sum + *v
	return &total
}

// Estimate works out what reanalyzing the calls req selects with the
// agent's current plan would send and cost, live and through the Batch API:
// per kind, the runs (calls without an auto disposition), and the
// requests and tokens a run of that plan version took on average so far,
// or, before any, what its prompt's size says. defaultModel is the model of
// a plan that names none. It reads every selected call; it enqueues and
// sends nothing.
func (s *Calls) Estimate(ctx context.Context, req BulkRequest, defaultModel string) (*Estimate, error) {
	plan, version, err := s.Pipeline.CurrentPlan(ctx, s.DB, req.AgentID)
	if err != nil {
		return nil, err
	}
	e := &Estimate{AgentID: req.AgentID, PlanVersion: version, Model: plan.Model, ServiceTier: analysis.TierDefault}
	if e.Model == "" {
		e.Model = defaultModel
	}
	if plan.ServiceTier == analysis.TierFlex {
		e.ServiceTier = analysis.TierFlex
	}
	type kindWork struct {
		est     KindEstimate
		history store.RunHistory
		sized   analysis.Usage // summed from prompt sizes, without history
	}
	var kinds []*kindWork
	for _, k := range []struct {
		name string
		want bool
	}{{store.KindAnalysis, req.Kinds.Analysis && plan.Analysis != nil}, {store.KindQC, req.Kinds.QC && plan.QC != nil}} {
		if !k.want {
			continue
		}
		h, err := store.RunAverages(ctx, s.DB, req.AgentID, version, k.name, estimateHistoryRuns)
		if err != nil {
			return nil, err
		}
		kinds = append(kinds, &kindWork{est: KindEstimate{Kind: k.name, HistoryRuns: h.Runs}, history: h})
	}

	sel := &store.Bulk{AgentID: req.AgentID, Since: req.Since, Until: req.Until}
	for {
		calls, err := store.BulkCalls(ctx, s.DB, sel, bulkChunk)
		if err != nil {
			return nil, err
		}
		if len(calls) == 0 {
			break
		}
		sel.CursorID = &calls[len(calls)-1].ID
		for _, c := range calls {
			e.Calls++
			if _, auto := autoDisposition(&c.Record, plan); auto {
				e.Auto++
				continue
			}
			in := InputFromRecord(&c.Record)
			for _, k := range kinds {
				k.est.Runs++
				if k.history.Runs > 0 {
					continue
				}
				prompt, completion, err := analysis.EstimateRun(plan, k.est.Kind, in)
				if err != nil {
					return nil, err
				}
				k.sized = k.sized.Add(analysis.Usage{Prompt: prompt, Completion: completion})
			}
		}
	}

	for _, k := range kinds {
		if h := k.history; h.Runs > 0 {
			runs := float64(k.est.Runs)
			k.est.Requests = int(math.Round(runs * h.Requests))
			k.est.Tokens = analysis.Usage{
				Prompt: int(math.Round(runs * h.Prompt)), CachedRead: int(math.Round(runs * h.CachedRead)),
				Completion: int(math.Round(runs * h.Completion)),
			}
		} else {
			k.est.Requests, k.est.Tokens = k.est.Runs, k.sized
		}
		k.est.LiveUSD = costOrNil(s.Pipeline.Prices, e.Model, e.ServiceTier, k.est.Tokens)
		k.est.BatchUSD = costOrNil(s.Pipeline.Prices, e.Model, pricing.TierBatch, k.est.Tokens)
		e.Kinds = append(e.Kinds, k.est)
	}
	return e, nil
}

// costOrNil is what usage costs at the model's rates of tier, nil when
// the table has none.
func costOrNil(prices *pricing.Table, model, tier string, u analysis.Usage) *float64 {
	usd, ok := prices.Cost(model, tier, u)
	if !ok {
		return nil
	}
	return &usd
}
