package jobs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTimeoutsStayBelowRescue(t *testing.T) {
	t.Parallel()
	// The default changes nothing: runs 10m, retention jobs 10m with an 8m
	// budget, other jobs 1m, all below the 15m rescue.
	require.Equal(t, timeouts{run: 10 * time.Minute, retention: 10 * time.Minute, retentionBudget: 8 * time.Minute, job: time.Minute},
		timeoutsFor(DefaultRescueAfter))
	for _, rescue := range []time.Duration{MinRescueAfter, 6 * time.Second, 90 * time.Second, time.Hour} {
		got := timeoutsFor(rescue)
		for name, d := range map[string]time.Duration{"run": got.run, "retention": got.retention, "job": got.job} {
			require.Positive(t, d, "rescue %s: %s timeout", rescue, name)
			require.LessOrEqual(t, d, rescue*2/3, "rescue %s: %s timeout must leave a third of the rescue delay", rescue, name)
		}
		require.Less(t, got.retentionBudget, got.retention, "rescue %s: the purge budget must end before its job times out", rescue)
	}
	require.Equal(t, 4*time.Second, timeoutsFor(6*time.Second).run)
}
