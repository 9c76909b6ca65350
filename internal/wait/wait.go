// Package wait holds the one way postcall waits: for a duration, or until
// the context ends, whichever is first. Every loop that pauses (retention's
// batches, the LLM client's backoff and limits, recording deletions, bulk
// reanalysis) uses it, so that every pause ends with its context.
package wait

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, whichever is first; it returns ctx's
// error when ctx ended. d <= 0 returns at once.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
