package analysis

import "github.com/postcall/postcall/agent"

// Verdict is the model's judgement of one checklist item.
type Verdict struct {
	ID       string `json:"id"`
	Passed   bool   `json:"passed"`
	Evidence string `json:"evidence"`
	// Verified says the evidence quote was found in the transcript; nil
	// when the plan's qc.evidence is off (nothing was checked).
	Verified *bool `json:"verified,omitempty"`
	// Turn is the transcript turn the quote starts in; nil when it was not
	// found or not checked.
	Turn *int `json:"turn,omitempty"`
}

// DefaultPassScore is the pass score of a QC plan that sets none.
const DefaultPassScore = 7

// Score is the QC final score, computed by postcall, never by the model:
//
//	round_half_up(1 + 9 * passed_weight / total_weight)
//
// and 1 when any fatal item failed. It uses exact integer arithmetic, so
// .5 boundaries round up reliably. An item without a verdict counts as
// failed; a weight below 1 counts as 1 (the plan's default). An empty
// checklist scores 1: nothing was verified.
func Score(checklist []agent.ChecklistItem, verdicts []Verdict) int {
	passed := make(map[string]bool, len(verdicts))
	for _, v := range verdicts {
		passed[v.ID] = v.Passed
	}
	total, won := 0, 0
	for _, it := range checklist {
		w := max(it.Weight, 1)
		total += w
		switch {
		case passed[it.ID]:
			won += w
		case it.Fatal:
			return 1
		}
	}
	if total == 0 {
		return 1
	}
	// floor(1 + 9w/t + 1/2) = floor((2t + 18w + t) / 2t)
	return (3*total + 18*won) / (2 * total)
}

// passScore is the plan's pass score or the default.
func passScore(q *agent.QC) int {
	if q.PassScore == 0 {
		return DefaultPassScore
	}
	return q.PassScore
}
