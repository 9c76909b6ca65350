package store

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/call"
)

// TestCallReferenceIDWins: with a call whose call_id equals another call's
// id (stored before ingest refused such call_ids), the reference names the
// call with that id, every time and in every lookup (GetCall, LockCall's
// path, the head read); NUL or invalid UTF-8 names no call (PostgreSQL
// refused the bytes: a 500).
func TestCallReferenceIDWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupList(t)
	now := time.Now()
	// The impostor is stored first, so a lookup without an order meets it
	// first.
	impostor := b.insert(t, now, nil)
	target := b.insert(t, now, nil)
	_, err := b.tx.Exec(ctx, `UPDATE calls SET call_id = $2 WHERE id = $1`, impostor, target.String())
	require.NoError(t, err)
	// Updating the target after the impostor puts its row version last.
	_, err = b.tx.Exec(ctx, `UPDATE calls SET updated_at = now() WHERE id = $1`, target)
	require.NoError(t, err)
	for range 5 {
		c, err := GetCall(ctx, b.tx, target.String())
		require.NoError(t, err)
		require.Equal(t, target, c.ID)
		h, err := LockCallHead(ctx, b.tx, target)
		require.NoError(t, err)
		require.Equal(t, target, h.ID)
	}
	for _, ref := range []string{"a\x00b", "\xff", "x\xc3"} {
		_, err := GetCall(ctx, b.tx, ref)
		require.ErrorIs(t, err, ErrNotFound, "%q", ref)
	}

	// Ingest refuses a call_id that is another call's id.
	rec := &call.Record{CallID: target.String(), AgentID: "sales", EndedReason: "customer-ended-call", EndedAt: now}
	_, _, err = InsertCall(ctx, b.tx, NewCall{Record: rec})
	require.ErrorIs(t, err, ErrCallIDIsAnID)
}

// TestLockCallIsByIDOnly: LockCall and LockCallHead take postcall's id.
// When no call has it (the call was hard-deleted while a job of it was
// queued), they must not find a call whose call_id is that id's text,
// which GetCall rightly finds by the reference rule.
func TestLockCallIsByIDOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupList(t)
	gone := uuid.New()
	other := b.insert(t, time.Now(), func(r *call.Record) { r.CallID = gone.String() })

	c, err := GetCall(ctx, b.tx, gone.String())
	require.NoError(t, err)
	require.Equal(t, other, c.ID)
	_, err = LockCall(ctx, b.tx, gone)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = LockCallHead(ctx, b.tx, gone)
	require.ErrorIs(t, err, ErrNotFound)
	locked, err := LockCall(ctx, b.tx, other)
	require.NoError(t, err)
	require.Equal(t, other, locked.ID)
}
