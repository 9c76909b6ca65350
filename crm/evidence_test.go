package crm

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// evidenceResult is sampleResult with checked quotes: outcome verified,
// budget and email not (under check their values are kept).
func evidenceResult() CallResult {
	r := sampleResult()
	quote := func(s string) *string { return &s }
	turn := 3
	r.Evidence = map[string]Evidence{
		"outcome": {Quote: quote("yes, let's do the demo"), Turn: &turn, Verified: true},
		"budget":  {Quote: quote("we have five thousand"), Verified: false},
		"email":   {Quote: quote("jane at example dot com"), Verified: false},
	}
	r.Unverified = []string{"budget", "email"}
	return r
}

func webhookAnalysisOf(t *testing.T, r *CallResult, c *common) map[string]any {
	t.Helper()
	body, err := webhookBody(r, c, false, time.Now())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	return m["data"].(map[string]any)["analysis"].(map[string]any)
}

func TestWebhookEvidence(t *testing.T) {
	t.Parallel()
	// Check: every selected field's evidence, flagged; the pii email's
	// quote is left out with its value by default.
	r := evidenceResult()
	a := webhookAnalysisOf(t, &r, &common{recording: true})
	require.Equal(t, map[string]any{
		"outcome": map[string]any{"quote": "yes, let's do the demo", "turn": float64(3), "verified": true},
		"budget":  map[string]any{"quote": "we have five thousand", "turn": nil, "verified": false},
	}, a["evidence"])
	require.Equal(t, []any{"budget"}, a["unverified"], "only selected fields are named")
	require.Equal(t, float64(5000), a["fields"].(map[string]any)["budget"], "check keeps the value")

	// Require: the pipeline gives null for unverified values; their quotes
	// are not sent either.
	r = evidenceResult()
	r.EvidenceRequired = true
	r.Fields["budget"], r.Fields["email"] = nil, nil
	a = webhookAnalysisOf(t, &r, &common{fields: []string{"outcome", "budget", "email"}})
	require.Equal(t, []string{"outcome"}, slices.Collect(maps.Keys(a["evidence"].(map[string]any))))
	require.Equal(t, []any{"budget", "email"}, a["unverified"])
	require.Equal(t, map[string]any{"outcome": "agreed", "budget": nil, "email": nil}, a["fields"])

	// All verified: an empty list, not a missing key.
	r = evidenceResult()
	r.Unverified = []string{}
	a = webhookAnalysisOf(t, &r, &common{fields: []string{"outcome"}})
	require.Equal(t, []any{}, a["unverified"])

	// Off (the default): no evidence keys at all.
	plain := sampleResult()
	a = webhookAnalysisOf(t, &plain, &common{})
	require.NotContains(t, a, "evidence")
	require.NotContains(t, a, "unverified")
}

func TestNoteEvidence(t *testing.T) {
	t.Parallel()
	c := &common{fields: []string{"outcome", "budget", "email"}}
	r := evidenceResult()
	note := noteText(r.noteTitle(), r.noteLines(c))
	require.Contains(t, note, "budget: 5000"+unverifiedNote, "check flags an unverified value")
	require.Contains(t, note, "outcome: agreed\n", "a verified value is listed as it is")

	r.EvidenceRequired = true
	r.Fields["budget"], r.Fields["email"] = nil, nil
	note = noteText(r.noteTitle(), r.noteLines(c))
	require.Contains(t, note, "outcome: agreed")
	require.NotContains(t, note, "budget")
	require.NotContains(t, note, "jane")
	require.False(t, strings.Contains(note, "unverified"), "require lists only verified values")
}
