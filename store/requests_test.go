package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
)

func TestCompletionHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupList(t)
	record := func(version int, kind string, completions ...int) {
		t.Helper()
		callID := b.insert(t, time.Now(), nil)
		a, q, err := StartRuns(ctx, b.tx, callID, "sales", version, TriggerIngest, kind == KindAnalysis, kind == KindQC)
		require.NoError(t, err)
		id := a
		if id == nil {
			id = q
		}
		run, err := GetRun(ctx, b.tx, *id)
		require.NoError(t, err)
		var reqs []LLMRequest
		for _, n := range completions {
			reqs = append(reqs, LLMRequest{Purpose: "initial", Model: "m", Usage: analysis.Usage{Prompt: 900, Completion: n},
				MaxTokens: 512, FinishReason: "stop", ServiceTier: "default"})
		}
		require.NoError(t, RecordRequests(ctx, b.tx, run, reqs))
	}

	h, err := CompletionHistory(ctx, b.tx, "sales", 1, KindAnalysis, 0.99, 500)
	require.NoError(t, err)
	require.Zero(t, h.Answers, "no history yet")
	require.Zero(t, h.P99)

	for n := 1; n <= 100; n++ {
		record(1, KindAnalysis, n*10)
	}
	record(1, KindAnalysis, 0)    // a failed request: no answer, not counted
	record(1, KindQC, 5000)       // another kind
	record(2, KindAnalysis, 9000) // another plan version
	h, err = CompletionHistory(ctx, b.tx, "sales", 1, KindAnalysis, 0.99, 500)
	require.NoError(t, err)
	require.Equal(t, 100, h.Answers)
	require.Equal(t, 990, h.P99, "percentile_disc: the 99th of 10..1000")

	// Only the latest runs count.
	h, err = CompletionHistory(ctx, b.tx, "sales", 1, KindAnalysis, 0.99, 11)
	require.NoError(t, err)
	require.Equal(t, 10, h.Answers, "11 latest runs, one of them without an answer")
	require.Equal(t, 1000, h.P99)
}

func TestCallRequestsInTheDocument(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupList(t)
	callID := b.insert(t, time.Now(), nil)
	a, _, err := StartRuns(ctx, b.tx, callID, "sales", 1, TriggerIngest, true, false)
	require.NoError(t, err)
	run, err := GetRun(ctx, b.tx, *a)
	require.NoError(t, err)
	require.NoError(t, RecordRequests(ctx, b.tx, run, []LLMRequest{
		{Purpose: "initial", Model: "gpt-4.1-mini", Usage: analysis.Usage{Prompt: 900, Completion: 300}, MaxTokens: 300,
			FinishReason: "length", ServiceTier: "flex", Error: "answer cut off", CostUSD: new(0.000123456789012)},
		{Purpose: "full_budget", Model: "gpt-4.1-mini", Usage: analysis.Usage{Prompt: 900, Completion: 320}, MaxTokens: 4096,
			FinishReason: "stop", ServiceTier: "default", FlexFallback: true},
	}))
	byRun, err := CallRequests(ctx, b.tx, callID)
	require.NoError(t, err)
	require.Len(t, byRun, 1)
	reqs := byRun[run.ID]
	require.Len(t, reqs, 2)
	require.Equal(t, "initial", reqs[0].Purpose)
	require.Equal(t, 300, *reqs[0].MaxTokens)
	require.Equal(t, "length", *reqs[0].FinishReason)
	require.Equal(t, "flex", *reqs[0].ServiceTier)
	require.False(t, reqs[0].FlexFallback)
	require.Equal(t, "answer cut off", *reqs[0].Error)
	require.Equal(t, "full_budget", reqs[1].Purpose)
	require.Equal(t, 4096, *reqs[1].MaxTokens)
	require.True(t, reqs[1].FlexFallback)
	require.Nil(t, reqs[1].Error)
	require.Equal(t, 0.000123456789012, *reqs[0].CostUSD, "numeric keeps every digit")
	require.Nil(t, reqs[1].CostUSD, "unpriced: null, not 0")
}
