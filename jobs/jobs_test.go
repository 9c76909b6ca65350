package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/internal/app"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

const planYAML = `
id: sales
analysis:
  prompt: "You review sales calls for ACME."
  fields:
    - {name: summary, type: string}
    - {name: outcome, type: enum, values: [agreed, declined, callback]}
    - {name: success, type: boolean}
    - {name: email, type: string, pii: true}
  summary_field: summary
  disposition_field: outcome
  success_field: success
  skip: {min_user_turns: 1, min_duration: 5}
qc:
  prompt: "Judge the agent."
  checklist:
    - {id: greeting, description: "Introduced itself", weight: 1}
    - {id: consent, description: "Asked for recording consent", weight: 2, fatal: true}
    - {id: close, description: "Closed politely", weight: 1}
  pass_score: 7
cache: {enabled: true, retention: 24h}
`

type testBundle struct {
	pool     *pgxpool.Pool
	schema   string
	llm      *openaitest.Server
	client   *river.Client[pgx.Tx]
	enqueuer *pipeline.Calls
	pipeline *pipeline.Service
}

// setup starts a worker, built as the worker command builds it
// (internal/app), on a schema of its own (a running River client commits)
// against a fake OpenAI server. withModel false leaves the pipeline without
// an endpoint.
func setup(t *testing.T, withModel bool) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	llm := openaitest.NewServer(t)
	b := &testBundle{pool: pool, schema: schema, llm: llm}
	var model analysis.Model
	if withModel {
		openai, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: llm.URL, APIKey: llm.APIKey, MaxRetryWait: time.Millisecond})
		require.NoError(t, err)
		model = openai
	}
	a := b.startApp(t, model)
	b.client, b.enqueuer, b.pipeline = a.River, a.Calls, a.Pipeline

	plans, err := agent.ParsePlans([]byte(planYAML))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, pool, &plans[0])
	require.NoError(t, err)
	return b
}

