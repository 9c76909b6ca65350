package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/crm"
	"github.com/postcall/postcall/jobs"
	"github.com/postcall/postcall/metrics"
	"github.com/postcall/postcall/migrations"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// appOptions says which parts of the app a command needs.
type appOptions struct {
	// enqueue builds an insert-only River client and the enqueuer.
	enqueue bool
	// work builds a working River client (the worker).
	work bool
}

// app is everything a command may use, wired from the configuration. All
// wiring lives here, in cmd.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	pool     *pgxpool.Pool
	river    *river.Client[pgx.Tx]
	pipeline *pipeline.Service
	enqueuer *jobs.Enqueuer
	// recordings is nil when no S3_BUCKET is configured.
	recordings *recording.Store
	// links is nil when no POSTCALL_PUBLIC_URL is configured.
	links *recording.Links
	// retention runs the purge, the hard delete, erasures and holds; its
	// recording deletions are enqueued through river (enqueue/work only).
	retention *retention.Service
	// registry and metrics are the worker's Prometheus metrics (GET
	// /metrics); nil for other commands.
	registry *prometheus.Registry
	metrics  *metrics.Metrics
}

func openApp(ctx context.Context, e *env, opts appOptions) (*app, error) {
	cfg, err := config.Load(e.environ)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: newLogger(e.stderr, cfg)}
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	poolCfg.MaxConns = int32(cfg.DBMaxConns)
	a.pool, err = pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", migrations.RedactURL(cfg.DatabaseURL), err)
	}
	if err := migrations.Check(ctx, a.pool, ""); err != nil {
		a.pool.Close()
		return nil, fmt.Errorf("database %s: %w", migrations.RedactURL(cfg.DatabaseURL), err)
	}
	if cfg.S3.Bucket != "" {
		a.recordings, err = recording.New(ctx, recording.Config{
			Bucket:          cfg.S3.Bucket,
			Endpoint:        cfg.S3.Endpoint,
			Region:          cfg.S3.Region,
			ForcePathStyle:  cfg.S3.ForcePathStyle,
			URLTTL:          cfg.S3.URLTTL,
			AccessKeyID:     cfg.S3.AccessKeyID,
			SecretAccessKey: cfg.S3.SecretAccessKey,
			SessionToken:    cfg.S3.SessionToken,
		})
		if err != nil {
			a.pool.Close()
			return nil, fmt.Errorf("recording store: %w", err)
		}
	}
	if cfg.PublicURL != "" {
		if a.links, err = recording.NewLinks(cfg.PublicURL, cfg.LinkSecret); err != nil {
			a.pool.Close()
			return nil, err
		}
	}
	a.retention = newRetention(cfg, a.log, a.pool, a.recordings)
	if !opts.enqueue && !opts.work {
		return a, nil
	}
	if opts.work {
		a.registry = prometheus.NewRegistry()
		a.metrics, err = metrics.New(a.registry, metrics.Options{DB: a.pool, Queues: jobs.Queues(), Runtime: true})
		if err != nil {
			a.pool.Close()
			return nil, err
		}
	}
	a.pipeline, err = newPipeline(cfg, a.log, a.links, a.metrics)
	if err != nil {
		a.pool.Close()
		return nil, err
	}
	a.river, err = jobs.NewClient(jobs.ClientConfig{
		Pool:                a.pool,
		Pipeline:            a.pipeline,
		Retention:           a.retention,
		PurgeSchedule:       cfg.PurgeSchedule,
		RetentionSchedule:   cfg.RetentionSchedule,
		Work:                opts.work,
		RunConcurrency:      cfg.LLM.Concurrency,
		DeliveryConcurrency: cfg.DeliveryConcurrency,
		SoftStopTimeout:     cfg.ShutdownTimeout,
		RescueAfter:         cfg.RescueAfter,
		Logger:              riverLogger(e.stderr, cfg),
	})
	if err != nil {
		a.pool.Close()
		return nil, err
	}
	a.enqueuer = &jobs.Enqueuer{Pool: a.pool, Client: a.river, Pipeline: a.pipeline}
	return a, nil
}

// newRetention configures retention from POSTCALL_PURGE_AFTER_DAYS,
// POSTCALL_HARD_DELETE_AFTER_DAYS and POSTCALL_RETENTION_*; without
// S3_BUCKET recording deletions wait in the outbox.
func newRetention(cfg *config.Config, log *slog.Logger, pool *pgxpool.Pool, recordings *recording.Store) *retention.Service {
	s := &retention.Service{
		DB:                  pool,
		PurgeAfterDays:      cfg.PurgeAfterDays,
		HardDeleteAfterDays: cfg.HardDeleteAfterDays,
		BatchSize:           cfg.RetentionBatchSize,
		Pause:               cfg.RetentionPause,
		Logger:              log,
	}
	if recordings != nil {
		s.Recordings = recordings
	}
	return s
}

// newPipeline chooses the model: the configured endpoint, else the demo model
// when asked for, else none (runs wait for an endpoint).
func newPipeline(cfg *config.Config, log *slog.Logger, links *recording.Links, m *metrics.Metrics) (*pipeline.Service, error) {
	p := &pipeline.Service{Logger: log, Deliveries: &pipeline.Deliveries{
		Deliverer:    crm.NewDeliverer(cfg.AllowPrivateTargets),
		DisableAfter: cfg.IntegrationDisableAfter,
		Logger:       log,
	}}
	var observeLLM func(analysis.Observation)
	if m != nil {
		p.Deliveries.Observer = m.ObserveDelivery
		observeLLM = m.ObserveLLM
	}
	if links != nil {
		p.Deliveries.RecordingLink = func(c *store.Call) string { return links.Link(c.ID.String()) }
	}
	switch {
	case cfg.LLM.Configured():
		model, err := analysis.NewOpenAI(analysis.OpenAIConfig{
			BaseURL:           cfg.LLM.BaseURL,
			APIKey:            cfg.LLM.APIKey,
			RPM:               cfg.LLM.RPM,
			TPM:               cfg.LLM.TPM,
			Concurrency:       cfg.LLM.Concurrency,
			Observer:          observeLLM,
			FlexFallbackAfter: flexFallbackAfter(cfg.LLM.FlexFallbackAfter),
		})
		if err != nil {
			return nil, fmt.Errorf("LLM client: %w", err)
		}
		p.Analyzer = &analysis.Analyzer{Model: model, DefaultModel: cfg.LLM.Model}
	case cfg.LLM.Demo:
		p.Analyzer = &analysis.Analyzer{Model: analysis.Demo{}, DefaultModel: cfg.LLM.Model}
		p.Demo = true
	}
	return p, nil
}

// documentOptions supplies the call document's signed recording URL.
func (a *app) documentOptions() store.DocumentOptions {
	var opts store.DocumentOptions
	if a.recordings != nil {
		opts.Sign = func(ctx context.Context, key string) (string, time.Time, error) {
			u, err := a.recordings.Sign(ctx, key)
			return u.URL, u.ExpiresAt, err
		}
	}
	return opts
}

func (a *app) Close() {
	a.pool.Close()
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

// flexFallbackAfter maps POSTCALL_FLEX_FALLBACK_AFTER to the client's
// setting, where 0 means the default and a negative value "at once".
func flexFallbackAfter(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
