package jobs_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/internal/app"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/pricing"
	"github.com/postcall/postcall/store"
)

// batchBundle is a worker whose model and Batch API are the fake OpenAI
// server, with an agent whose plan posts to a webhook receiver.
type batchBundle struct {
	*testBundle
	openai    *analysis.OpenAI
	app       *app.App
	delivered atomic.Int32
}

// setupBatch starts a worker as setup does, with the Batch API. It polls
// batches every second (POSTCALL_BATCH_POLL_INTERVAL's least value; the
// default 1m is tested in config) so that a test ends in seconds.
func setupBatch(t *testing.T) *batchBundle {
	t.Helper()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	llm := openaitest.NewServer(t)
	openai, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: llm.URL, APIKey: llm.APIKey, MaxRetryWait: time.Millisecond})
	require.NoError(t, err)
	b := &batchBundle{testBundle: &testBundle{pool: pool, schema: schema, llm: llm}, openai: openai}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.delivered.Add(1) }))
	t.Cleanup(receiver.Close)
	b.app = b.start(t)
	b.client, b.enqueuer, b.pipeline = b.app.River, b.app.Calls, b.app.Pipeline

	plans, err := agent.ParsePlans([]byte(planYAML + fmt.Sprintf("integrations:\n  - {name: hook, type: webhook, url: %q, secret: %q}\n",
		receiver.URL, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, pool, &plans[0])
	require.NoError(t, err)
	return b
}

// start builds and starts a worker; it stops when the test ends.
func (b *batchBundle) start(t *testing.T) *app.App {
	t.Helper()
	cfg, err := config.Load([]string{"POSTCALL_ALLOW_PRIVATE_TARGETS=1", "POSTCALL_SHUTDOWN_TIMEOUT=1s", "POSTCALL_BATCH_POLL_INTERVAL=1s"})
	require.NoError(t, err)
	a, err := app.New(context.Background(), cfg, app.Options{
		Work: true, Pool: b.pool, Schema: b.schema, Logger: quietLogger, Model: b.openai, BatchAPI: b.openai,
		FetchPollInterval: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	require.NoError(t, a.River.Start(context.Background()))
	t.Cleanup(func() { stopWorker(a) })
	return a
}

func stopWorker(a *app.App) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = a.River.Stop(ctx)
}

// ingestDone ingests n calls and waits until each is done, live.
func (b *batchBundle) ingestDone(t *testing.T, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for range n {
		res, err := b.enqueuer.Ingest(context.Background(), conversation())
		require.NoError(t, err)
		ids = append(ids, res.ID)
	}
	for _, id := range ids {
		b.waitDone(t, id)
	}
	return ids
}

// submit runs `reanalyze --agent sales --batch` up to handing the batch to
// the worker.
func (b *batchBundle) submit(t *testing.T) *store.Bulk {
	t.Helper()
	ctx := context.Background()
	bulk, resumed, err := b.enqueuer.OpenBulk(ctx, pipeline.BulkRequest{AgentID: "sales", KindName: "all", Kinds: pipeline.AllKinds, Batch: true})
	require.NoError(t, err)
	require.False(t, resumed)
	require.NoError(t, b.enqueuer.RunBatchBulk(ctx, bulk, pipeline.AllKinds, nil))
	return bulk
}

// waitBatches waits until every batch of the bulk is done and returns
// them.
func (b *batchBundle) waitBatches(t *testing.T, bulk *store.Bulk) []*store.LLMBatch {
	t.Helper()
	var batches []*store.LLMBatch
	require.Eventually(t, func() bool {
		var err error
		batches, err = b.enqueuer.BulkBatches(context.Background(), bulk.ID)
		require.NoError(t, err)
		for _, bt := range batches {
			if bt.State != store.BatchDone {
				return false
			}
		}
		return len(batches) > 0
	}, 30*time.Second, 50*time.Millisecond, "batches never done")
	return batches
}

// requestsOf counts the fake's requests: live ones and batch lines.
func requestsOf(srv *openaitest.Server) (live, batched int) {
	for _, r := range srv.Requests() {
		if r.Batch == "" {
			live++
		} else {
			batched++
		}
	}
	return live, batched
}

// tiers lists each bulk run's llm_requests as "purpose/tier", by run.
func (b *batchBundle) tiers(t *testing.T, bulk *store.Bulk) map[int64][]string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `
		SELECT r.id, q.purpose || '/' || COALESCE(q.service_tier, '-') FROM analysis_runs r JOIN llm_requests q ON q.run_id = r.id
		WHERE r.bulk_id = $1 ORDER BY q.id`, bulk.ID)
	require.NoError(t, err)
	out := map[int64][]string{}
	for rows.Next() {
		var id int64
		var s string
		require.NoError(t, rows.Scan(&id, &s))
		out[id] = append(out[id], s)
	}
	require.NoError(t, rows.Err())
	return out
}

