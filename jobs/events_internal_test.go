package jobs

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
)

// TestFailedJobsAreLoggedAtTheDefaultLevel: River logs "Job errored;
// retrying" at INFO while postcall holds River's logger at WARN, so retried
// job errors never reached the log; postcall logs each failed attempt itself,
// at WARN (ERROR for the last one), with the job and the error.
func TestFailedJobsAreLoggedAtTheDefaultLevel(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})) // POSTCALL_LOG_LEVEL's default
	for _, tc := range []struct {
		state rivertype.JobState
		kind  river.EventKind
		want  string
	}{
		{rivertype.JobStateRetryable, river.EventKindJobFailed, `level=WARN msg="job failed" kind=postcall.qc job=7 attempt=2 outcome=retryable error="store qc run 9: boom"`},
		{rivertype.JobStateDiscarded, river.EventKindJobFailed, `level=ERROR msg="job failed" kind=postcall.qc job=7 attempt=2 outcome=discarded error="store qc run 9: boom"`},
		{rivertype.JobStateCompleted, river.EventKindJobCompleted, ``},
	} {
		out.Reset()
		ev := &river.Event{Kind: tc.kind, Job: &rivertype.JobRow{ID: 7, Kind: "postcall.qc", Queue: "qc", Attempt: 2, State: tc.state,
			Errors: []rivertype.AttemptError{{Error: "first"}, {Error: "store qc run 9: boom"}}}}
		LogFailure(context.Background(), log, jobEvent(ev))
		if tc.want == "" {
			require.Empty(t, out.String())
			continue
		}
		require.Contains(t, out.String(), tc.want)
	}
}
