package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/pricing"
	"github.com/postcall/postcall/store"
)

// costBundle runs calls through the pipeline against a fake OpenAI server
// whose answers report a fixed usage: 1,300 prompt tokens of which 1,024
// cached, and 200 completion tokens.
type costBundle struct {
	tx       pgx.Tx
	llm      *openaitest.Server
	svc      *pipeline.Service
	observed map[string]float64
	mu       sync.Mutex
	seq      int
}

const costUsage = `{"prompt_tokens": 1300, "completion_tokens": 200, "total_tokens": 1500,
	"prompt_tokens_details": {"cached_tokens": 1024}}`

// answers are valid analysis and QC answers for costPlan.
func costAnswer(model string) openaitest.Responder {
	return func(req *openaitest.Request) openaitest.Reply {
		content := `{"summary": "The customer agreed."}`
		if req.ResponseFormat.JSONSchema.Name == "postcall_qc" {
			content = `{"greeting": {"passed": true, "evidence": "Hello"}}`
		}
		return openaitest.Reply{Content: content, Model: model, Usage: []byte(costUsage)}
	}
}

func setupCost(t *testing.T, prices *pricing.Table) *costBundle {
	t.Helper()
	b := &costBundle{tx: dbtest.Tx(t), llm: openaitest.NewServer(t), observed: map[string]float64{}}
	model, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: b.llm.URL, APIKey: b.llm.APIKey})
	require.NoError(t, err)
	b.svc = &pipeline.Service{
		Analyzer: &analysis.Analyzer{Model: model, DefaultModel: analysis.DefaultModel},
		Prices:   prices,
		CostObserver: func(o pipeline.CostObservation) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.observed[o.Model] += o.USD
		},
	}
	b.llm.SetDefault(costAnswer(""))
	return b
}

// run applies a plan (extra: more top-level plan keys), ingests a call
// and runs its analysis and QC; it returns the call's document.
func (b *costBundle) run(t *testing.T, extra string) *calldoc.Document {
	t.Helper()
	ctx := context.Background()
	b.seq++
	agentID := fmt.Sprintf("cost-%d-%d", time.Now().UnixNano(), b.seq)
	plans, err := agent.ParsePlans([]byte(fmt.Sprintf(`
id: %s
%s
analysis:
  prompt: "Summarise the call."
  fields:
    - {name: summary, type: string}
qc:
  prompt: "Judge the agent."
  checklist:
    - {id: greeting, description: "Greeted the caller", weight: 1}
`, agentID, extra)))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, b.tx, &plans[0])
	require.NoError(t, err)
	id, started := ingestAndStart(t, ctx, b.tx, b.svc, conversation(agentID+"-call", agentID))
	require.Len(t, started.Runs, 2)
	for _, r := range started.Runs {
		require.NoError(t, execute(ctx, b.svc, b.tx, r.ID, nil))
	}
	c, err := store.GetCall(ctx, b.tx, id.String())
	require.NoError(t, err)
	require.Equal(t, store.StateDone, c.State)
	doc, err := calldoc.Build(ctx, b.tx, c, calldoc.Options{})
	require.NoError(t, err)
	return doc
}

// storedCosts reads llm_requests.cost_usd of a call as PostgreSQL holds it.
func (b *costBundle) storedCosts(t *testing.T, doc *calldoc.Document) []*float64 {
	t.Helper()
	rows, err := b.tx.Query(context.Background(), `SELECT cost_usd::float8 FROM llm_requests WHERE call_id = $1 ORDER BY id`, doc.ID)
	require.NoError(t, err)
	var costs []*float64
	for rows.Next() {
		var c *float64
		require.NoError(t, rows.Scan(&c))
		costs = append(costs, c)
	}
	require.NoError(t, rows.Err())
	return costs
}

// perRequest is what costUsage costs at rates: 276 fresh prompt tokens at
// the input rate, 1,024 at the cached rate, 200 at the output rate.
func perRequest(r pricing.Rates) float64 {
	return (276*r.Input + 1024*r.CachedInput + 200*r.Output) / 1e6
}

