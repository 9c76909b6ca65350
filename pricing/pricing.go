// Package pricing turns a request's token usage into US dollars: a price
// table per model (input, cached input and output per million tokens, with
// the Batch API's and flex's rates), built-in rates for current OpenAI
// models (defaults.go), overridable by a YAML or JSON price file (file.go).
// A model the table does not hold is unpriced, never guessed: its cost is
// unknown, not zero.
package pricing

import (
	"regexp"

	"github.com/postcall/postcall/analysis"
)

// TierBatch is the service tier stored for a request sent through the
// Batch API (llm_requests.service_tier); live requests have
// analysis.TierDefault or analysis.TierFlex.
const TierBatch = "batch"

// Rates are US dollars per million tokens.
type Rates struct {
	// Input is the rate of prompt tokens not read from the provider's
	// prompt cache.
	Input float64
	// CachedInput is the rate of prompt tokens read from the cache.
	CachedInput float64
	// Output is the rate of completion tokens, reasoning included.
	Output float64
}

// Cost is what usage costs at these rates: cached prompt tokens at the
// cached rate, the rest of the prompt at the input rate.
func (r Rates) Cost(u analysis.Usage) float64 {
	return (float64(u.FreshPrompt())*r.Input + float64(u.CachedRead)*r.CachedInput +
		float64(u.Completion)*r.Output) / 1e6
}

// Price is one model's price.
type Price struct {
	// Standard are the rates of live requests at the default tier.
	Standard Rates
	// Batch are the rates of requests sent through the Batch API; nil: the
	// model has none (such requests are unpriced).
	Batch *Rates
	// Flex are the rates of live requests served at the flex tier; nil:
	// the model offers no flex (such requests are unpriced).
	Flex *Rates
}

// Rates returns the rates of the tier that served a request: batch, flex,
// or standard for any other tier (default, or none recorded). ok is false
// when the model has no rates for that tier.
func (p Price) Rates(tier string) (Rates, bool) {
	switch tier {
	case TierBatch:
		if p.Batch == nil {
			return Rates{}, false
		}
		return *p.Batch, true
	case analysis.TierFlex:
		if p.Flex == nil {
			return Rates{}, false
		}
		return *p.Flex, true
	default:
		return p.Standard, true
	}
}

// Table is a price table by model. The zero value prices nothing; a nil
// *Table is the built-in table (Default).
type Table struct {
	models map[string]Price
}

// NewTable returns a table of the given prices (copied).
func NewTable(models map[string]Price) *Table {
	t := &Table{models: make(map[string]Price, len(models))}
	for name, p := range models {
		t.models[name] = p
	}
	return t
}

// Models returns the table's prices by model name (a copy).
func (t *Table) Models() map[string]Price {
	return NewTable(t.table().models).models
}

// table is t, or the built-in table when t is nil.
func (t *Table) table() *Table {
	if t == nil {
		return builtIn
	}
	return t
}

// dated is a dated snapshot suffix: gpt-4.1-mini-2025-04-14.
var dated = regexp.MustCompile(`^(.+)-\d{4}-\d{2}-\d{2}$`)

// Lookup returns the price of a model: its own entry, else the entry of
// the model it is a dated snapshot of (gpt-4.1-mini-2025-04-14 is priced as
// gpt-4.1-mini). Nothing else is matched: another name is unpriced.
func (t *Table) Lookup(model string) (Price, bool) {
	models := t.table().models
	if p, ok := models[model]; ok {
		return p, true
	}
	if m := dated.FindStringSubmatch(model); m != nil {
		p, ok := models[m[1]]
		return p, ok
	}
	return Price{}, false
}

// Cost returns what a request of model, served at tier, cost for its
// usage, in US dollars. ok is false when the model, or its rates at that
// tier, are not in the table: the cost is unknown.
func (t *Table) Cost(model, tier string, u analysis.Usage) (usd float64, ok bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, false
	}
	r, ok := p.Rates(tier)
	if !ok {
		return 0, false
	}
	return r.Cost(u), true
}
