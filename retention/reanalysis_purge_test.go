package retention_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// TestPurgeDuringPendingReanalysisKeepsResults: a finished call is
// reanalysed while no worker runs, then erased by phone; the pending runs can
// never run (the transcript is gone). The purge supersedes them and the call
// stays done with the results of its last finished runs; when a worker later
// works the superseded runs' jobs, it sends nothing and changes nothing.
// Before the fix the worker failed the runs and finalized the call as failed
// with its disposition, success and score gone, for good.
func TestPurgeDuringPendingReanalysisKeepsResults(t *testing.T) {
	t.Parallel()
	for _, kinds := range []struct {
		name  string
		kinds pipeline.Kinds
	}{{"all", pipeline.AllKinds}, {"qc", pipeline.Kinds{QC: true}}, {"analysis", pipeline.Kinds{Analysis: true}}} {
		t.Run(kinds.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			b.applyPlan(t, "again", "")
			llm := openaitest.NewServer(t, openaitest.WithDefault(func(req *openaitest.Request) openaitest.Reply {
				if isQCRequest(req) {
					return openaitest.Reply{Content: `{"greeting": {"passed": true, "evidence": "said hello"}}`}
				}
				return openaitest.Reply{Content: `{"summary": "S", "outcome": "declined", "email": "e@example.com", "topic": "pricing"}`}
			}))
			model, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: llm.URL, APIKey: llm.APIKey, MaxRetryWait: time.Millisecond})
			require.NoError(t, err)
			p := &pipeline.Service{Analyzer: &analysis.Analyzer{Model: model, DefaultModel: "gpt-4.1-mini"}}

			id, phone := ingestAndStart(t, b, p, store.TriggerIngest, pipeline.AllKinds, uuid.Nil)
			before, err := store.GetCall(ctx, b.pool, id.String())
			require.NoError(t, err)
			require.Equal(t, store.StateDone, before.State)
			require.Equal(t, "declined", *before.Disposition)
			require.Equal(t, 10, *before.FinalScore)

			// The worker is stopped: reanalyze, then erase by phone.
			ingestAndStart(t, b, p, store.TriggerReanalyze, kinds.kinds, id)
			rep, err := b.svc.ErasePhone(ctx, phone, retention.RunOptions{})
			require.NoError(t, err)
			require.Equal(t, 1, rep.Purged)
			assertKept := func(when string) {
				t.Helper()
				c, err := store.GetCall(ctx, b.pool, id.String())
				require.NoError(t, err)
				require.True(t, c.IsPurged)
				require.True(t, c.Done, when)
				require.Equal(t, store.StateDone, c.State, when)
				require.Equal(t, "declined", *c.Disposition, when)
				require.Equal(t, 10, *c.FinalScore, when)
				require.True(t, *c.QCPassed, when)
				require.Nil(t, c.CallSummary, when)
				require.Equal(t, *before.AnalysisRunID, *c.AnalysisRunID, "%s: the last finished analysis is current again", when)
				require.Equal(t, *before.QCRunID, *c.QCRunID, "%s: the last finished QC is current again", when)
				runs, err := store.GetRuns(ctx, b.pool, *c.AnalysisRunID)
				require.NoError(t, err)
				require.JSONEq(t, `{"summary": null, "outcome": "declined", "email": null, "topic": "pricing"}`,
					string(runs[*c.AnalysisRunID].Output), "%s: non-pii fields are kept", when)
			}
			assertKept("after the purge")

			// The worker starts and works the superseded runs' jobs.
			sent := llm.Len()
			all, err := store.CallRuns(ctx, b.pool, id)
			require.NoError(t, err)
			for _, r := range all {
				require.True(t, r.Terminal(), "run %d (%s, %s) is %s", r.ID, r.Kind, r.Trigger, r.Status)
				require.NoError(t, executeRun(ctx, p, b.pool, r.ID))
			}
			require.Equal(t, sent, llm.Len(), "a superseded run sends nothing")
			assertKept("after the worker worked the jobs")
		})
	}
}

// ingestAndStart stores a call with a phone number (id uuid.Nil) or locks
// the stored call id, starts runs with the trigger and kinds, and for an
// ingest executes them (the worker runs); a reanalysis stays pending (the
// worker is stopped). It returns the call's id and phone number.
func ingestAndStart(t *testing.T, b *testBundle, p *pipeline.Service, trigger string, kinds pipeline.Kinds, id uuid.UUID) (uuid.UUID, string) {
	t.Helper()
	ctx := context.Background()
	phone := "+15557770001"
	var started *pipeline.Started
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if id == uuid.Nil {
			dur := 60.0
			rec := &call.Record{
				CallID: "call-" + uuid.NewString(), AgentID: "again", EndedAt: b.now.Add(-time.Minute),
				EndedReason: "customer-ended-call", Duration: &dur, PhoneNumber: phone,
				Transcript: []call.Turn{{Role: call.RoleAgent, Text: "Hello."}, {Role: call.RoleUser, Text: "No thanks."}},
			}
			var err error
			if id, _, err = store.InsertCall(ctx, tx, store.NewCall{Record: rec, PhoneKey: call.NormalizePhone(phone)}); err != nil {
				return err
			}
		}
		c, err := store.LockCall(ctx, tx, id)
		require.NoError(t, err)
		plan, version, err := store.CurrentPlan(ctx, tx, "again")
		require.NoError(t, err)
		started, err = p.Start(ctx, tx, c, plan, version, trigger, kinds)
		return err
	}))
	if trigger == store.TriggerIngest {
		for _, r := range started.Runs {
			require.NoError(t, executeRun(ctx, p, b.pool, r.ID))
		}
	}
	return id, phone
}

// isQCRequest tells a QC request from an analysis one by its schema.
func isQCRequest(req *openaitest.Request) bool {
	var schema struct {
		Properties map[string]any `json:"properties"`
	}
	_ = json.Unmarshal(req.Schema(), &schema)
	_, ok := schema.Properties["greeting"]
	return ok
}
