package retention_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/retention"
)

// TestRecordingDeletionRetriedUntilConfirmed: a key the bucket refuses stays
// in the outbox (with its attempts) and is deleted on a later try; an
// object already gone counts as deleted; a worker without a bucket leaves
// the keys waiting; and a requeue covers batches whose job gave up.
func TestRecordingDeletionRetriedUntilConfirmed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.applyPlan(t, "rec", "retention: {purge_after_days: 1}")
	calls := b.seedMany(t, 4, func(int) (string, seedOpts) { return "rec", seedOpts{endedAgo: 2 * day, recording: true} })
	b.s3.failTimes(calls[0].recordingKey, 2)
	b.s3.Delete(t, calls[1].recordingKey) // already gone

	rep, err := b.svc.Purge(ctx, retention.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, 4, rep.ObjectsQueued)
	require.Len(t, rep.Batches, 1)
	batch := rep.Batches[0]

	// Without a bucket nothing is lost: the keys wait.
	noBucket := *b.svc
	noBucket.Recordings = nil
	_, err = noBucket.DeleteRecordings(ctx, batch)
	require.ErrorIs(t, err, retention.ErrNoRecordingStore)

	n, err := b.svc.DeleteRecordings(ctx, batch)
	require.Error(t, err, "one key is left: the job must be tried again")
	require.Equal(t, 3, n, "the missing object counts as deleted")
	require.True(t, b.s3.exists(t, calls[0].recordingKey))
	pending, err := retention.PendingRecordingDeletions(ctx, b.pool)
	require.NoError(t, err)
	require.Equal(t, 1, pending.Objects)
	require.Equal(t, 1, pending.Failing)

	// The job gave up (say River discarded it): the next run requeues it.
	_, err = b.pool.Exec(ctx, `DELETE FROM test_deletion_jobs`)
	require.NoError(t, err)
	requeued, err := b.svc.RequeueRecordingDeletions(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, requeued)

	_, err = b.svc.DeleteRecordings(ctx, batch)
	require.Error(t, err, "refused a second time")
	require.Equal(t, 1, b.drain(t), "third try: confirmed")
	require.False(t, b.s3.exists(t, calls[0].recordingKey))
	pending, err = retention.PendingRecordingDeletions(ctx, b.pool)
	require.NoError(t, err)
	require.Zero(t, pending.Objects)
	n, err = b.svc.DeleteRecordings(ctx, batch)
	require.NoError(t, err, "a finished batch is done")
	require.Zero(t, n)

	run, err := retention.GetRun(ctx, b.pool, rep.RunID)
	require.NoError(t, err)
	require.Equal(t, 4, run.ObjectsDeleted)
	require.Equal(t, 4, run.ObjectsQueued)
	require.Empty(t, b.found(t, markersOf(calls)), "the keys are forgotten once the objects are gone")
}
