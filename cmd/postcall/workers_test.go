package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWorkersListsTheWorkerProcesses: a running worker beats and is listed
// live; stopped, it is listed stopped.
func TestWorkersListsTheWorkerProcesses(t *testing.T) {
	t.Parallel()
	ctx, b := setupWithAgents(t)
	res := b.run(t, ctx, "", nil, "workers")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "no worker has run in the last 24 hours")

	stop := b.startWorker(t, []string{"POSTCALL_HTTP_ADDR=127.0.0.1:0"})
	require.Eventually(t, func() bool {
		res = b.run(t, ctx, "", nil, "workers")
		return res.code == 0 && len(res.stdout) > 0 && strings.Contains(res.stdout, " live ")
	}, 20*time.Second, 100*time.Millisecond, "worker listed live: %s %s", res.stdout, res.stderr)
	require.Contains(t, res.stdout, "client id")
	require.Contains(t, res.stdout, "last heartbeat")

	require.Equal(t, 0, stop().code)
	res = b.run(t, ctx, "", nil, "workers")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, " stopped ")
	require.NotContains(t, res.stdout, " live ")
}
