package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
)

func TestShowEvidenceNote(t *testing.T) {
	t.Parallel()
	turn, quote := 3, "yes please"
	evidence := map[string]analysis.Evidence{
		"outcome": {Quote: &quote, Turn: &turn, Verified: true},
		"email":   {Quote: &quote, Withheld: "dana@example.com"},
		"date":    {Quote: &quote},
	}
	require.Equal(t, " (quote from turn 3)", evidenceNote(evidence, "outcome"))
	require.Equal(t, " (withheld: its quote is not in the transcript)", evidenceNote(evidence, "email"))
	require.Equal(t, " (unverified: its quote is not in the transcript)", evidenceNote(evidence, "date"))
	require.Empty(t, evidenceNote(evidence, "seats"), "no entry: nothing to say")
	require.Empty(t, evidenceNote(nil, "outcome"), "no evidence in the plan")
}
