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

// Bases of a KindEstimate: what its per-run figures come from.
const (
	// BasisPlanVersion: the averages of the plan version's stored runs of
	// the kind (requests, prompt, cached and completion tokens).
	BasisPlanVersion = "plan version"
	// BasisAgent: the plan version has no run of the kind yet. Each run's
	// prompt is estimated from its size (analysis.EstimateRun), nothing
	// cached; its requests and completion tokens are the averages of the
	// agent's runs of the kind with its other plan versions.
	BasisAgent = "agent"
	// BasisPromptSize: the agent has no run of the kind at all. Each run is
	// one request, its prompt estimated from its size, nothing cached, and
	// the schema's bound (or the plan's max_tokens) as completion: an upper
	// bound.
	BasisPromptSize = "prompt size"
)

// KindEstimate is the estimate of one run kind.
type KindEstimate struct {
	Kind string
	// Runs is how many runs would be made.
	Runs int
	// Basis says what the per-run figures come from (BasisPlanVersion,
	// BasisAgent, BasisPromptSize); HistoryRuns is how many stored runs
	// the averages are over (0 with BasisPromptSize).
	Basis       string
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
// requests and tokens a run of that plan version took on average so far;
// before any, the prompt's size with what the agent's other versions'
// answers took, or the schema's bound (see the Basis constants). defaultModel is the model of
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
		w := &kindWork{est: KindEstimate{Kind: k.name, Basis: BasisPlanVersion}}
		if w.history, err = store.RunAverages(ctx, s.DB, req.AgentID, version, k.name, estimateHistoryRuns); err != nil {
			return nil, err
		}
		if w.history.Runs == 0 {
			w.est.Basis = BasisAgent
			if w.history, err = store.RunAverages(ctx, s.DB, req.AgentID, 0, k.name, estimateHistoryRuns); err != nil {
				return nil, err
			}
		}
		if w.history.Runs == 0 {
			w.est.Basis = BasisPromptSize
		}
		w.est.HistoryRuns = w.history.Runs
		kinds = append(kinds, w)
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
				if k.est.Basis == BasisPlanVersion {
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
		runs, h := float64(k.est.Runs), k.history
		switch k.est.Basis {
		case BasisPlanVersion:
			k.est.Requests = int(math.Round(runs * h.Requests))
			k.est.Tokens = analysis.Usage{
				Prompt: int(math.Round(runs * h.Prompt)), CachedRead: int(math.Round(runs * h.CachedRead)),
				Completion: int(math.Round(runs * h.Completion)),
			}
		case BasisAgent:
			// Another version's prompts differ, its answers less so; a
			// repair or a second request resends about the same prompt.
			k.est.Requests = int(math.Round(runs * h.Requests))
			k.est.Tokens = analysis.Usage{
				Prompt:     int(math.Round(float64(k.sized.Prompt) * h.Requests)),
				Completion: int(math.Round(runs * h.Completion)),
			}
		default:
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
