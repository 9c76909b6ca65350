package recording

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/rclone/gofakes3"
	"github.com/stretchr/testify/require"
)

// noBackoff makes Delete retry at once and records the retry numbers.
type noBackoff struct {
	mu    sync.Mutex
	calls []int
}

func (n *noBackoff) config(c *Config) {
	c.RetryBackoff = func(i int) time.Duration {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.calls = append(n.calls, i)
		return 0
	}
}

func TestDeleteBatchesOf1000(t *testing.T) {
	t.Parallel()
	b := setup(t)
	keys := make([]string, 2500)
	for i := range keys {
		keys[i] = fmt.Sprintf("calls/%04d.wav", i)
		b.s3.Put(t, keys[i], "audio")
	}

	start := time.Now()
	res, err := b.store.Delete(t.Context(), keys)
	elapsed := time.Since(start)
	require.NoError(t, err)
	t.Logf("deleted %d keys in %d requests in %s", len(res.Deleted), res.Requests, elapsed)

	require.Equal(t, 3, res.Requests)
	require.Equal(t, []int{1000, 1000, 500}, b.s3.DeleteSizes(), "keys per DeleteObjects request as seen by the server")
	require.Zero(t, b.s3.NotQuietDeletes(), "quiet mode: the response lists failures only")
	require.ElementsMatch(t, keys, res.Deleted)
	require.Empty(t, res.Failed)
	for _, k := range keys {
		require.False(t, b.s3.Exists(t, k), "%s still exists", k)
	}
}

func TestDeleteMissingAndDuplicateKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.s3.Put(t, "calls/real.wav", "audio")
	b.s3.Put(t, "calls/keep.wav", "audio")

	res, err := b.store.Delete(t.Context(), []string{
		"calls/real.wav", "calls/missing-1.wav", "", "calls/real.wav", "calls/missing-2.wav",
	})
	require.NoError(t, err)
	require.Equal(t, []string{"calls/real.wav", "calls/missing-1.wav", "calls/missing-2.wav"}, res.Deleted)
	require.Nil(t, res.Failed)
	require.Equal(t, 1, res.Requests)
	require.Equal(t, []int{3}, b.s3.DeleteSizes(), "duplicates and empty keys are not sent")
	require.False(t, b.s3.Exists(t, "calls/real.wav"))
	require.True(t, b.s3.Exists(t, "calls/keep.wav"), "only the given keys are deleted")
}

func TestDeleteNoSuchKeyErrorCountsAsDeleted(t *testing.T) {
	t.Parallel()
	// S3 itself reports missing keys as deleted, but some S3-compatible
	// stores answer a per-key NoSuchKey; that must not be retried or failed.
	var backoff noBackoff
	b := setup(t, backoff.config)
	b.s3.Put(t, "calls/a.wav", "audio")
	b.s3.FailDeletes("calls/gone.wav", gofakes3.ErrNoSuchKey, -1)

	res, err := b.store.Delete(t.Context(), []string{"calls/a.wav", "calls/gone.wav"})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"calls/a.wav", "calls/gone.wav"}, res.Deleted)
	require.Nil(t, res.Failed)
	require.Equal(t, 1, res.Requests)
	require.Empty(t, backoff.calls, "nothing was retried")
	require.False(t, b.s3.Exists(t, "calls/a.wav"))
}

func TestDeleteRetriesPerKeyErrors(t *testing.T) {
	t.Parallel()
	var backoff noBackoff
	b := setup(t, backoff.config, func(c *Config) { c.DeleteAttempts = 3 })
	for _, k := range []string{"calls/ok.wav", "calls/flaky.wav", "calls/stuck.wav", "calls/denied.wav"} {
		b.s3.Put(t, k, "audio")
	}
	b.s3.FailDeletes("calls/flaky.wav", gofakes3.ErrInternal, 1)                // fails once, then works
	b.s3.FailDeletes("calls/stuck.wav", gofakes3.ErrInternal, -1)               // never works
	b.s3.FailDeletes("calls/denied.wav", gofakes3.ErrorCode("AccessDenied"), 2) // works on the last try

	res, err := b.store.Delete(t.Context(), []string{"calls/ok.wav", "calls/flaky.wav", "calls/stuck.wav", "calls/denied.wav"})

	require.ElementsMatch(t, []string{"calls/ok.wav", "calls/flaky.wav", "calls/denied.wav"}, res.Deleted)
	require.Equal(t, 3, res.Requests)
	require.Equal(t, []int{4, 3, 2}, b.s3.DeleteSizes(), "each retry resends only the failed keys")
	require.Equal(t, []int{1, 2}, backoff.calls)
	require.False(t, b.s3.Exists(t, "calls/flaky.wav"))
	require.False(t, b.s3.Exists(t, "calls/denied.wav"))
	require.True(t, b.s3.Exists(t, "calls/stuck.wav"))

	require.Len(t, res.Failed, 1)
	var ke *KeyError
	require.ErrorAs(t, res.Failed["calls/stuck.wav"], &ke)
	require.Equal(t, KeyError{Key: "calls/stuck.wav", Code: "InternalError", Message: "injected by test"}, *ke)

	var de *DeleteError
	require.ErrorAs(t, err, &de)
	require.Equal(t, 4, de.Total)
	require.ErrorContains(t, err, `1 of 4 keys failed: "calls/stuck.wav" (InternalError)`)
	require.ErrorAs(t, err, &ke, "per-key errors are reachable through the DeleteError")
}

