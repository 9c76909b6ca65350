package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/config"
)

func TestBatchPollInterval(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(nil)
	require.NoError(t, err)
	require.Equal(t, time.Minute, cfg.LLM.BatchPollInterval)

	for v, want := range map[string]time.Duration{"1s": time.Second, "30s": 30 * time.Second, "1h": time.Hour} {
		cfg, err := config.Load([]string{"POSTCALL_BATCH_POLL_INTERVAL=" + v})
		require.NoError(t, err, v)
		require.Equal(t, want, cfg.LLM.BatchPollInterval, v)
	}
	for _, v := range []string{"0", "500ms", "-1m", "2h", "often"} {
		_, err := config.Load([]string{"POSTCALL_BATCH_POLL_INTERVAL=" + v})
		require.ErrorContains(t, err, "POSTCALL_BATCH_POLL_INTERVAL", v)
		require.ErrorContains(t, err, "from 1s to 1h0m0s", v)
	}
}
