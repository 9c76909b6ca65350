package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// TestSoftDeleteAndRestoreWindow: delete and restore inside the window,
// refused restore past it (unless held), hard delete after it, and the
// call then not found while its audit stays.
func TestSoftDeleteAndRestoreWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "win", "retention: {hard_delete_after_days: 7}")
	calls := b.seedMany(t, 3, func(int) (string, seedOpts) { return "win", seedOpts{endedAgo: time.Hour, recording: true} })
	c := calls[0]

	res, err := b.svc.Delete(ctx, c.callID)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, b.now.AddDate(0, 0, 7), *res.HardDeleteAt)
	got, err := store.GetCall(ctx, b.pool, c.callID)
	require.NoError(t, err)
	require.NotNil(t, got.DeletedAt, "a soft-deleted call is still readable, marked deleted")

	again, err := b.svc.Delete(ctx, c.callID)
	require.NoError(t, err)
	require.False(t, again.Changed)

	// Six days later: still restorable.
	b.now = b.now.Add(6 * day)
	restored, err := b.svc.Restore(ctx, c.callID)
	require.NoError(t, err)
	require.True(t, restored.Changed)
	require.Nil(t, restored.DeletedAt)
	noop, err := b.svc.Restore(ctx, c.callID)
	require.NoError(t, err)
	require.False(t, noop.Changed)

	// Deleted again, then eight days pass: past the window.
	_, err = b.svc.Delete(ctx, c.callID)
	require.NoError(t, err)
	_, err = b.svc.Delete(ctx, calls[1].callID)
	require.NoError(t, err)
	b.now = b.now.Add(8 * day)
	_, err = b.svc.Restore(ctx, c.callID)
	require.ErrorIs(t, err, retention.ErrPastWindow)

	// A held call is not hard-deleted, so it can still be restored.
	_, err = b.svc.HoldCall(ctx, calls[1].callID, "case 3")
	require.NoError(t, err)
	rep, err := b.svc.HardDelete(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Deleted)
	require.Equal(t, 1, rep.SkippedHold)
	heldBack, err := b.svc.Restore(ctx, calls[1].callID)
	require.NoError(t, err)
	require.True(t, heldBack.Changed)
	require.True(t, heldBack.OnHold)

	_, err = store.GetCall(ctx, b.pool, c.callID)
	require.ErrorIs(t, err, store.ErrNotFound, "show says not found")
	_, err = b.svc.Restore(ctx, c.callID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, 1, b.drain(t))
	require.False(t, b.s3.exists(t, c.recordingKey))
	require.True(t, b.s3.exists(t, calls[2].recordingKey))
	require.Empty(t, b.found(t, markersOf(calls[:1])))

	audit, err := retention.CallAudit(ctx, b.pool, c.callID)
	require.NoError(t, err)
	var actions []string
	for _, a := range audit {
		actions = append(actions, string(a.Action)+"/"+a.Reason)
	}
	require.Equal(t, []string{"soft_delete/operator", "restore/operator", "soft_delete/operator", "hard_delete/policy"}, actions)
	require.Contains(t, audit[3].Removed, "call")
	require.Contains(t, audit[3].Removed, "transcript")
	require.Contains(t, audit[3].Removed, "recording")
}

// TestHolds sets and clears holds on calls and agents, idempotently, and
// lists them; every change is audited.
func TestHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "h1", "")
	b.applyPlan(t, "h2", "")
	calls := b.seedMany(t, 2, func(i int) (string, seedOpts) { return []string{"h1", "h2"}[i], seedOpts{} })

	changed, err := b.svc.HoldCall(ctx, calls[0].callID, "case 42")
	require.NoError(t, err)
	require.True(t, changed)
	changed, err = b.svc.HoldCall(ctx, calls[0].id.String(), "case 43")
	require.NoError(t, err)
	require.False(t, changed, "already held: the first reason stays")
	changed, err = b.svc.HoldAgent(ctx, "h2", "case 44")
	require.NoError(t, err)
	require.True(t, changed)

	holds, err := retention.ListHolds(ctx, b.pool)
	require.NoError(t, err)
	require.Len(t, holds, 2)
	require.Equal(t, "h2", holds[0].AgentID)
	require.Nil(t, holds[0].CallID)
	require.Equal(t, calls[0].callID, *holds[1].CallID)
	require.Equal(t, "case 42", *holds[1].Reason)

	changed, err = b.svc.ReleaseCall(ctx, calls[0].callID)
	require.NoError(t, err)
	require.True(t, changed)
	changed, err = b.svc.ReleaseCall(ctx, calls[0].callID)
	require.NoError(t, err)
	require.False(t, changed)
	changed, err = b.svc.ReleaseAgent(ctx, "h2")
	require.NoError(t, err)
	require.True(t, changed)
	holds, err = retention.ListHolds(ctx, b.pool)
	require.NoError(t, err)
	require.Empty(t, holds)

	_, err = b.svc.HoldAgent(ctx, "nobody", "")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.svc.HoldCall(ctx, "nothing", "")
	require.ErrorIs(t, err, store.ErrNotFound)

	var events []string
	rows, err := b.pool.Query(ctx, `SELECT action || ':' || agent_id || ':' || COALESCE(call_id, '*') FROM retention_audit ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var e string
		require.NoError(t, rows.Scan(&e))
		events = append(events, e)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{
		"hold_set:h1:" + calls[0].callID, "hold_set:h2:*", "hold_clear:h1:" + calls[0].callID, "hold_clear:h2:*",
	}, events)
}
