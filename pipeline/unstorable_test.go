package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

const unstorablePlan = `
id: unstorable
analysis:
  prompt: "Review the call."
  fields:
    - {name: outcome, type: enum, values: [agreed, declined]}
  disposition_field: outcome
`

// startUnstorable stores a call of the plan above with a pending analysis
// run, against a fake model, and returns the run and the pipeline.
func startUnstorable(t *testing.T) (*pipelineBundle, int64) {
	t.Helper()
	ctx := context.Background()
	pool, _ := dbtest.Schema(t)
	llm := openaitest.NewServer(t)
	model, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: llm.URL, APIKey: llm.APIKey, MaxRetryWait: time.Millisecond})
	require.NoError(t, err)
	p := &pipeline.Service{Analyzer: &analysis.Analyzer{Model: model, DefaultModel: "gpt-4.1-mini"}}
	plans, err := agent.ParsePlans([]byte(unstorablePlan))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, pool, &plans[0])
	require.NoError(t, err)
	dur := 60.0
	rec := &call.Record{CallID: "unstorable-1", AgentID: "unstorable", EndedAt: time.Now().Add(-time.Hour),
		EndedReason: "customer-ended-call", Duration: &dur,
		Transcript: []call.Turn{{Role: call.RoleAgent, Text: "Hello."}, {Role: call.RoleUser, Text: "Yes, I agree."}}}
	var started *pipeline.Started
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		id, _, err := store.InsertCall(ctx, tx, store.NewCall{Record: rec})
		require.NoError(t, err)
		c, err := store.LockCall(ctx, tx, id)
		require.NoError(t, err)
		plan, version, err := store.CurrentPlan(ctx, tx, "unstorable")
		require.NoError(t, err)
		started, err = p.Start(ctx, tx, c, plan, version, store.TriggerIngest, pipeline.AllKinds)
		return err
	}))
	require.Len(t, started.Runs, 1)
	return &pipelineBundle{pool: pool, svc: p, llm: llm}, started.Runs[0].ID
}

type pipelineBundle struct {
	pool interface {
		store.DBTX
		Begin(ctx context.Context) (pgx.Tx, error)
	}
	svc *pipeline.Service
	llm *openaitest.Server
}

// requests counts the run's llm_requests rows.
func (b *pipelineBundle) requests(t *testing.T, runID int64) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM llm_requests WHERE run_id = $1`, runID).Scan(&n))
	return n
}

// TestResultThatCannotBeStoredIsNotPaidTwice: the database refuses a run's
// result for good (a constraint: what an overflowing QC score did). The run
// fails with that reason on record, its job completes, the call is
// finalized failed, and working the job again sends nothing: before, every
// River retry paid the model again and the call stayed processing.
func TestResultThatCannotBeStoredIsNotPaidTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, runID := startUnstorable(t)
	_, err := b.pool.Exec(ctx, `
		CREATE FUNCTION refuse_result() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.status = 'succeeded' THEN
				RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_result BEFORE UPDATE ON analysis_runs FOR EACH ROW EXECUTE FUNCTION refuse_result()`)
	require.NoError(t, err)

	for attempt := range 3 {
		completed := false
		err := execute(ctx, b.svc, b.pool, runID, func(context.Context, pgx.Tx) error { completed = true; return nil })
		require.NoError(t, err, "attempt %d: a result that can never be stored is a failed run, not a retry", attempt)
		require.True(t, completed, "attempt %d: the job completes", attempt)
		require.Equal(t, 1, b.llm.Len(), "attempt %d: the model is paid once", attempt)
		require.Equal(t, 1, b.requests(t, runID), "attempt %d: one llm_requests row", attempt)
	}
	run, c, err := store.GetRunWithCall(ctx, b.pool, runID)
	require.NoError(t, err)
	require.Equal(t, store.RunFailed, run.Status)
	require.Contains(t, *run.Error, "the result could not be stored")
	require.Contains(t, *run.Error, "23514")
	require.True(t, c.Done)
	require.Equal(t, store.StateFailed, c.State)
}

// TestRetryAfterAStorageErrorUsesTheStoredAnswer: storing the result fails
// once for a reason that passes (a serialization failure); the job's retry
// stores the answer the model already gave, without asking again.
func TestRetryAfterAStorageErrorUsesTheStoredAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, runID := startUnstorable(t)
	_, err := b.pool.Exec(ctx, `
		CREATE SEQUENCE refusals;
		CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.status = 'succeeded' AND nextval('refusals') = 1 THEN
				RAISE EXCEPTION 'refused once by the test' USING ERRCODE = 'serialization_failure';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_once BEFORE UPDATE ON analysis_runs FOR EACH ROW EXECUTE FUNCTION refuse_once()`)
	require.NoError(t, err)

	require.Error(t, execute(ctx, b.svc, b.pool, runID, nil), "the first attempt fails: River retries it")
	require.NoError(t, execute(ctx, b.svc, b.pool, runID, nil))
	require.Equal(t, 1, b.llm.Len(), "the retry does not ask the model again")
	require.Equal(t, 1, b.requests(t, runID))
	run, c, err := store.GetRunWithCall(ctx, b.pool, runID)
	require.NoError(t, err)
	require.Equal(t, store.RunSucceeded, run.Status)
	require.Equal(t, store.StateDone, c.State)
	require.NotNil(t, c.Disposition)
}

// TestProviderTextWithNULIsStored: a provider's error message with a NUL
// (PostgreSQL's text refuses it) is stored without it: the failed run and
// its paid request are on record at the first attempt.
func TestProviderTextWithNULIsStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, runID := startUnstorable(t)
	b.llm.SetDefault(openaitest.Status(400, "invalid_request_error", "bad\x00code", "bad \x00 request \xff"))
	require.NoError(t, execute(ctx, b.svc, b.pool, runID, nil))
	run, err := store.GetRun(ctx, b.pool, runID)
	require.NoError(t, err)
	require.Equal(t, store.RunFailed, run.Status)
	require.NotContains(t, *run.Error, "\x00")
	require.Equal(t, 1, b.requests(t, runID))
}

// execute works a run as its job does (jobs.RunWorker): it performs the
// run, then stores its result in a transaction that also calls complete
// (the job's completion; nil for none), and stores the failed result
// Unstorable gives instead when the database refuses it for good.
func execute(ctx context.Context, svc *pipeline.Service, db pipeline.DB, runID int64, complete func(context.Context, pgx.Tx) error) error {
	done, err := svc.Execute(ctx, db, runID)
	if err != nil {
		return err
	}
	store := func(e *pipeline.Executed) error {
		return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			if complete != nil {
				if err := complete(ctx, tx); err != nil {
					return err
				}
			}
			_, err := svc.Store(ctx, tx, e)
			return err
		})
	}
	err = store(done)
	if failed, ok := svc.Unstorable(ctx, done, err); ok {
		err = store(failed)
	}
	return err
}
