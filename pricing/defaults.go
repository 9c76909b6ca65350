package pricing

// The built-in prices, US dollars per million tokens.
//
// Source: OpenAI's pricing page (https://developers.openai.com/api/docs/pricing)
// and model pages (https://developers.openai.com/api/docs/models/MODEL), as
// read on 2026-12-02 and cross-checked against deploybase.ai's table of
// March 2026; the gpt-5.4 family against tokenmix.ai's of 2026-04-29.
// Batch API rates are half the standard ones, cached input included
// (https://developers.openai.com/api/docs/guides/batch: "50% lower costs").
// Flex tokens "are priced at Batch API rates, with additional discounts
// from prompt caching" (https://developers.openai.com/api/docs/guides/flex-processing);
// flex is offered for the gpt-5 family, o3 and o4-mini only, so the other
// models have no flex rates.
//
// Prices change: set POSTCALL_PRICES_FILE to correct or extend them
// without a new build. gpt-4o-2024-05-13 has an entry of its own because
// that snapshot is priced apart from gpt-4o (and has no cached rate).
var builtIn = NewTable(map[string]Price{
	"gpt-5":        halfPrice(Rates{Input: 1.25, CachedInput: 0.125, Output: 10}, true),
	"gpt-5-mini":   halfPrice(Rates{Input: 0.25, CachedInput: 0.025, Output: 2}, true),
	"gpt-5-nano":   halfPrice(Rates{Input: 0.05, CachedInput: 0.005, Output: 0.40}, true),
	"gpt-5.1":      halfPrice(Rates{Input: 1.25, CachedInput: 0.125, Output: 10}, true),
	"gpt-5.4":      halfPrice(Rates{Input: 2.50, CachedInput: 0.25, Output: 15}, true),
	"gpt-5.4-mini": halfPrice(Rates{Input: 0.75, CachedInput: 0.075, Output: 4.50}, true),
	"gpt-5.4-nano": halfPrice(Rates{Input: 0.20, CachedInput: 0.02, Output: 1.25}, true),

	"gpt-4.1":      halfPrice(Rates{Input: 2, CachedInput: 0.50, Output: 8}, false),
	"gpt-4.1-mini": halfPrice(Rates{Input: 0.40, CachedInput: 0.10, Output: 1.60}, false),
	"gpt-4.1-nano": halfPrice(Rates{Input: 0.10, CachedInput: 0.025, Output: 0.40}, false),

	"gpt-4o":            halfPrice(Rates{Input: 2.50, CachedInput: 1.25, Output: 10}, false),
	"gpt-4o-2024-05-13": halfPrice(Rates{Input: 5, CachedInput: 5, Output: 15}, false),
	"gpt-4o-mini":       halfPrice(Rates{Input: 0.15, CachedInput: 0.075, Output: 0.60}, false),

	"o3":      halfPrice(Rates{Input: 2, CachedInput: 0.50, Output: 8}, true),
	"o4-mini": halfPrice(Rates{Input: 1.10, CachedInput: 0.275, Output: 4.40}, true),
})

// halfPrice is a price whose Batch rates (and, with flex, Flex rates) are
// half the standard ones.
func halfPrice(standard Rates, flex bool) Price {
	half := Rates{Input: standard.Input / 2, CachedInput: standard.CachedInput / 2, Output: standard.Output / 2}
	p := Price{Standard: standard, Batch: &half}
	if flex {
		p.Flex = &half
	}
	return p
}

// Default returns the built-in table.
func Default() *Table { return builtIn }
