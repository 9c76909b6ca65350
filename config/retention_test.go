package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/config"
)

func TestRetentionDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(nil)
	require.NoError(t, err)
	require.Equal(t, 30, cfg.PurgeAfterDays)
	require.Equal(t, 30, cfg.HardDeleteAfterDays)
	require.Equal(t, 5000, cfg.RetentionBatchSize)
	require.Zero(t, cfg.RetentionPause)
	require.Equal(t, "30 3 * * *", cfg.RetentionSchedule)
}

func TestRetentionValues(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load([]string{
		"POSTCALL_PURGE_AFTER_DAYS=0", "POSTCALL_HARD_DELETE_AFTER_DAYS=90",
		"POSTCALL_RETENTION_BATCH_SIZE=2000", "POSTCALL_RETENTION_PAUSE=150ms",
	})
	require.NoError(t, err)
	require.Zero(t, cfg.PurgeAfterDays, "0 purges at the next run")
	require.Equal(t, 90, cfg.HardDeleteAfterDays)
	require.Equal(t, 2000, cfg.RetentionBatchSize)
	require.Equal(t, 150*time.Millisecond, cfg.RetentionPause)
}

func TestRetentionInvalidValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	_, err := config.Load([]string{
		"POSTCALL_PURGE_AFTER_DAYS=-1", "POSTCALL_HARD_DELETE_AFTER_DAYS=thirty",
		"POSTCALL_RETENTION_BATCH_SIZE=0", "POSTCALL_RETENTION_PAUSE=2m", "POSTCALL_RETENTION_SCHEDULE=nightly",
	})
	require.Error(t, err)
	for _, name := range []string{"POSTCALL_PURGE_AFTER_DAYS", "POSTCALL_HARD_DELETE_AFTER_DAYS",
		"POSTCALL_RETENTION_BATCH_SIZE", "POSTCALL_RETENTION_PAUSE", "POSTCALL_RETENTION_SCHEDULE"} {
		require.ErrorContains(t, err, name)
	}
}