// requireBatchPrices checks that every request of the bulk's runs that was
// answered through the Batch API is priced at the model's batch rates.
func (b *batchBundle) requireBatchPrices(t *testing.T, bulk *store.Bulk) {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `
		SELECT q.model, q.prompt_tokens, q.cached_read_tokens, q.completion_tokens, q.cost_usd::float8
		FROM analysis_runs r JOIN llm_requests q ON q.run_id = r.id
		WHERE r.bulk_id = $1 AND q.service_tier = 'batch'`, bulk.ID)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		var model string
		var u analysis.Usage
		var cost *float64
		require.NoError(t, rows.Scan(&model, &u.Prompt, &u.CachedRead, &u.Completion, &cost))
		want, ok := pricing.Default().Cost(model, pricing.TierBatch, u)
		require.True(t, ok, "model %s has a batch price", model)
		standard, _ := pricing.Default().Cost(model, "default", u)
		require.NotNil(t, cost, "a batch request is priced")
		require.InDelta(t, want, *cost, 1e-12)
		require.Less(t, *cost, standard, "the batch price is below the live one")
		n++
	}
	require.NoError(t, rows.Err())
	require.NotZero(t, n)
}

// TestBatchReanalysisStoresResultsLikeLiveRuns: every run's answer comes
// from the batch, is stored as a live one is (the document shows it, the
// call is finalized, deliveries go out), its request is recorded at the
// batch tier, and nothing is sent live.
func TestBatchReanalysisStoresResultsLikeLiveRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupBatch(t)
	ids := b.ingestDone(t, 3)
	liveDocs := map[uuid.UUID]*calldoc.Document{}
	for _, id := range ids {
		c, err := store.GetCall(ctx, b.pool, id.String())
		require.NoError(t, err)
		liveDocs[id], err = calldoc.Build(ctx, b.pool, c, calldoc.Options{})
		require.NoError(t, err)
	}
	liveBefore, _ := requestsOf(b.llm)
	require.Equal(t, 6, liveBefore)
	require.Eventually(t, func() bool { return b.delivered.Load() == 3 }, 20*time.Second, 20*time.Millisecond)

	bulk := b.submit(t)
	batches := b.waitBatches(t, bulk)
	require.Len(t, batches, 1)
	bt := batches[0]
	require.Equal(t, "completed", *bt.Status)
	require.Equal(t, 6, bt.Requests)
	require.Equal(t, 6, bt.Answered)
	require.Zero(t, bt.Errored+bt.Resubmitted+bt.Live)

	live, batched := requestsOf(b.llm)
	require.Equal(t, liveBefore, live, "nothing sent live")
	require.Equal(t, 6, batched)
	require.Len(t, b.llm.Batches(), 1)
	require.Equal(t, fmt.Sprint(bt.ID), b.llm.Batches()[0].Metadata["postcall_batch"])

	for run, reqs := range b.tiers(t, bulk) {
		require.Equal(t, []string{"initial/batch"}, reqs, "run %d", run)
	}
	b.requireBatchPrices(t, bulk)
	for _, id := range ids {
		c := b.waitDone(t, id)
		doc, err := calldoc.Build(ctx, b.pool, c, calldoc.Options{})
		require.NoError(t, err)
		live := liveDocs[id]
		var bulkRun *int64
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT bulk_id FROM analysis_runs WHERE id = $1`, *c.AnalysisRunID).Scan(&bulkRun))
		require.Equal(t, bulk.ID, *bulkRun, "the current run is the batch's")
		require.Equal(t, store.RunSucceeded, doc.Analysis.Status)
		require.JSONEq(t, string(live.Analysis.Fields), string(doc.Analysis.Fields), "the batch answer equals the live one")
		require.JSONEq(t, string(live.QC.Items), string(doc.QC.Items))
		require.Equal(t, live.QC.Score, doc.QC.Score)
		require.Equal(t, live.Disposition, doc.Disposition)
		require.Equal(t, store.StateDone, doc.State)
	}
	require.Eventually(t, func() bool { return b.delivered.Load() == 6 }, 20*time.Second, 20*time.Millisecond,
		"every finalized call is delivered again")
	var answers int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM llm_batch_items WHERE answer IS NOT NULL`).Scan(&answers))
	require.Zero(t, answers, "answers are dropped once their runs finished")
	var finished *time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT finished_at FROM bulk_reanalyses WHERE id = $1`, bulk.ID).Scan(&finished))
	require.NotNil(t, finished)
}

// TestBatchErrorLineAndInvalidAnswer: a run with an error line is sent
// live; an invalid batch answer gets its repair request live; both end
// like live runs.
func TestBatchErrorLineAndInvalidAnswer(t *testing.T) {
	t.Parallel()
	b := setupBatch(t)
	b.ingestDone(t, 2)
	liveBefore, _ := requestsOf(b.llm)
	b.llm.ScriptBatches(openaitest.BatchScript{Polls: 1, Errors: map[int]openaitest.Responder{
		0: openaitest.ServerError(), 1: openaitest.SchemaViolation(),
	}})

	bulk := b.submit(t)
	bt := b.waitBatches(t, bulk)[0]
	require.Equal(t, 4, bt.Requests)
	require.Equal(t, 3, bt.Answered)
	require.Equal(t, 1, bt.Errored)
	require.Equal(t, 1, bt.Live)

	live, batched := requestsOf(b.llm)
	require.Equal(t, 4, batched)
	require.Equal(t, liveBefore+2, live, "the errored run live, and one repair")
	var seen []string
	for _, reqs := range b.tiers(t, bulk) {
		seen = append(seen, fmt.Sprint(reqs))
	}
	require.ElementsMatch(t, []string{"[initial/default]", "[initial/batch repair/default]", "[initial/batch]", "[initial/batch]"}, seen)
	failed, err := store.BulkFailures(context.Background(), b.pool, bulk.ID)
	require.NoError(t, err)
	require.Zero(t, failed)
}

// TestExpiredBatchIsResubmittedOnce: the runs an expired batch did not
// answer go into one more batch (and live when that one expires too); an
// answered run is never sent again.
func TestExpiredBatchIsResubmittedOnce(t *testing.T) {
	t.Parallel()
	b := setupBatch(t)
	b.ingestDone(t, 2)
	liveBefore, _ := requestsOf(b.llm)
	b.llm.ScriptBatches(openaitest.BatchScript{Status: "expired", Answered: 1}, openaitest.BatchScript{Status: "expired", Answered: 2})

	bulk := b.submit(t)
	batches := b.waitBatches(t, bulk)
	require.Len(t, batches, 2)
	first, second := batches[0], batches[1]
	require.Equal(t, "expired", *first.Status)
	require.Equal(t, 4, first.Requests)
	require.Equal(t, 1, first.Answered)
	require.Equal(t, 3, first.Resubmitted)
	require.Equal(t, 2, second.Attempt)
	require.Equal(t, 3, second.Requests)
	require.Equal(t, 2, second.Answered)
	require.Equal(t, 1, second.Live, "expired twice: sent live")

	live, batched := requestsOf(b.llm)
	require.Equal(t, 3, batched, "1 + 2 answered through batches; unsent lines cost nothing")
	require.Equal(t, liveBefore+1, live)
	for run, reqs := range b.tiers(t, bulk) {
		require.Len(t, reqs, 1, "run %d paid once", run)
	}
}

// TestFailedBatchRunsLive: a failed batch's runs are all sent live.
func TestFailedBatchRunsLive(t *testing.T) {
	t.Parallel()
	b := setupBatch(t)
	b.ingestDone(t, 2)
	liveBefore, _ := requestsOf(b.llm)
	b.llm.ScriptBatches(openaitest.BatchScript{Status: "failed", FailReason: "quota for batch exceeded"})

	bulk := b.submit(t)
	bt := b.waitBatches(t, bulk)[0]
	require.Equal(t, "failed", *bt.Status)
	require.Equal(t, 4, bt.Live)
	require.Zero(t, bt.Answered)
	require.Contains(t, *bt.Error, "quota for batch exceeded")
	live, _ := requestsOf(b.llm)
	require.Equal(t, liveBefore+4, live)
	var why string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT error FROM llm_batch_items LIMIT 1`).Scan(&why))
	require.Contains(t, why, "failed without answering it; sent live")
}

