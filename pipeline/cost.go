package pipeline

import (
	"context"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/store"
)

// CostObservation is what one stored LLM request cost, told to
// Service.CostObserver. An unpriced request is not observed.
type CostObservation struct {
	// Model is the model as answered.
	Model string
	// USD is its cost in US dollars.
	USD float64
}

// storeRequests are a run's requests as stored, each with its cost from
// the price table at the tier that served it (store.LLMRequest.CostUSD; nil
// when its model or tier has no price).
func (p *Service) storeRequests(reqs []analysis.RequestRecord) []store.LLMRequest {
	out := make([]store.LLMRequest, len(reqs))
	for i, q := range reqs {
		out[i] = store.LLMRequest{
			Purpose: q.Purpose, Model: q.Model, Latency: q.Latency, Error: q.Err, MaxTokens: q.MaxTokens,
			FinishReason: q.FinishReason, ServiceTier: q.ServiceTier, FlexFallback: q.FlexFallback,
			Usage: q.Usage,
		}
		if usd, ok := p.Prices.Cost(q.Model, q.ServiceTier, q.Usage); ok {
			out[i].CostUSD = &usd
		}
	}
	return out
}

// recordRequests records the requests a run paid for (store.RecordRequests)
// and tells the CostObserver what they cost.
func (p *Service) recordRequests(ctx context.Context, db store.DBTX, run *store.Run, reqs []store.LLMRequest) error {
	if err := store.RecordRequests(ctx, db, run, reqs); err != nil {
		return err
	}
	p.observeCosts(reqs)
	return nil
}

// observeCosts tells the CostObserver what recorded requests cost.
func (p *Service) observeCosts(reqs []store.LLMRequest) {
	if p.CostObserver == nil {
		return
	}
	for _, q := range reqs {
		if q.CostUSD != nil {
			p.CostObserver(CostObservation{Model: q.Model, USD: *q.CostUSD})
		}
	}
}
