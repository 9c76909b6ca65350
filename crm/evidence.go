package crm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Evidence is the quote behind one analysis value, as postcall checked it
// against the transcript (the call document's analysis.evidence).
type Evidence struct {
	// Quote is the model's quote; nil when it gave none.
	Quote *string `json:"quote"`
	// Turn is the index of the transcript turn the quote starts in; nil
	// when it was not found.
	Turn *int `json:"turn"`
	// Verified says the quote was found in the transcript.
	Verified bool `json:"verified"`
}

// unverifiedNote follows a value in a CRM note whose quote was not found
// (analysis.evidence check; under require such a value is not sent).
const unverifiedNote = " (unverified: its quote is not in the transcript)"

// evidencePayload is the webhook's analysis.evidence and
// analysis.unverified for the selected fields; nil, nil when the plan asks
// for no evidence. Under require an unverified field's quote is not sent
// (its value is not either); the field is listed in unverified.
func (r *CallResult) evidencePayload(selected []selectedField) (*orderedEvidence, *[]string) {
	if r.Evidence == nil {
		return nil, nil
	}
	ev, unverified := orderedEvidence{}, []string{}
	for _, f := range selected {
		if slices.Contains(r.Unverified, f.name) {
			unverified = append(unverified, f.name)
		}
		e, ok := r.Evidence[f.name]
		if !ok || (!e.Verified && r.EvidenceRequired) {
			continue
		}
		ev = append(ev, namedEvidence{f.name, e})
	}
	return &ev, &unverified
}

// unverified says the named field's quote was not found.
func (r *CallResult) unverified(name string) bool {
	return slices.Contains(r.Unverified, name)
}

type namedEvidence struct {
	name     string
	evidence Evidence
}

// orderedEvidence marshals as a JSON object keeping the selection's order.
type orderedEvidence []namedEvidence

func (o orderedEvidence) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(e.name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(e.evidence)
		if err != nil {
			return nil, fmt.Errorf("evidence of analysis field %q: %w", e.name, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
