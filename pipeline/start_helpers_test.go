package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// conversation is a short call of agentID that needs model runs (two
// turns, a minute long).
func conversation(callID, agentID string) *call.Record {
	dur := 60.0
	return &call.Record{CallID: callID, AgentID: agentID, EndedReason: "customer-ended-call",
		EndedAt: time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC), Duration: &dur,
		Transcript: []call.Turn{{Role: call.RoleAgent, Text: "Hello"}, {Role: call.RoleUser, Text: "Yes please."}}}
}

// ingestAndStart stores rec and starts it with its agent's current plan,
// as ingest does.
func ingestAndStart(t *testing.T, ctx context.Context, tx pgx.Tx, svc *pipeline.Service, rec *call.Record) (uuid.UUID, *pipeline.Started) {
	t.Helper()
	id, _, err := store.InsertCall(ctx, tx, store.NewCall{Record: rec})
	require.NoError(t, err)
	c, err := store.LockCall(ctx, tx, id)
	require.NoError(t, err)
	plan, version, err := store.CurrentPlan(ctx, tx, rec.AgentID)
	require.NoError(t, err)
	started, err := svc.Start(ctx, tx, c, plan, version, store.TriggerIngest, pipeline.AllKinds)
	require.NoError(t, err)
	return id, started
}
