package analysis_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
)

// sentMaxTokens runs one analysis and one QC with the given history and
// returns the max_tokens each request was sent with.
func sentMaxTokens(t *testing.T, a *analysis.Analyzer, srv *openaitest.Server, h analysis.History) (analysisTokens, qcTokens int) {
	t.Helper()
	in := testInput("Dana", "Yes")
	in.History = h
	before := srv.Len()
	_, err := a.Analyze(context.Background(), testPlan(), 1, in)
	require.NoError(t, err)
	_, err = a.QC(context.Background(), testPlan(), 1, in)
	require.NoError(t, err)
	reqs := srv.Requests()[before:]
	require.Len(t, reqs, 2)
	return *reqs[0].MaxTokens, *reqs[1].MaxTokens
}

func TestOutputBudgetFromSchemaThenHistory(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	a, _ := newAnalyzer(t, srv)

	// No history: the schema's bound. testPlan's analysis has two free-text
	// fields (250 each) and five short ones; its QC two items (144 each).
	an, qc := sentMaxTokens(t, a, srv, analysis.History{})
	require.Equal(t, 580, an)
	require.Equal(t, 296, qc)

	// Too little history is not trusted.
	an, _ = sentMaxTokens(t, a, srv, analysis.History{Answers: analysis.BudgetMinAnswers - 1, P99: 900})
	require.Equal(t, 580, an)

	// Enough: the percentile plus 25%, rounded up.
	an, qc = sentMaxTokens(t, a, srv, analysis.History{Answers: analysis.BudgetMinAnswers, P99: 401})
	require.Equal(t, 502, an)
	require.Equal(t, 502, qc)

	// At least the floor, at most the full budget.
	an, _ = sentMaxTokens(t, a, srv, analysis.History{Answers: 500, P99: 40})
	require.Equal(t, analysis.BudgetFloor, an)
	an, _ = sentMaxTokens(t, a, srv, analysis.History{Answers: 500, P99: 9000})
	require.Equal(t, analysis.DefaultMaxOutputTokens, an)

	// The Analyzer's own full budget caps it.
	small := &analysis.Analyzer{Model: a.Model, DefaultModel: a.DefaultModel, MaxOutputTokens: 300}
	an, _ = sentMaxTokens(t, small, srv, analysis.History{})
	require.Equal(t, 300, an)
}

func TestOutputBudgetOfReasoningModelsWithoutHistory(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	a, _ := newAnalyzer(t, srv)
	plan := testPlan()
	plan.Model = "o4-mini"
	// Reasoning tokens are output no schema bounds: the full budget until
	// there is history.
	_, err := a.Analyze(context.Background(), plan, 1, testInput("Dana", "Yes"))
	require.NoError(t, err)
	in := testInput("Dana", "Yes")
	in.History = analysis.History{Answers: 100, P99: 1200}
	_, err = a.Analyze(context.Background(), plan, 1, in)
	require.NoError(t, err)
	reqs := srv.Requests()
	require.Equal(t, analysis.DefaultMaxOutputTokens, *reqs[0].MaxCompletionTokens)
	require.Equal(t, 1500, *reqs[1].MaxCompletionTokens)
}

func TestPlanMaxTokensReplacesTheBudget(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	a, _ := newAnalyzer(t, srv)
	plan := testPlan()
	plan.Analysis.MaxTokens = 1234
	plan.QC.MaxTokens = 777
	in := testInput("Dana", "Yes")
	in.History = analysis.History{Answers: 500, P99: 100}
	_, err := a.Analyze(context.Background(), plan, 1, in)
	require.NoError(t, err)
	_, err = a.QC(context.Background(), plan, 1, in)
	require.NoError(t, err)
	reqs := srv.Requests()
	require.Equal(t, 1234, *reqs[0].MaxTokens)
	require.Equal(t, 777, *reqs[1].MaxTokens)
}

func cutOff(*openaitest.Request) openaitest.Reply {
	return openaitest.Reply{Content: `{"summary": "a long`, FinishReason: "length"}
}

func TestCutOffAnswerRetriedOnceWithTheFullBudget(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Script(cutOff, openaitest.Valid())
	a, _ := newAnalyzer(t, srv)

	res, err := a.Analyze(context.Background(), testPlan(), 1, testInput("Dana", "Yes"))
	require.NoError(t, err)
	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	require.Equal(t, 580, *reqs[0].MaxTokens)
	require.Equal(t, analysis.DefaultMaxOutputTokens, *reqs[1].MaxTokens)
	// The same request again: same messages, no repair turn.
	require.Equal(t, reqs[0].Messages, reqs[1].Messages)
	require.Equal(t, reqs[0].Schema(), reqs[1].Schema())

	require.Len(t, res.Requests, 2)
	first, second := res.Requests[0], res.Requests[1]
	require.Equal(t, analysis.PurposeInitial, first.Purpose)
	require.Equal(t, "length", first.FinishReason)
	require.Equal(t, 580, first.MaxTokens)
	require.Contains(t, first.Err, "cut off at the output budget of 580 tokens; sent again with 4096")
	require.Equal(t, analysis.PurposeFullBudget, second.Purpose)
	require.Equal(t, "stop", second.FinishReason)
	require.Equal(t, analysis.DefaultMaxOutputTokens, second.MaxTokens)
	require.Empty(t, second.Err)
}

func TestCutOffAtTheFullBudgetIsRepairedNotRetriedAgain(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Script(cutOff, cutOff, cutOff)
	a, _ := newAnalyzer(t, srv)

	res, err := a.Analyze(context.Background(), testPlan(), 1, testInput("Dana", "Yes"))
	var invalid *analysis.InvalidOutputError
	require.ErrorAs(t, err, &invalid)
	// One retry with the full budget, then the repair request (also cut
	// off): three requests, never a fourth.
	require.Equal(t, 3, srv.Len())
	require.Len(t, res.Requests, 3)
	require.Equal(t, []string{analysis.PurposeInitial, analysis.PurposeFullBudget, analysis.PurposeRepair},
		[]string{res.Requests[0].Purpose, res.Requests[1].Purpose, res.Requests[2].Purpose})
	require.Equal(t, analysis.DefaultMaxOutputTokens, res.Requests[2].MaxTokens)
	require.Contains(t, srv.Requests()[2].Messages[3].Content, "cut off at the output token limit")
}
