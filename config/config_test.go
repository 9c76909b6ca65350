package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/jobs"
	"github.com/postcall/postcall/recording"
)

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(nil)
	require.NoError(t, err)
	require.Equal(t, config.DefaultDatabaseURL, cfg.DatabaseURL)
	require.Equal(t, analysis.DefaultModel, cfg.LLM.Model)
	require.False(t, cfg.LLM.Configured(), "no key and OpenAI's URL: the LLM steps wait")
	require.Equal(t, time.Hour, cfg.S3.URLTTL)
	require.Equal(t, "127.0.0.1:8080", cfg.HTTPAddr)
	require.Equal(t, jobs.DefaultPurgeSchedule, cfg.PurgeSchedule)
	require.Equal(t, 15*time.Minute, cfg.RescueAfter)
	require.Equal(t, 30*time.Second, cfg.WorkerDeadAfter)
	require.Equal(t, 32, cfg.DeliveryConcurrency)
}

func TestLoadValues(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load([]string{
		"OPENAI_BASE_URL=http://127.0.0.1:11434/v1/",
		"POSTCALL_LLM_RPM=60",
		"POSTCALL_RECORDING_URL_TTL=720h",
		"POSTCALL_PURGE_SCHEDULE=CRON_TZ=Europe/Berlin 0 2 * * *",
		"S3_FORCE_PATH_STYLE=true",
		"POSTCALL_ALLOW_PRIVATE_TARGETS=1",
		"POSTCALL_RESCUE_AFTER=2m",
		"POSTCALL_DELIVERY_CONCURRENCY=100",
		"POSTCALL_WORKER_DEAD_AFTER=1m",
	})
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:11434/v1", cfg.LLM.BaseURL)
	require.True(t, cfg.LLM.Configured(), "a local endpoint needs no key")
	require.Equal(t, 60, cfg.LLM.RPM)
	require.Equal(t, recording.MaxURLTTL, cfg.S3.URLTTL)
	require.True(t, cfg.S3.URLTTLClamped)
	require.True(t, cfg.S3.ForcePathStyle)
	require.True(t, cfg.AllowPrivateTargets)
	require.Equal(t, 2*time.Minute, cfg.RescueAfter)
	require.Equal(t, 100, cfg.DeliveryConcurrency)
	require.Equal(t, time.Minute, cfg.WorkerDeadAfter)
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	_, err := config.Load([]string{
		"POSTCALL_LLM_RPM=fast",
		"POSTCALL_RECORDING_URL_TTL=forever",
		"POSTCALL_PURGE_SCHEDULE=every night",
		"POSTCALL_HTTP_ADDR=8080",
		"POSTCALL_MODLE=gpt-4.1",
		"OPENAI_BASE_URL=api.openai.com",
		"DATABASE_URL=mysql://x",
		"POSTCALL_LOG_FORMAT=xml",
		"POSTCALL_RESCUE_AFTER=1s",
		"POSTCALL_DELIVERY_CONCURRENCY=0",
		"POSTCALL_WORKER_DEAD_AFTER=5s",
	})
	require.Error(t, err)
	for _, name := range []string{
		"POSTCALL_LLM_RPM", "POSTCALL_RECORDING_URL_TTL", "POSTCALL_PURGE_SCHEDULE", "POSTCALL_HTTP_ADDR",
		"POSTCALL_MODLE: unknown variable", "OPENAI_BASE_URL", "DATABASE_URL", "POSTCALL_LOG_FORMAT",
		"POSTCALL_RESCUE_AFTER: \"1s\" must be a duration of at least 5s", "POSTCALL_DELIVERY_CONCURRENCY",
		"POSTCALL_WORKER_DEAD_AFTER: \"5s\" must be a duration of at least 15s",
	} {
		require.Contains(t, err.Error(), name)
	}
}
