package analysis_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
)

// TestDemoModelQuotes checks that with evidence on the demo model quotes
// the words of the turn each value was read from, so that its values and
// passed QC items are verified, and gives a null value a null quote.
func TestDemoModelQuotes(t *testing.T) {
	t.Parallel()
	a := &analysis.Analyzer{Model: analysis.Demo{}}
	ctx := context.Background()
	plan := evidencePlan(agent.EvidenceRequire)

	res, err := a.Analyze(ctx, plan, 1, evidenceInput())
	require.NoError(t, err)
	require.Empty(t, res.Unverified, "every demo quote is a transcript turn")
	require.NotEmpty(t, res.Evidence)
	for name, e := range res.Evidence {
		require.True(t, e.Verified, name)
		require.Contains(t, quoteTranscript[*e.Turn].Text, *e.Quote, name)
	}
	require.NotContains(t, res.Evidence, "budget", "a null number: no quote")
	require.Nil(t, res.Fields["budget"])

	qc, err := a.QC(ctx, plan, 1, evidenceInput())
	require.NoError(t, err)
	require.Empty(t, qc.Unverified)
	for _, it := range qc.Items {
		require.True(t, *it.Verified, it.ID)
	}

	// Without turns the demo finds nothing: every value is null, so there
	// is nothing to quote and nothing unverified.
	res, err = a.Analyze(ctx, plan, 1, analysis.Input{CallID: "empty"})
	require.NoError(t, err)
	require.Empty(t, res.Unverified)
	for name, v := range res.Fields {
		require.Nil(t, v, name)
	}
}
