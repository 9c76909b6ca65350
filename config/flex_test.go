package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/config"
)

func TestFlexFallbackAfter(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(nil)
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, cfg.LLM.FlexFallbackAfter)

	for v, want := range map[string]time.Duration{"0": 0, "0s": 0, "90s": 90 * time.Second, "1h": time.Hour} {
		cfg, err := config.Load([]string{"POSTCALL_FLEX_FALLBACK_AFTER=" + v})
		require.NoError(t, err, v)
		require.Equal(t, want, cfg.LLM.FlexFallbackAfter, v)
	}
	for _, v := range []string{"-1s", "2h", "soon"} {
		_, err := config.Load([]string{"POSTCALL_FLEX_FALLBACK_AFTER=" + v})
		require.ErrorContains(t, err, "POSTCALL_FLEX_FALLBACK_AFTER", v)
		require.ErrorContains(t, err, "from 0s to 1h0m0s", v)
	}
}
