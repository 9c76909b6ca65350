package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/internal/app"
)

// openApp builds postcall from the environment's configuration; work builds
// the worker (a working River client and its metrics). The wiring itself is
// internal/app's.
func openApp(ctx context.Context, e *env, work bool) (*app.App, error) {
	cfg, err := config.Load(e.environ)
	if err != nil {
		return nil, err
	}
	return app.New(ctx, cfg, app.Options{
		Work:           work,
		Logger:         newLogger(e.stderr, cfg),
		RiverLogger:    riverLogger(e.stderr, cfg),
		RuntimeMetrics: work,
	})
}

func newLogger(w io.Writer, cfg *config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	return newLoggerAt(w, cfg, level)
}

// riverLogger keeps River's routine INFO lines (producer job counts every
// few seconds) out of the log unless POSTCALL_LOG_LEVEL=debug.
func riverLogger(w io.Writer, cfg *config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	if level > slog.LevelDebug {
		level = max(level, slog.LevelWarn)
	}
	return newLoggerAt(w, cfg, level)
}

func newLoggerAt(w io.Writer, cfg *config.Config, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