func TestCostStoredPerRequestAndInTheDocument(t *testing.T) {
	t.Parallel()
	b := setupCost(t, nil) // nil: the built-in prices, as by default
	doc := b.run(t, "")    // the default model, gpt-4.1-mini

	// gpt-4.1-mini at the default tier: $0.40, $0.10 cached, $1.60.
	want := perRequest(pricing.Rates{Input: 0.40, CachedInput: 0.10, Output: 1.60})
	costs := b.storedCosts(t, doc)
	require.Len(t, costs, 2)
	for _, c := range costs {
		require.NotNil(t, c)
		require.InDelta(t, want, *c, 1e-12, "stored at full precision (numeric)")
	}
	require.True(t, doc.Cost.Priced)
	require.InDelta(t, 2*want, *doc.Cost.USD, 1e-12)
	require.InDelta(t, want, *doc.Cost.AnalysisUSD, 1e-12)
	require.InDelta(t, want, *doc.Cost.QCUSD, 1e-12)
	for _, r := range doc.Runs {
		require.InDelta(t, want, *r.CostUSD, 1e-12, r.Kind)
		require.Len(t, r.LLMRequests, 1)
		require.InDelta(t, want, *r.LLMRequests[0].CostUSD, 1e-12, r.Kind)
	}
	b.mu.Lock()
	require.InDelta(t, 2*want, b.observed[analysis.DefaultModel], 1e-12, "the metric's observer saw both")
	b.mu.Unlock()

	// The JSON keys of the contract.
	js, err := doc.MarshalJSON()
	require.NoError(t, err)
	require.Contains(t, string(js), fmt.Sprintf(`"cost":{"usd":%v,"analysis_usd":%v,"qc_usd":%v,"priced":true}`,
		*doc.Cost.USD, *doc.Cost.AnalysisUSD, *doc.Cost.QCUSD))

	// A dated snapshot answered: priced as its model.
	b.llm.SetDefault(costAnswer("gpt-4.1-mini-2025-04-14"))
	doc = b.run(t, "")
	require.True(t, doc.Cost.Priced)
	require.InDelta(t, 2*want, *doc.Cost.USD, 1e-12)
}

func TestCostAtTheTierThatServed(t *testing.T) {
	t.Parallel()
	b := setupCost(t, nil)
	// gpt-5-mini served at flex: flex rates, half the standard ones.
	doc := b.run(t, "model: gpt-5-mini\nservice_tier: flex")
	require.Equal(t, analysis.TierFlex, *doc.Runs[0].LLMRequests[0].ServiceTier)
	want := perRequest(pricing.Rates{Input: 0.125, CachedInput: 0.0125, Output: 1})
	require.True(t, doc.Cost.Priced)
	require.InDelta(t, 2*want, *doc.Cost.USD, 1e-12)

	// gpt-4.1-mini has no flex rates: a request served at flex is
	// unpriced, not priced at the standard rates.
	doc = b.run(t, "service_tier: flex")
	require.False(t, doc.Cost.Priced)
	require.Nil(t, doc.Cost.USD)
	require.Equal(t, []*float64{nil, nil}, b.storedCosts(t, doc))
}

func TestUnpricedModel(t *testing.T) {
	t.Parallel()
	b := setupCost(t, nil)
	doc := b.run(t, "model: my-local-model")
	require.Equal(t, []*float64{nil, nil}, b.storedCosts(t, doc), "null: unpriced, never a guess")
	require.Equal(t, calldoc.Cost{Priced: false}, doc.Cost)
	js, err := doc.MarshalJSON()
	require.NoError(t, err)
	require.Contains(t, string(js), `"cost":{"usd":null,"analysis_usd":null,"qc_usd":null,"priced":false}`)
	for _, r := range doc.Runs {
		require.Nil(t, r.CostUSD)
	}
	b.mu.Lock()
	require.NotContains(t, b.observed, "my-local-model", "an unpriced request adds nothing to the metric")
	b.mu.Unlock()

	// Partial: the analysis answered by a priced model, QC by an unpriced
	// one. The total is null, the analysis' sum stands.
	b.llm.SetDefault(func(req *openaitest.Request) openaitest.Reply {
		if req.ResponseFormat.JSONSchema.Name == "postcall_qc" {
			return costAnswer("mystery-model")(req)
		}
		return costAnswer("")(req)
	})
	doc = b.run(t, "")
	require.False(t, doc.Cost.Priced)
	require.Nil(t, doc.Cost.USD)
	require.Nil(t, doc.Cost.QCUSD)
	require.InDelta(t, perRequest(pricing.Rates{Input: 0.40, CachedInput: 0.10, Output: 1.60}), *doc.Cost.AnalysisUSD, 1e-12)
}

