package analysis

import (
	"github.com/postcall/postcall/agent"
)

// Output budgets. Providers charge a request's max_tokens against the
// tokens-per-minute limit when it arrives, whatever the answer then takes,
// so a budget far above what answers take wastes most of the limit. A
// request's max_tokens is therefore sized from what earlier answers of the
// same plan version and kind took: their BudgetPercentile of completion
// tokens plus BudgetMarginPercent, at least BudgetFloor, at most the full
// budget (the Analyzer's MaxOutputTokens). Before BudgetMinAnswers answers
// are stored it is a bound computed from the answer's schema. An answer cut
// off at the budget (finish_reason "length") is sent again, once, with the
// full budget. A plan's own analysis.max_tokens or qc.max_tokens replaces
// all of this.
const (
	// BudgetPercentile is the share of earlier answers the budget covers.
	BudgetPercentile = 0.99
	// BudgetMinAnswers is the fewest stored answers the percentile is
	// trusted on.
	BudgetMinAnswers = 20
	// BudgetMarginPercent is added to the percentile.
	BudgetMarginPercent = 25
	// BudgetFloor is the least budget of a request.
	BudgetFloor = 256
)

// Schema bound: what an answer can take, in tokens, by the type of each
// value. Free text has no bound of its own; stringTokens is a generous
// allowance for one free-text value (about 1,000 characters), and a longer
// answer is cut off and retried with the full budget.
const (
	stringTokens   = 250
	numberTokens   = 8
	booleanTokens  = 2
	dateTokens     = 6
	keyTokens      = 4 // a key's quotes, colon, comma and name, beyond its length
	objectTokens   = 8
	evidenceTokens = 120
)

// History is what the stored answers of one plan version and kind took.
// The zero value means no history.
type History struct {
	// Answers is how many answers P99 is computed over.
	Answers int
	// P99 is their BudgetPercentile of completion tokens.
	P99 int
}

// budget is the output budget of one run: the first request's max_tokens
// and the full budget a cut-off answer is retried with.
type budget struct {
	initial, full int
}

// outputBudget sizes a run's budget. planMax is the plan's own max_tokens
// (0: none); bound is the schema bound.
func (a *Analyzer) outputBudget(model string, planMax, bound int, h History) budget {
	if planMax > 0 {
		return budget{initial: planMax, full: planMax}
	}
	full := orDefault(a.MaxOutputTokens, DefaultMaxOutputTokens)
	var initial int
	switch {
	case h.Answers >= BudgetMinAnswers:
		initial = h.P99 + (h.P99*BudgetMarginPercent+99)/100
	case isReasoningModel(model):
		// Reasoning tokens count as output and no schema bounds them:
		// until history says otherwise, the whole budget.
		initial = full
	default:
		initial = bound
	}
	return budget{initial: min(full, max(BudgetFloor, initial)), full: full}
}

// analysisBound bounds an analysis answer's tokens from its fields.
func analysisBound(a *agent.Analysis) int {
	n := objectTokens
	for _, f := range a.Fields {
		n += keyTokens + tokensOf(f.Name)
		switch f.Type {
		case agent.FieldString:
			n += stringTokens
		case agent.FieldNumber, agent.FieldInteger:
			n += numberTokens
		case agent.FieldBoolean:
			n += booleanTokens
		case agent.FieldDate:
			n += dateTokens
		case agent.FieldEnum:
			longest := 0
			for _, v := range f.Values {
				longest = max(longest, tokensOf(v))
			}
			n += longest + 2
		}
		if a.WantsEvidence(f) {
			// {"quote": "...", "value": ...}: the value's key and a quote
			// as long as a QC item's evidence.
			n += objectTokens + 2*keyTokens + evidenceTokens
		}
	}
	return n
}

// qcBound bounds a QC answer's tokens from its checklist: per item its id,
// a verdict and a short evidence text.
func qcBound(q *agent.QC) int {
	n := objectTokens
	for _, it := range q.Checklist {
		n += keyTokens + tokensOf(it.ID) + objectTokens + keyTokens + booleanTokens + keyTokens + evidenceTokens
	}
	return n
}

// tokensOf estimates the tokens of a short text as EstimateTokens does.
func tokensOf(s string) int {
	return (len(s) + estimateRoundingUp) / bytesPerToken
}