// startApp builds and starts a worker with model (nil: no endpoint).
// Integrations may post to the tests' loopback receivers; a stopping worker
// waits a second for its jobs.
func (b *testBundle) startApp(t *testing.T, model analysis.Model) *app.App {
	t.Helper()
	cfg, err := config.Load([]string{"POSTCALL_ALLOW_PRIVATE_TARGETS=1", "POSTCALL_SHUTDOWN_TIMEOUT=1s"})
	require.NoError(t, err)
	a, err := app.New(context.Background(), cfg, app.Options{
		Work: true, Pool: b.pool, Schema: b.schema, Logger: quietLogger, Model: model,
		FetchPollInterval: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	require.NoError(t, a.River.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.River.Stop(ctx)
	})
	return a
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

var callSeq atomic.Int64

func conversation() *call.Record {
	ms := func(v int64) *int64 { return &v }
	dur := 120.0
	return &call.Record{
		CallID:      fmt.Sprintf("conv-%d", callSeq.Add(1)),
		AgentID:     "sales",
		EndedAt:     time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC),
		EndedReason: "customer-ended-call",
		Direction:   "outbound",
		PhoneNumber: "+15550100001",
		Duration:    &dur,
		Transcript: []call.Turn{
			{Role: call.RoleAgent, Text: "Hi, this is Ava from ACME. May I record?", TMs: ms(0)},
			{Role: call.RoleUser, Text: "Yes. I want a demo next week.", TMs: ms(3000)},
			{Role: call.RoleAgent, Text: "Booked. Goodbye!", TMs: ms(8000)},
		},
	}
}

func (b *testBundle) waitDone(t *testing.T, id fmt.Stringer) *store.Call {
	t.Helper()
	var c *store.Call
	require.Eventually(t, func() bool {
		var err error
		c, err = store.GetCall(context.Background(), b.pool, id.String())
		require.NoError(t, err)
		return c.Done
	}, 20*time.Second, 20*time.Millisecond, "call never finished")
	return c
}

func TestIngestToDone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	b.llm.SetDefault(func(req *openaitest.Request) openaitest.Reply {
		if req.ResponseFormat.JSONSchema.Name == "qc" || len(req.Messages) > 0 && containsQC(req) {
			return openaitest.Reply{Content: `{"greeting":{"passed":true,"evidence":"Hi, this is Ava"},"consent":{"passed":true,"evidence":"May I record?"},"close":{"passed":false,"evidence":"abrupt"}}`}
		}
		return openaitest.Reply{Content: `{"summary":"Customer wants a demo.","outcome":"agreed","success":true,"email":null}`}
	})

	res, err := b.enqueuer.Ingest(ctx, conversation())
	require.NoError(t, err)
	require.False(t, res.Duplicate)
	require.Nil(t, res.Auto)
	require.Len(t, res.Runs, 2)

	c := b.waitDone(t, res.ID)
	require.Equal(t, store.StateDone, c.State)
	require.Equal(t, "agreed", *c.Disposition)
	require.Equal(t, "analysis", *c.DispositionSource)
	require.True(t, *c.GeneralSuccess)
	require.Equal(t, "Customer wants a demo.", *c.CallSummary)
	// 3 of 4 weight passed: round_half_up(1 + 9*3/4) = round(7.75) = 8.
	require.Equal(t, 8, *c.FinalScore)
	require.True(t, *c.QCPassed)

	require.Equal(t, 2, b.llm.Len(), "one analysis and one QC request")
	for _, req := range b.llm.Requests() {
		require.NotNil(t, req.Temperature)
		require.Zero(t, *req.Temperature)
		require.NotNil(t, req.PromptCacheKey)
		require.Equal(t, "24h", *req.PromptCacheRetention)
	}
	// Usage is stored per request; the document's tokens are its sum.
	var prompt, completion int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT sum(prompt_tokens), sum(completion_tokens)
		FROM llm_requests WHERE call_id = $1`, c.ID).Scan(&prompt, &completion))
	require.Positive(t, prompt)
	require.Positive(t, completion)

	doc, err := calldoc.Build(ctx, b.pool, c, calldoc.Options{})
	require.NoError(t, err)
	require.Equal(t, prompt, doc.Tokens.Prompt)
	require.Equal(t, completion, doc.Tokens.Completion)
	js, err := json.Marshal(doc)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(js, &m))
	require.Equal(t, "succeeded", m["analysis"].(map[string]any)["status"])
	require.Equal(t, float64(8), m["qc"].(map[string]any)["score"])
	require.Len(t, m["qc"].(map[string]any)["items"], 3)
}

func containsQC(req *openaitest.Request) bool {
	var schema struct {
		Properties map[string]any `json:"properties"`
	}
	_ = json.Unmarshal(req.Schema(), &schema)
	_, ok := schema.Properties["greeting"]
	return ok
}

func TestIngestAutoDispositionSendsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)

	for _, tc := range []struct {
		reason string
		mutate func(r *call.Record)
		want   string
	}{
		{"voicemail", func(r *call.Record) { r.EndedReason = "voicemail"; r.Transcript = nil }, "voicemail"},
		{"no answer", func(r *call.Record) { r.EndedReason = "customer-did-not-answer"; r.Transcript = nil }, "no_answer"},
		{"busy", func(r *call.Record) { r.EndedReason = "customer-busy"; r.Transcript = nil }, "busy"},
		{"silent customer", func(r *call.Record) { r.Transcript = r.Transcript[:1] }, "no_response"},
		{"too short", func(r *call.Record) { d := 3.0; r.Duration = &d }, "too_short"},
	} {
		rec := conversation()
		tc.mutate(rec)
		res, err := b.enqueuer.Ingest(ctx, rec)
		require.NoError(t, err, tc.reason)
		require.NotNil(t, res.Auto, tc.reason)
		require.Equal(t, tc.want, res.Auto.Disposition, tc.reason)
		require.Empty(t, res.Runs, tc.reason)
		c, err := store.GetCall(ctx, b.pool, res.ID.String())
		require.NoError(t, err)
		require.True(t, c.Done, tc.reason)
		require.Equal(t, "auto", *c.DispositionSource, tc.reason)
		require.Nil(t, c.FinalScore, "no QC for auto calls")
	}
	require.Zero(t, b.llm.Len(), "auto dispositions never reach the model")
}

func TestReingestDoesNotDuplicateWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	rec := conversation()
	first, err := b.enqueuer.Ingest(ctx, rec)
	require.NoError(t, err)
	b.waitDone(t, first.ID)

	again, err := b.enqueuer.Ingest(ctx, rec)
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, first.ID, again.ID)
	require.Empty(t, again.Runs)

	runs, err := store.CallRuns(ctx, b.pool, first.ID)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	require.Equal(t, 2, b.llm.Len())
}

func TestIngestUnknownAgentStoresNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	rec := conversation()
	rec.AgentID = "nobody"
	_, err := b.enqueuer.Ingest(ctx, rec)
	require.ErrorIs(t, err, pipeline.ErrUnknownAgent)
	_, err = store.GetCall(ctx, b.pool, rec.CallID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestWaitsForModelThenProceeds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, false)

	res, err := b.enqueuer.Ingest(ctx, conversation())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c, err := store.GetCall(ctx, b.pool, res.ID.String())
		require.NoError(t, err)
		return c.State == store.StateWaitingLLM
	}, 10*time.Second, 20*time.Millisecond)
	c, err := store.GetCall(ctx, b.pool, res.ID.String())
	require.NoError(t, err)
	require.False(t, c.Done)
	require.Nil(t, c.Disposition, "nothing is invented while waiting")

	// An endpoint is configured: a new worker picks the snoozed jobs up
	// (moved to now instead of waiting out the snooze).
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, b.client.Stop(stopCtx))
	_, err = b.pool.Exec(ctx, `UPDATE river_job SET scheduled_at = now() WHERE state = 'scheduled'`)
	require.NoError(t, err)
	model, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: b.llm.URL, APIKey: b.llm.APIKey})
	require.NoError(t, err)
	b.startApp(t, model)

	c = b.waitDone(t, res.ID)
	require.Equal(t, store.StateDone, c.State)
	require.NotNil(t, c.FinalScore)
}

func TestInvalidOutputFailsTheCallClearly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	b.llm.SetDefault(openaitest.InvalidJSON())

	res, err := b.enqueuer.Ingest(ctx, conversation())
	require.NoError(t, err)
	c := b.waitDone(t, res.ID)
	require.Equal(t, store.StateFailed, c.State)
	require.Nil(t, c.Disposition)

	runs, err := store.CallRuns(ctx, b.pool, c.ID)
	require.NoError(t, err)
	for _, r := range runs {
		require.Equal(t, store.RunFailed, r.Status)
		require.NotNil(t, r.Error)
		require.Equal(t, 2, r.Requests, "the first answer and one repair")
		require.Positive(t, r.Usage.Prompt, "spent tokens are recorded for failed runs")
	}
}

func TestRetriedRunDoesNotPayTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	res, err := b.enqueuer.Ingest(ctx, conversation())
	require.NoError(t, err)
	b.waitDone(t, res.ID)
	sent := b.llm.Len()

	// A job retried after its result was stored (e.g. its completion was
	// lost) runs the pipeline again: nothing is sent.
	for _, run := range res.Runs {
		completed := false
		done, err := b.pipeline.Execute(ctx, b.pool, run.ID)
		require.NoError(t, err)
		err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			_, err := b.pipeline.Store(ctx, tx, done)
			completed = err == nil // the job completes in this transaction
			return err
		})
		require.NoError(t, err)
		require.True(t, completed)
	}
	require.Equal(t, sent, b.llm.Len())
}

func TestReanalyzeKeepsHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	res, err := b.enqueuer.Ingest(ctx, conversation())
	require.NoError(t, err)
	b.waitDone(t, res.ID)

	// The plan changes: reanalysis uses the new version.
	plans, err := agent.ParsePlans([]byte(planYAML + "model: gpt-4.1\n"))
	require.NoError(t, err)
	_, version, err := store.ApplyPlan(ctx, b.pool, &plans[0])
	require.NoError(t, err)
	require.Equal(t, 2, version)

	again, err := b.enqueuer.Reanalyze(ctx, res.ID.String(), pipeline.Kinds{Analysis: true})
	require.NoError(t, err)
	require.Len(t, again.Runs, 1)
	c := b.waitDone(t, res.ID)
	require.Equal(t, 2, *c.PlanVersion)
	require.NotNil(t, c.FinalScore, "QC result of the first round is kept")

	runs, err := store.CallRuns(ctx, b.pool, c.ID)
	require.NoError(t, err)
	require.Len(t, runs, 3, "two analysis runs and one QC run")
	require.Equal(t, store.TriggerReanalyze, runs[0].Trigger)
	require.Equal(t, 2, runs[0].PlanVersion)
	require.Equal(t, "gpt-4.1", *runs[0].Model)
}

func TestIngestToVerifiedWebhook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)

	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	type received struct {
		id   string
		body map[string]any
	}
	got := make(chan received, 10)
	attempts := atomic.Int32{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("verify webhook: %v", err)
		}
		if attempts.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // the first attempt fails
			return
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		got <- received{r.Header.Get("webhook-id"), m}
	}))
	t.Cleanup(receiver.Close)

	plans, err := agent.ParsePlans([]byte(planYAML + fmt.Sprintf(`integrations:
  - {name: zapier, type: webhook, url: %q, secret: %q}
`, receiver.URL, secret)))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, b.pool, &plans[0])
	require.NoError(t, err)

	res, err := b.enqueuer.Ingest(ctx, conversation())
	require.NoError(t, err)
	c := b.waitDone(t, res.ID)

	// The retry comes after 5s (+-10%): move it to now instead of waiting.
	// (River keeps a snooze shorter than its scheduler interval "available"
	// with a future scheduled_at.)
	require.Eventually(t, func() bool {
		tag, err := b.pool.Exec(ctx, `UPDATE river_job SET scheduled_at = now()
			WHERE kind = 'postcall.deliver' AND state IN ('scheduled', 'available') AND scheduled_at > now() + interval '1 second'`)
		require.NoError(t, err)
		return tag.RowsAffected() == 1
	}, 10*time.Second, 20*time.Millisecond)

	var r received
	select {
	case r = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("webhook never delivered")
	}
	require.Equal(t, "call.analyzed", r.body["type"])
	data := r.body["data"].(map[string]any)
	require.Equal(t, c.ID.String(), data["id"])
	require.Equal(t, c.Record.CallID, data["call_id"])
	require.Equal(t, "agreed", data["disposition"])
	require.NotContains(t, data["analysis"].(map[string]any)["fields"], "email", "pii fields are not sent by default")

	require.Eventually(t, func() bool {
		doc, err := calldoc.Build(ctx, b.pool, c, calldoc.Options{})
		require.NoError(t, err)
		return len(doc.Integrations) == 1 && doc.Integrations[0].Status == store.DeliveryDelivered
	}, 10*time.Second, 20*time.Millisecond)
	doc, err := calldoc.Build(ctx, b.pool, c, calldoc.Options{})
	require.NoError(t, err)
	in := doc.Integrations[0]
	require.Equal(t, r.id, in.WebhookID, "the webhook-id is the delivery's id")
	require.Equal(t, 2, in.Attempts)
	require.Equal(t, 200, *in.LastStatusCode)
	require.NotNil(t, in.DeliveredAt)
	require.Len(t, in.Log, 2)
	require.Equal(t, 503, *in.Log[0].StatusCode)
}

func TestBulkReanalysisResumesAfterItsCursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	var ids []string
	for range 12 {
		res, err := b.enqueuer.Ingest(ctx, conversation())
		require.NoError(t, err)
		ids = append(ids, res.ID.String())
	}
	// One call is deleted before the bulk run: it is not selected.
	_, err := b.pool.Exec(ctx, `UPDATE calls SET deleted_at = now() WHERE id = $1`, ids[0])
	require.NoError(t, err)

	bulk, resumed, err := store.OpenBulk(ctx, b.pool, "sales", nil, nil, "qc", false)
	require.NoError(t, err)
	require.False(t, resumed)
	require.Equal(t, 11, bulk.Total)

	// Enqueue 5, then "crash".
	next, err := store.BulkNext(ctx, b.pool, bulk, 5)
	require.NoError(t, err)
	for _, id := range next {
		_, err := b.enqueuer.ReanalyzeBulkStep(ctx, bulk, id, pipeline.Kinds{QC: true})
		require.NoError(t, err)
	}

	again, resumed, err := store.OpenBulk(ctx, b.pool, "sales", nil, nil, "qc", false)
	require.NoError(t, err)
	require.True(t, resumed)
	require.Equal(t, bulk.ID, again.ID)
	require.Equal(t, 5, again.Enqueued)
	for {
		next, err := store.BulkNext(ctx, b.pool, again, 4)
		require.NoError(t, err)
		if len(next) == 0 {
			break
		}
		for _, id := range next {
			_, err := b.enqueuer.ReanalyzeBulkStep(ctx, again, id, pipeline.Kinds{QC: true})
			require.NoError(t, err)
		}
	}
	require.NoError(t, store.FinishBulk(ctx, b.pool, again))
	require.Equal(t, 11, again.Enqueued)

	// Every live call got exactly one bulk QC run, at bulk priority.
	var perCall []int
	rows, err := b.pool.Query(ctx, `SELECT count(r.id) FROM calls c LEFT JOIN analysis_runs r ON r.call_id = c.id AND r.bulk_id = $1
		WHERE c.deleted_at IS NULL GROUP BY c.id`, bulk.ID)
	require.NoError(t, err)
	perCall, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Len(t, perCall, 11)
	for _, n := range perCall {
		require.Equal(t, 1, n)
	}
	var priorities []int
	rows, err = b.pool.Query(ctx, `SELECT DISTINCT priority FROM river_job WHERE kind = 'postcall.qc' AND args->>'run_id' IN
		(SELECT id::text FROM analysis_runs WHERE bulk_id = $1)`, bulk.ID)
	require.NoError(t, err)
	priorities, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{int(pipeline.PriorityBulk)}, priorities)

	require.Eventually(t, func() bool {
		finished, pending, err := store.BulkProgress(ctx, b.pool, bulk.ID)
		require.NoError(t, err)
		return pending == 0 && finished == 11
	}, 20*time.Second, 50*time.Millisecond)
}