func TestPriceFileUsedByThePipeline(t *testing.T) {
	t.Parallel()
	models, err := pricing.Parse([]byte("models:\n  my-local-model: {input: 1, cached_input: 0.5, output: 2}\n"))
	require.NoError(t, err)
	b := setupCost(t, pricing.NewTable(models))
	doc := b.run(t, "model: my-local-model")
	require.True(t, doc.Cost.Priced)
	require.InDelta(t, 2*perRequest(pricing.Rates{Input: 1, CachedInput: 0.5, Output: 2}), *doc.Cost.USD, 1e-12)
	// A table without the built-in entries prices nothing else.
	b.llm.SetDefault(costAnswer(""))
	doc = b.run(t, "")
	require.False(t, doc.Cost.Priced, "the default model is not in this table")
}

func TestEstimateFromHistoryOrPromptSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCost(t, nil)
	mini := pricing.Rates{Input: 0.40, CachedInput: 0.10, Output: 1.60}
	// A first call run through the pipeline makes the agent and its plan
	// version 1's history: one run per kind, each one request of costUsage.
	doc := b.run(t, "")
	agentID := doc.AgentID
	plan, _, err := store.CurrentPlan(ctx, b.tx, agentID)
	require.NoError(t, err)
	// Two more calls that need runs and a voicemail that does not; stored
	// without being started.
	var inputs []analysis.Input
	addCalls := func(agentID string) {
		t.Helper()
		inputs = nil
		for i := range 2 {
			rec := conversation(fmt.Sprintf("%s-more-%d", agentID, i), agentID)
			rec.Transcript = append(rec.Transcript, call.Turn{Role: call.RoleAgent, Text: strings.Repeat("A longer answer. ", 20*(i+1))})
			_, _, err := store.InsertCall(ctx, b.tx, store.NewCall{Record: rec})
			require.NoError(t, err)
			inputs = append(inputs, pipeline.InputFromRecord(rec))
		}
		voicemail := &call.Record{CallID: agentID + "-vm", AgentID: agentID, EndedAt: time.Now(), EndedReason: "voicemail"}
		_, _, err := store.InsertCall(ctx, b.tx, store.NewCall{Record: voicemail})
		require.NoError(t, err)
	}
	addCalls(agentID)
	inputs = append(inputs, pipeline.InputFromRecord(conversation(agentID+"-call", agentID)))
	before := b.llm.Len()
	estimate := func(agentID string, kinds pipeline.Kinds) *pipeline.Estimate {
		t.Helper()
		calls := &pipeline.Calls{DB: b.tx, Pipeline: &pipeline.Service{Prices: b.svc.Prices}} // a fresh plan cache
		est, err := calls.Estimate(ctx, pipeline.BulkRequest{AgentID: agentID, Kinds: kinds}, analysis.DefaultModel)
		require.NoError(t, err)
		return est
	}
	// sized sums analysis.EstimateRun over the calls needing runs.
	sized := func(plan *agent.Plan, kind string) analysis.Usage {
		t.Helper()
		var u analysis.Usage
		for _, in := range inputs {
			prompt, completion, err := analysis.EstimateRun(plan, kind, in)
			require.NoError(t, err)
			u = u.Add(analysis.Usage{Prompt: prompt, Completion: completion})
		}
		return u
	}

	// Plan version 1 has history: per run as it took.
	est := estimate(agentID, pipeline.Kinds{QC: true})
	require.Equal(t, 1, est.PlanVersion)
	require.Equal(t, analysis.DefaultModel, est.Model)
	require.Equal(t, 4, est.Calls, "the first call too")
	require.Equal(t, 1, est.Auto, "the voicemail sends nothing")
	require.Len(t, est.Kinds, 1, "QC only")
	k := est.Kinds[0]
	require.Equal(t, pipeline.BasisPlanVersion, k.Basis)
	require.Equal(t, 1, k.HistoryRuns)
	require.Equal(t, 3, k.Runs)
	require.Equal(t, 3, k.Requests)
	require.Equal(t, analysis.Usage{Prompt: 3 * 1300, CachedRead: 3 * 1024, Completion: 3 * 200}, k.Tokens)
	require.InDelta(t, 3*perRequest(mini), *k.LiveUSD, 1e-12)
	require.InDelta(t, 3*perRequest(mini)/2, *k.BatchUSD, 1e-12, "Batch API: half")

	// A new plan version, no run of it yet: the prompt's size, with what
	// the answers of version 1 took.
	plan.Name = "v2"
	_, version2, err := store.ApplyPlan(ctx, b.tx, plan)
	require.NoError(t, err)
	est = estimate(agentID, pipeline.AllKinds)
	require.Equal(t, version2, est.PlanVersion)
	require.Len(t, est.Kinds, 2)
	for i, kind := range []string{store.KindAnalysis, store.KindQC} {
		k := est.Kinds[i]
		require.Equal(t, kind, k.Kind)
		require.Equal(t, pipeline.BasisAgent, k.Basis)
		require.Equal(t, 1, k.HistoryRuns)
		require.Equal(t, 3, k.Requests)
		want := analysis.Usage{Prompt: sized(plan, kind).Prompt, Completion: 3 * 200}
		require.Equal(t, want, k.Tokens, kind)
		require.InDelta(t, mini.Cost(want), *k.LiveUSD, 1e-12)
	}
	total := est.Total()
	require.Equal(t, 6, total.Requests)
	require.InDelta(t, *est.Kinds[0].LiveUSD+*est.Kinds[1].LiveUSD, *total.LiveUSD, 1e-12)

	// An agent without any run: the prompt's size and the schema's bound.
	other := *plan
	other.ID = agentID + "-other"
	_, _, err = store.ApplyPlan(ctx, b.tx, &other)
	require.NoError(t, err)
	addCalls(other.ID)
	est = estimate(other.ID, pipeline.AllKinds)
	require.Equal(t, 3, est.Calls)
	require.Equal(t, 1, est.Auto)
	for i, kind := range []string{store.KindAnalysis, store.KindQC} {
		k := est.Kinds[i]
		require.Equal(t, pipeline.BasisPromptSize, k.Basis)
		require.Zero(t, k.HistoryRuns)
		require.Equal(t, 2, k.Requests, "one request per run")
		want := sized(&other, kind)
		require.Equal(t, want, k.Tokens, kind)
		require.Zero(t, k.Tokens.CachedRead, "nothing assumed cached")
		require.InDelta(t, mini.Cost(want), *k.LiveUSD, 1e-12)
	}

	require.Equal(t, before, b.llm.Len(), "estimates send nothing")
}

func TestEstimateOfAnUnpricedModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCost(t, nil)
	doc := b.run(t, "model: my-local-model")
	calls := &pipeline.Calls{DB: b.tx, Pipeline: b.svc}
	est, err := calls.Estimate(ctx, pipeline.BulkRequest{AgentID: doc.AgentID, Kinds: pipeline.AllKinds}, analysis.DefaultModel)
	require.NoError(t, err)
	require.Equal(t, "my-local-model", est.Model)
	require.Equal(t, 1, est.Kinds[0].HistoryRuns)
	require.Nil(t, est.Kinds[0].LiveUSD)
	require.Nil(t, est.Kinds[0].BatchUSD)
	require.Nil(t, est.Total().LiveUSD)
}
