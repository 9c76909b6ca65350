package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// TestEraseCallWhateverItsAge: an erasure request purges a fresh call at
// once; a second request finds it purged; a held call is kept and counted.
func TestEraseCallWhateverItsAge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "erase", "retention: {purge_after_days: 365}")
	calls := b.seedMany(t, 3, func(int) (string, seedOpts) { return "erase", seedOpts{endedAgo: time.Minute, recording: true} })

	rep, err := b.svc.EraseCall(ctx, calls[0].callID, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, retention.KindErasure, rep.Kind)
	require.Equal(t, 1, rep.Purged)
	require.Equal(t, 1, rep.ObjectsQueued)
	require.Equal(t, 1, b.drain(t))
	require.False(t, b.s3.exists(t, calls[0].recordingKey))
	require.Empty(t, b.found(t, markersOf(calls[:1])))
	require.Len(t, b.found(t, calls[1].markers), len(calls[1].markers), "other calls are untouched")

	audit, err := retention.CallAudit(ctx, b.pool, calls[0].id.String())
	require.NoError(t, err)
	require.Len(t, audit, 1)
	require.Equal(t, retention.ReasonRequest, audit[0].Reason)
	run, err := retention.GetRun(ctx, b.pool, rep.RunID)
	require.NoError(t, err)
	require.Equal(t, retention.TriggerRequest, run.Trigger)
	require.JSONEq(t, `{"selector": "call"}`, string(run.Policy))

	again, err := b.svc.EraseCall(ctx, calls[0].id.String(), retention.RunOptions{})
	require.NoError(t, err)
	require.True(t, again.AlreadyPurged)
	require.Zero(t, again.Purged)

	// A legal hold wins over an erasure request: the call is kept, counted
	// and reported, until the hold is cleared.
	_, err = b.svc.HoldCall(ctx, calls[1].callID, "case 9")
	require.NoError(t, err)
	held, err := b.svc.EraseCall(ctx, calls[1].callID, retention.RunOptions{})
	require.NoError(t, err)
	require.Zero(t, held.Purged)
	require.Equal(t, 1, held.SkippedHold)
	require.Len(t, b.found(t, calls[1].markers), len(calls[1].markers))
	_, err = b.svc.ReleaseCall(ctx, calls[1].callID)
	require.NoError(t, err)
	released, err := b.svc.EraseCall(ctx, calls[1].callID, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, released.Purged)

	_, err = b.svc.EraseCall(ctx, "no-such-call", retention.RunOptions{})
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestErasePhone purges every call of one number, across agents, whatever
// the number's formatting, skips calls on hold, and records no number.
func TestErasePhone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "one", "")
	b.applyPlan(t, "two", "")
	b.applyPlan(t, "three", "")
	calls := b.seedMany(t, 7, func(i int) (string, seedOpts) {
		return []string{"one", "two", "three"}[i%3], seedOpts{endedAgo: time.Hour, recording: true}
	})
	// Calls 0-4 are from the same person: same number, written differently.
	const number = "+15550199999"
	for i, format := range []string{"+15550199999", "+1 555 019 9999", "tel:+1-555-019-9999", "(+1) 555.019.9999", "+15550199999"} {
		_, err := b.pool.Exec(ctx, `UPDATE calls SET phone_number = $2, phone_key = $3 WHERE id = $1`, calls[i].id, format, number)
		require.NoError(t, err)
		calls[i].phone = format
	}
	_, err := b.svc.HoldCall(ctx, calls[3].callID, "")
	require.NoError(t, err)
	_, err = b.svc.HoldAgent(ctx, "two", "")
	require.NoError(t, err) // holds calls[1] and calls[4]

	rep, err := b.svc.ErasePhone(ctx, "+1 (555) 019-9999", retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, rep.Purged, "calls 0 and 2")
	require.Equal(t, 3, rep.SkippedHold, "calls 1, 3 and 4 are on hold")
	b.drain(t)
	for i, c := range calls {
		got, err := store.GetCall(ctx, b.pool, c.id.String())
		require.NoError(t, err)
		require.Equal(t, i == 0 || i == 2, got.IsPurged, "call %d", i)
	}
	require.Empty(t, b.found(t, markersOf([]*seeded{calls[0], calls[2]})))

	run, err := retention.GetRun(ctx, b.pool, rep.RunID)
	require.NoError(t, err)
	require.JSONEq(t, `{"selector": "phone"}`, string(run.Policy))
	var mentions int
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT count(*) FROM retention_runs r WHERE strpos(r::text, '5550199999') > 0`).Scan(&mentions))
	require.Zero(t, mentions, "the erased number is recorded nowhere")
	var audited int
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT count(*) FROM retention_audit a WHERE strpos(a::text, '5550199999') > 0`).Scan(&audited))
	require.Zero(t, audited)

	again, err := b.svc.ErasePhone(ctx, number, retention.RunOptions{})
	require.NoError(t, err)
	require.Zero(t, again.Purged, "idempotent")
	require.Equal(t, 3, again.SkippedHold)

	_, err = b.svc.ErasePhone(ctx, "not a number", retention.RunOptions{})
	require.ErrorIs(t, err, retention.ErrInvalidPhone)
}