func TestDeleteErrorNamesAtMostTenKeys(t *testing.T) {
	t.Parallel()
	var backoff noBackoff
	b := setup(t, backoff.config, func(c *Config) { c.DeleteAttempts = 1 })
	var keys []string
	for i := range 12 {
		k := fmt.Sprintf("calls/%02d.wav", i)
		keys = append(keys, k)
		b.s3.FailDeletes(k, gofakes3.ErrInternal, -1)
	}
	res, err := b.store.Delete(t.Context(), keys)
	require.Len(t, res.Failed, 12)
	require.Equal(t, 1, res.Requests)
	require.ErrorContains(t, err, `12 of 12 keys failed: "calls/00.wav" (InternalError),`)
	require.ErrorContains(t, err, `"calls/09.wav" (InternalError) and 2 more`)
	require.NotContains(t, err.Error(), "calls/10.wav")
}

func TestDeleteRequestErrorNotRetried(t *testing.T) {
	t.Parallel()
	var backoff noBackoff
	b := setup(t, backoff.config, func(c *Config) { c.Bucket = "no-such-bucket" })

	res, err := b.store.Delete(t.Context(), []string{"calls/a.wav", "calls/b.wav"})
	require.Error(t, err)
	require.Empty(t, res.Deleted)
	require.Len(t, res.Failed, 2)
	require.Equal(t, 1, res.Requests)
	require.Empty(t, backoff.calls)
	var api smithy.APIError
	require.ErrorAs(t, res.Failed["calls/a.wav"], &api)
	require.Equal(t, "NoSuchBucket", api.ErrorCode())
	require.ErrorContains(t, err, `"calls/a.wav"`)
	require.ErrorContains(t, err, `"calls/b.wav"`)
}

func TestDeleteNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, keys := range [][]string{nil, {}, {"", ""}} {
		res, err := b.store.Delete(t.Context(), keys)
		require.NoError(t, err)
		require.Equal(t, DeleteResult{}, res)
	}
	require.Empty(t, b.s3.DeleteSizes())
}

func TestDeleteCanceled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.s3.Put(t, "calls/a.wav", "audio")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	res, err := b.store.Delete(ctx, []string{"calls/a.wav", "calls/b.wav"})
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, res.Failed, 2)
	require.Zero(t, res.Requests)
	require.Empty(t, b.s3.DeleteSizes())
	require.True(t, b.s3.Exists(t, "calls/a.wav"))
}

func TestDeleteCanceledDuringBackoff(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	b := setup(t, func(c *Config) {
		// The first backoff cancels the context and asks for a wait that
		// would outlast the test: Delete must give up at once.
		c.RetryBackoff = func(int) time.Duration { cancel(); return time.Hour }
	})
	b.s3.FailDeletes("calls/flaky.wav", gofakes3.ErrInternal, 1)

	res, err := b.store.Delete(ctx, []string{"calls/ok.wav", "calls/flaky.wav"})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []string{"calls/ok.wav"}, res.Deleted)
	require.Equal(t, []string{"calls/flaky.wav"}, keysOf(res.Failed))
	require.Equal(t, 1, res.Requests)
	require.ErrorIs(t, res.Failed["calls/flaky.wav"], context.Canceled)
}

func keysOf(m map[string]error) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDefaultBackoff(t *testing.T) {
	t.Parallel()
	want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 2 * time.Second, 2 * time.Second}
	for i, w := range want {
		require.Equal(t, w, defaultBackoff(i+1), "retry %d", i+1)
	}
}
