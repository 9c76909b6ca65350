package calldoc_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/store"
)

// setupTx gives a test a rolled-back transaction holding the agent "sales".
func setupTx(t *testing.T) pgx.Tx {
	t.Helper()
	tx := dbtest.Tx(t)
	plans, err := agent.ParsePlans([]byte("id: sales\n"))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(context.Background(), tx, &plans[0])
	require.NoError(t, err)
	return tx
}

var seq atomic.Int64

// insert stores a call created at the given time and returns its id.
func insert(t *testing.T, tx pgx.Tx, createdAt time.Time, mutate func(*call.Record)) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	rec := &call.Record{
		CallID: fmt.Sprintf("doc-%d", seq.Add(1)), AgentID: "sales", EndedReason: "customer-ended-call",
		EndedAt: createdAt, PhoneNumber: "+15550100001",
	}
	if mutate != nil {
		mutate(rec)
	}
	id, inserted, err := store.InsertCall(ctx, tx, store.NewCall{Record: rec, PhoneKey: call.NormalizePhone(rec.PhoneNumber)})
	require.NoError(t, err)
	require.True(t, inserted)
	_, err = tx.Exec(ctx, `UPDATE calls SET created_at = $2 WHERE id = $1`, id, createdAt)
	require.NoError(t, err)
	return id
}

func TestListItemDerivesStatusLikeTheDocument(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := setupTx(t)
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		mutate func(*call.Record)
	}{
		{"status given", func(r *call.Record) { r.Status = "completed" }},
		{"catalogued reason", func(r *call.Record) { r.EndedReason = "voicemail" }},
		{"unknown reason, customer spoke", func(r *call.Record) {
			r.EndedReason = "weird-reason"
			r.Transcript = []call.Turn{{Role: call.RoleAgent, Text: "Hello"}, {Role: call.RoleUser, Text: "Hi"}}
		}},
		{"unknown reason, customer silent", func(r *call.Record) {
			r.EndedReason = "weird-reason"
			r.Transcript = []call.Turn{{Role: call.RoleAgent, Text: "Hello"}, {Role: call.RoleUser, Text: "  "}}
		}},
	} {
		id := insert(t, tx, at, tc.mutate)
		c, err := store.GetCall(ctx, tx, id.String())
		require.NoError(t, err, tc.name)
		doc, err := calldoc.Build(ctx, tx, c, calldoc.Options{})
		require.NoError(t, err, tc.name)
		item, err := store.GetListItem(ctx, tx, id)
		require.NoError(t, err, tc.name)
		require.Equal(t, doc.Status, item.Status, tc.name)
		require.Equal(t, doc.DisconnectedBy, item.DisconnectedBy, tc.name)
		require.Equal(t, doc.EndedReasonLabel, item.EndedReasonLabel, tc.name)
		// The list reads fewer columns (no transcript) but must derive
		// every key of the item as the document does.
		require.Equal(t, doc.ListItem, *item, tc.name)
	}
}