// TestBatchSurvivesAWorkerRestart: a worker stopped while its batch runs
// is replaced by another, which resumes polling from the tables: the batch
// is not created again and no run pays twice.
func TestBatchSurvivesAWorkerRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupBatch(t)
	b.ingestDone(t, 2)
	b.llm.HoldBatches(true)
	bulk := b.submit(t)
	require.Eventually(t, func() bool {
		batches, err := b.enqueuer.BulkBatches(ctx, bulk.ID)
		require.NoError(t, err)
		return len(batches) == 1 && batches[0].State == store.BatchSubmitted && batches[0].Status != nil && *batches[0].Status == "in_progress"
	}, 20*time.Second, 20*time.Millisecond)
	stopWorker(b.app)

	// A crash between creating the batch and recording it: the next
	// worker finds the batch by its input file instead of creating another.
	_, err := b.pool.Exec(ctx, `UPDATE llm_batches SET state = 'uploaded', provider_batch_id = NULL WHERE bulk_id = $1`, bulk.ID)
	require.NoError(t, err)
	b.llm.HoldBatches(false)
	b.start(t)

	bt := b.waitBatches(t, bulk)[0]
	require.Equal(t, 4, bt.Answered)
	require.Len(t, b.llm.Batches(), 1, "one batch, found again after the restart")
	require.Len(t, b.llm.Batches()[0].ID, len(*bt.ProviderBatchID))
	_, batched := requestsOf(b.llm)
	require.Equal(t, 4, batched)
	for run, reqs := range b.tiers(t, bulk) {
		require.Equal(t, []string{"initial/batch"}, reqs, "run %d", run)
	}
}

