package analysis

import (
	"slices"

	"github.com/postcall/postcall/agent"
)

// Evidence is the quote behind one analysis value, as postcall checked it
// against the transcript (FindQuote).
type Evidence struct {
	// Quote is the model's quote; nil when it gave none.
	Quote *string `json:"quote"`
	// Turn is the index in the transcript of the turn the quote starts in;
	// nil when the quote was not found.
	Turn *int `json:"turn"`
	// Verified says the quote was found.
	Verified bool `json:"verified"`
	// Withheld is the model's value when analysis.evidence require kept it
	// out of the fields because its quote was not found; nil otherwise. It
	// stays on the run for review and is never pushed.
	Withheld any `json:"withheld,omitempty"`
}

// checkFields checks the quotes of the fields that keep evidence against
// the transcript. A field whose value is null needs no quote and gets no
// entry. Under require, the value of an unverified field is moved from
// fields to its entry's Withheld. It returns the entries and the unverified
// fields in plan order (nil when the plan asks for no evidence).
func checkFields(a *agent.Analysis, fields map[string]any, quotes map[string]*string, transcript []Turn) (map[string]Evidence, []string) {
	if a.Evidence == agent.EvidenceOff {
		return nil, nil
	}
	evidence := map[string]Evidence{}
	unverified := []string{}
	ix := newQuoteIndex(transcript)
	for _, f := range a.Fields {
		value := fields[f.Name]
		if !a.WantsEvidence(f) || value == nil {
			continue
		}
		e := Evidence{Quote: quotes[f.Name]}
		if e.Quote != nil {
			if turn, ok := ix.find(*e.Quote); ok {
				e.Turn, e.Verified = &turn, true
			}
		}
		if !e.Verified {
			unverified = append(unverified, f.Name)
			if a.Evidence == agent.EvidenceRequire {
				e.Withheld, fields[f.Name] = value, nil
			}
		}
		evidence[f.Name] = e
	}
	return evidence, unverified
}

// checkItems checks each verdict's quote against the transcript, setting
// its Verified and Turn, and returns the unverified items in checklist
// order (nil when the plan asks for no evidence).
func checkItems(q *agent.QC, verdicts []Verdict, transcript []Turn) []string {
	if q.Evidence == agent.EvidenceOff {
		return nil
	}
	unverified := []string{}
	ix := newQuoteIndex(transcript)
	for i := range verdicts {
		v := &verdicts[i]
		turn, ok := 0, false
		if v.Evidence != "" {
			turn, ok = ix.find(v.Evidence)
		}
		v.Verified = &ok
		if ok {
			v.Turn = &turn
		} else {
			unverified = append(unverified, v.ID)
		}
	}
	return unverified
}

// credited is what the score counts: under qc.evidence require, a passed
// item whose quote was not found earns no credit (it counts as failed).
func credited(q *agent.QC, verdicts []Verdict) []Verdict {
	if q.Evidence != agent.EvidenceRequire {
		return verdicts
	}
	out := slices.Clone(verdicts)
	for i := range out {
		if out[i].Verified != nil && !*out[i].Verified {
			out[i].Passed = false
		}
	}
	return out
}
