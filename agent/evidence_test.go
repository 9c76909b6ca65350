package agent

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const evidenceYAML = `
id: ev
analysis:
  prompt: Review the call.
  evidence: require
  fields:
    - {name: outcome, type: enum, values: [agreed, declined]}
    - {name: email, type: string, pii: true}
    - {name: seats, type: integer, evidence: false}
qc:
  prompt: Judge the agent.
  evidence: check
  checklist:
    - {id: greeting, description: Greeted the customer}
`

func TestEvidenceKeys(t *testing.T) {
	t.Parallel()
	p := parseOne(t, evidenceYAML)
	require.Equal(t, EvidenceRequire, p.Analysis.Evidence)
	require.Equal(t, EvidenceCheck, p.QC.Evidence)
	require.True(t, p.Analysis.WantsEvidence(p.Analysis.Fields[0]), "a field keeps evidence by default")
	require.False(t, p.Analysis.WantsEvidence(p.Analysis.Fields[2]), "evidence: false opts out")

	// The default is off, and plans without the keys keep their canonical
	// form, hence their versions.
	base := parseOne(t, fullYAML)
	require.Equal(t, EvidenceOff, base.Analysis.Evidence)
	require.Equal(t, EvidenceOff, base.QC.Evidence)
	require.False(t, base.Analysis.WantsEvidence(base.Analysis.Fields[0]))
	require.NotContains(t, string(base.Canonical()), "evidence")
}

func TestEvidenceErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown mode", `
id: ev
analysis: {prompt: p, evidence: strict, fields: [{name: a, type: string}]}`,
			`agent "ev": analysis.evidence: "strict" must be check or require (or absent for none)`},
		{"unknown qc mode", `
id: ev
qc: {prompt: p, evidence: loose, checklist: [{id: a, description: d}]}`,
			`agent "ev": qc.evidence: "loose" must be check or require (or absent for none)`},
		{"a boolean mode", `
id: ev
analysis: {prompt: p, evidence: yes, fields: [{name: a, type: string}]}`,
			`evidence: true must be check or require (or absent for none)`},
		{"field opt-out without evidence", `
id: ev
analysis: {prompt: p, fields: [{name: a, type: string}, {name: b, type: string, evidence: false}]}`,
			`agent "ev": analysis.fields[1].evidence: set analysis.evidence (check or require) first; without it no field has evidence`},
		{"every field opts out", `
id: ev
analysis: {prompt: p, evidence: check, fields: [{name: a, type: string, evidence: false}]}`,
			`agent "ev": analysis.evidence: every field opts out (evidence: false); remove evidence or let a field keep it`},
		{"evidence is not a boolean", `
id: ev
analysis: {prompt: p, evidence: check, fields: [{name: a, type: string, evidence: maybe}]}`,
			`evidence`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlans([]byte(tc.yaml))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