// TestBatchAnswerIsRecordedOnce: a run whose live repair of an invalid
// batch answer fails for now is retried from the same batch answer: the
// batch request is recorded once, and the initial request is not sent
// again.
func TestBatchAnswerIsRecordedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupBatch(t)
	b.ingestDone(t, 1)
	b.llm.HoldBatches(true)
	b.llm.ScriptBatches(openaitest.BatchScript{Errors: map[int]openaitest.Responder{0: openaitest.SchemaViolation()}})
	bulk := b.submit(t)
	require.Eventually(t, func() bool {
		batches, err := b.enqueuer.BulkBatches(ctx, bulk.ID)
		require.NoError(t, err)
		return batches[0].State == store.BatchSubmitted
	}, 20*time.Second, 20*time.Millisecond)
	stopWorker(b.app)
	b.llm.HoldBatches(false)
	// Dispatch by hand: the runs' jobs are enqueued but no worker runs them.
	done, err := b.app.Batches.Advance(ctx, mustOneBatch(t, b, bulk))
	require.NoError(t, err)
	require.False(t, done)

	rows, err := b.pool.Query(ctx, `SELECT id FROM analysis_runs WHERE bulk_id = $1 ORDER BY id`, bulk.ID)
	require.NoError(t, err)
	runs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	require.Len(t, runs, 2)
	liveBefore, _ := requestsOf(b.llm)
	// The provider's suggested wait is over MaxRetryWait: the run ends with
	// a transient error at the first failure.
	b.llm.Script(openaitest.ServerError())
	_, err = b.pipeline.Execute(ctx, b.pool, runs[0])
	var transient *pipeline.TransientError
	require.ErrorAs(t, err, &transient)
	_, err = b.pipeline.Execute(ctx, b.pool, runs[0])
	require.NoError(t, err)
	live, _ := requestsOf(b.llm)
	require.Equal(t, liveBefore+2, live, "a failed repair and an answered one; the initial request never live")
	require.Equal(t, []string{"initial/batch", "repair/-", "repair/default"}, b.tiers(t, bulk)[runs[0]])
}

func mustOneBatch(t *testing.T, b *batchBundle, bulk *store.Bulk) int64 {
	t.Helper()
	batches, err := b.enqueuer.BulkBatches(context.Background(), bulk.ID)
	require.NoError(t, err)
	require.Len(t, batches, 1)
	return batches[0].ID
}

// TestBatchIsSplitAtItsLimits: a batch over MaxRequests goes out as
// several, each with its own job.
func TestBatchIsSplitAtItsLimits(t *testing.T) {
	t.Parallel()
	b := setupBatch(t)
	b.ingestDone(t, 3)
	// 6 runs, at most 4 requests a batch (the default is OpenAI's 50,000).
	b.app.Batches.MaxRequests = 4
	bulk := b.submit(t)
	batches := b.waitBatches(t, bulk)
	require.Len(t, batches, 2)
	require.Equal(t, 4, batches[0].Requests)
	require.Equal(t, 2, batches[1].Requests)
	require.Equal(t, 1, batches[1].Attempt)
	require.Len(t, b.llm.Batches(), 2)
	for _, bi := range b.llm.Batches() {
		require.LessOrEqual(t, bi.Lines, 4)
	}
}
