package retention_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// TestPurgeWhileRunsTalkToTheModel: analysis and QC runs are waiting for the
// model when their call is purged; the model then answers with personal
// data. The runs store their results after the purge, and none of that
// personal data may stay: pipeline's storeResult purges it in the same
// transaction, before finalization copies the summary, and the call keeps
// its disposition and score as a purged call does.
func TestPurgeWhileRunsTalkToTheModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "live", "retention: {purge_after_days: 0}")

	const tag = "live-00001"
	mark := func(kind string) string { return kind + "-" + tag }
	arrived := make(chan string, 2)
	release := make(chan struct{})
	llm := openaitest.NewServer(t, openaitest.WithDefault(func(req *openaitest.Request) openaitest.Reply {
		var schema struct {
			Properties map[string]any `json:"properties"`
		}
		_ = json.Unmarshal(req.Schema(), &schema)
		_, isQC := schema.Properties["greeting"]
		kind := map[bool]string{true: "qc", false: "analysis"}[isQC]
		arrived <- kind
		<-release
		if isQC {
			return openaitest.Reply{Content: fmt.Sprintf(`{"greeting": {"passed": true, "evidence": "said %s"}}`, mark("EVIDENCE"))}
		}
		return openaitest.Reply{Content: fmt.Sprintf(`{"summary": %q, "outcome": "agreed", "email": %q, "topic": "pricing"}`,
			mark("SUMMARY"), mark("PII")+"@example.com")}
	}))
	model, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: llm.URL, APIKey: llm.APIKey, MaxRetryWait: time.Millisecond})
	require.NoError(t, err)
	p := &pipeline.Service{Analyzer: &analysis.Analyzer{Model: model, DefaultModel: "gpt-4.1-mini"}}

	dur := 60.0
	rec := &call.Record{
		CallID: "call-" + tag, AgentID: "live", EndedAt: b.now.Add(-time.Minute), EndedReason: "customer-ended-call",
		Duration: &dur, PhoneNumber: "+15550000001", CustomerName: mark("NAME"),
		Transcript: []call.Turn{
			{Role: call.RoleAgent, Text: "Hello, this is ACME."},
			{Role: call.RoleUser, Text: "Hi, I am " + mark("TRANSCRIPT")},
		},
	}
	var started *pipeline.Started
	var callID fmt.Stringer
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		id, _, err := store.InsertCall(ctx, tx, store.NewCall{Record: rec, PhoneKey: call.NormalizePhone(rec.PhoneNumber)})
		require.NoError(t, err)
		callID = id
		c, err := store.LockCall(ctx, tx, id)
		require.NoError(t, err)
		plan, version, err := store.CurrentPlan(ctx, tx, "live")
		require.NoError(t, err)
		started, err = p.Start(ctx, tx, c, plan, version, store.TriggerIngest, pipeline.AllKinds)
		return err
	}))
	require.Len(t, started.Runs, 2)

	done := make(chan error, 2)
	for _, r := range started.Runs {
		go func() { done <- executeRun(ctx, p, b.pool, r.ID) }()
	}
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the runs never reached the model")
		}
	}
	rep, err := b.svc.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Purged, "the call is purged while both runs wait for the model")
	close(release)
	for range 2 {
		require.NoError(t, <-done)
	}

	c, err := store.GetCall(ctx, b.pool, callID.String())
	require.NoError(t, err)
	require.True(t, c.IsPurged)
	require.True(t, c.Done)
	require.Equal(t, store.StateDone, c.State)
	require.Equal(t, "agreed", *c.Disposition, "the disposition survives")
	require.Equal(t, 10, *c.FinalScore, "the score survives")
	require.Nil(t, c.CallSummary, "the summary never comes back")
	runs, err := store.CallRuns(ctx, b.pool, c.ID)
	require.NoError(t, err)
	for _, r := range runs {
		require.Equal(t, store.RunSucceeded, r.Status)
		if r.Kind == store.KindAnalysis {
			require.JSONEq(t, `{"summary": null, "outcome": "agreed", "email": null, "topic": "pricing"}`, string(r.Output))
		} else {
			require.JSONEq(t, `[{"id": "greeting", "passed": true, "evidence": null}]`, string(r.Output))
		}
	}
	require.Empty(t, b.found(t, []string{mark("SUMMARY"), mark("PII"), mark("EVIDENCE"), mark("TRANSCRIPT"), mark("NAME"), "+15550000001"}))

	audit, err := retention.CallAudit(ctx, b.pool, c.ID.String())
	require.NoError(t, err)
	require.Equal(t, retention.ReasonPolicy, audit[0].Reason)
	var late []string
	for _, a := range audit[1:] {
		require.Equal(t, retention.ReasonLateResult, a.Reason)
		late = append(late, a.Removed...)
	}
	require.ElementsMatch(t, []string{"analysis.email", "analysis.summary", "qc.evidence"}, late,
		"each late result is audited with what was removed from it")
}

// executeRun works a run as its job does (jobs.RunWorker), without the job:
// it performs the run, then stores its result in a transaction of its own
// (the failed result Unstorable gives when the database refuses it for
// good).
func executeRun(ctx context.Context, p *pipeline.Service, pool *pgxpool.Pool, runID int64) error {
	done, err := p.Execute(ctx, pool, runID)
	if err != nil {
		return err
	}
	store := func(e *pipeline.Executed) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := p.Store(ctx, tx, e)
			return err
		})
	}
	err = store(done)
	if failed, ok := p.Unstorable(ctx, done, err); ok {
		err = store(failed)
	}
	return err
}
