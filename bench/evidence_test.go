package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEvidenceOverhead measures the evidence overhead on the example plan
// and checks the measurement itself: the typical answers validate, their
// quotes are all found, and evidence costs tokens, prefix and answer.
func TestEvidenceOverhead(t *testing.T) {
	t.Parallel()
	o, err := measureEvidence(context.Background(), "../"+evidencePlanFile)
	require.NoError(t, err)
	require.Zero(t, o.unverified)
	require.Greater(t, o.analysisOn.prefixTokens, o.analysisOff.prefixTokens)
	require.Greater(t, o.analysisOn.answerTokens, o.analysisOff.answerTokens)
	require.Greater(t, o.qcOn.prefixTokens, o.qcOff.prefixTokens)
	t.Logf("analysis prefix %d -> %d tokens, answer %d -> %d; QC prefix %d -> %d, answer %d -> %d (o200k_base)",
		o.analysisOff.prefixTokens, o.analysisOn.prefixTokens, o.analysisOff.answerTokens, o.analysisOn.answerTokens,
		o.qcOff.prefixTokens, o.qcOn.prefixTokens, o.qcOff.answerTokens, o.qcOn.answerTokens)
	t.Logf("estimate: analysis prefix %d -> %d, answer %d -> %d; QC prefix %d -> %d, answer %d -> %d",
		o.analysisOff.prefixEstimate, o.analysisOn.prefixEstimate, o.analysisOff.answerEstimate, o.analysisOn.answerEstimate,
		o.qcOff.prefixEstimate, o.qcOn.prefixEstimate, o.qcOff.answerEstimate, o.qcOn.answerEstimate)
}
