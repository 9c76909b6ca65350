package retention

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPacerSizesBatchesToTheTarget(t *testing.T) {
	t.Parallel()
	p := newPacer(5000, 100*time.Millisecond, 1, 0)
	require.Equal(t, firstBatch, p.size, "the first batch is small")

	// 200 calls in 10 ms fit 2,000 in the target, but a batch grows at most
	// twice at a time.
	size, _ := p.next(firstBatch, 10*time.Millisecond)
	require.Equal(t, 400, size)
	size, _ = p.next(400, 20*time.Millisecond)
	require.Equal(t, 800, size)
	size, _ = p.next(800, 40*time.Millisecond)
	require.Equal(t, 1600, size)
	size, _ = p.next(1600, 80*time.Millisecond)
	require.Equal(t, 2000, size)
	size, _ = p.next(2000, 100*time.Millisecond)
	require.Equal(t, 2000, size, "on target: unchanged")

	// A slow moment shrinks the next batch at once, down to minBatch.
	size, _ = p.next(2000, 400*time.Millisecond)
	require.Equal(t, 500, size)
	size, _ = p.next(500, 10*time.Second)
	require.Equal(t, minBatch, size)

	// Never above max, whatever the speed.
	for range 10 {
		size, _ = p.next(size, time.Millisecond)
	}
	require.Equal(t, 5000, size)
}

func TestPacerKeepsSmallMaxima(t *testing.T) {
	t.Parallel()
	p := newPacer(10, 100*time.Millisecond, 1, 0)
	require.Equal(t, 10, p.size)
	size, _ := p.next(10, time.Second)
	require.Equal(t, 10, size, "a max below minBatch is kept, not raised")
	size, _ = p.next(10, time.Microsecond)
	require.Equal(t, 10, size)
}

func TestPacerPausesForItsShare(t *testing.T) {
	t.Parallel()
	// Busy at most 80% of the time: a 100 ms batch is followed by 25 ms.
	p := newPacer(5000, 100*time.Millisecond, 0.8, 0)
	_, pause := p.next(500, 100*time.Millisecond)
	require.Equal(t, 25*time.Millisecond, pause)
	_, pause = p.next(500, 400*time.Millisecond)
	require.Equal(t, 100*time.Millisecond, pause, "a slower batch earns a longer pause")

	// The minimum pause applies when it is longer.
	p = newPacer(5000, 100*time.Millisecond, 0.8, 50*time.Millisecond)
	_, pause = p.next(500, 100*time.Millisecond)
	require.Equal(t, 50*time.Millisecond, pause)
	_, pause = p.next(500, time.Second)
	require.Equal(t, 250*time.Millisecond, pause)

	// Share 1: only the minimum pause.
	p = newPacer(5000, 100*time.Millisecond, 1, 0)
	_, pause = p.next(500, time.Second)
	require.Zero(t, pause)
}
