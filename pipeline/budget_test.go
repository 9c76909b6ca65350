package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// TestOutputBudgetsFromStoredAnswers runs analyses through the pipeline: the
// first ones are sized from the schema, an answer cut off is sent again with
// the full budget (both requests on the run in the call document), and once
// enough answers are stored the budget follows what they took.
func TestOutputBudgetsFromStoredAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	llm := openaitest.NewServer(t)
	model, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: llm.URL, APIKey: llm.APIKey})
	require.NoError(t, err)
	svc := &pipeline.Service{Analyzer: &analysis.Analyzer{Model: model, DefaultModel: "gpt-4.1-mini"}}
	agentID := fmt.Sprintf("budget-%d", time.Now().UnixNano())
	plans, err := agent.ParsePlans([]byte(fmt.Sprintf(`
id: %s
analysis:
  prompt: "Summarise the call."
  fields:
    - {name: summary, type: string}
    - {name: outcome, type: enum, values: [agreed, declined]}
`, agentID)))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, tx, &plans[0])
	require.NoError(t, err)

	// analyse stores a call and runs its analysis; it returns the call.
	seq := 0
	analyse := func() *store.Call {
		t.Helper()
		seq++
		id, started := ingestAndStart(t, ctx, tx, svc, conversation(fmt.Sprintf("%s-%d", agentID, seq), agentID))
		require.Len(t, started.Runs, 1)
		require.NoError(t, execute(ctx, svc, tx, started.Runs[0].ID, nil))
		c, err := store.GetCall(ctx, tx, id.String())
		require.NoError(t, err)
		return c
	}
	// Before any history: the schema's bound (8 + 4+2+250 + 4+2+2+2).
	const bound = 274
	llm.Script(func(*openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Content: `{"summary": "The custo`, FinishReason: "length"}
	})
	c := analyse()
	require.Equal(t, store.StateDone, c.State)
	doc, err := calldoc.Build(ctx, tx, c, calldoc.Options{})
	require.NoError(t, err)
	require.Len(t, doc.Runs, 1)
	reqs := doc.Runs[0].LLMRequests
	require.Len(t, reqs, 2)
	require.Equal(t, analysis.PurposeInitial, reqs[0].Purpose)
	require.Equal(t, bound, *reqs[0].MaxTokens)
	require.Equal(t, "length", *reqs[0].FinishReason)
	require.Contains(t, *reqs[0].Error, "cut off at the output budget")
	require.Equal(t, analysis.PurposeFullBudget, reqs[1].Purpose)
	require.Equal(t, analysis.DefaultMaxOutputTokens, *reqs[1].MaxTokens)
	require.Equal(t, "stop", *reqs[1].FinishReason)
	require.Equal(t, analysis.TierDefault, *reqs[1].ServiceTier)

	// Answers of about 30 tokens, in their own Service (its history cache
	// is empty) once enough are stored.
	llm.SetDefault(openaitest.Content(`{"summary": "The customer agreed to a demo next Tuesday at ten.", "outcome": "agreed"}`))
	for range analysis.BudgetMinAnswers {
		analyse()
	}
	svc = &pipeline.Service{Analyzer: svc.Analyzer}
	before := llm.Len()
	analyse()
	sent := llm.Requests()[before]
	require.Equal(t, analysis.BudgetFloor, *sent.MaxTokens, "short answers: the floor")
}
