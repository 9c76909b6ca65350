// Package app builds postcall from a config.Config: the database pool, the
// analyzer, the pipeline and its use cases, retention, the recording store
// and links, the job queue, the River client and the HTTP handler. It is
// the one place that wires packages together: cmd/postcall, the benchmark,
// the chaos tests and the integration tests all build through it, so a new
// integration, store or worker option is wired here once.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/postcall/postcall/access"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/api"
	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/console"
	"github.com/postcall/postcall/crm"
	"github.com/postcall/postcall/heartbeat"
	"github.com/postcall/postcall/jobs"
	"github.com/postcall/postcall/metrics"
	"github.com/postcall/postcall/migrations"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/retention"
)

// Options say how to build an App beyond what the configuration says.
type Options struct {
	// Work builds a working River client (every queue, the periodic
	// retention jobs) and the worker's metrics. Default false: the use cases
	// and an insert-only queue, for commands that enqueue.
	Work bool
	// Pool is the database to use. Default nil: a pool is opened from
	// DatabaseURL and DBMaxConns, its schema checked, and Close closes it.
	Pool *pgxpool.Pool
	// Schema is the schema of River's and postcall's tables. Default "": the
	// connection's search_path.
	Schema string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// RiverLogger is River's logger. Default Logger.
	RiverLogger *slog.Logger
	// Model replaces the model the configuration selects (a test's or the
	// benchmark's fake). Default nil: the configured endpoint, else the demo
	// model when asked for, else none (runs wait for an endpoint).
	Model analysis.Model
	// BatchAPI replaces the Batch API the configuration selects. Default
	// nil: the configured OpenAI endpoint's, else none (batches wait for
	// an endpoint).
	BatchAPI analysis.BatchAPI
	// Registry registers the worker's metrics (with Work). Default nil: a
	// new registry.
	Registry *prometheus.Registry
	// RuntimeMetrics adds the Go runtime and process collectors. Default
	// false; the worker command sets it.
	RuntimeMetrics bool
	// FetchPollInterval overrides River's poll interval (tests). Default
	// River's own.
	FetchPollInterval time.Duration
	// Now is the clock of delivery and retention decisions (tests). Default
	// time.Now.
	Now func() time.Time
}

// App is postcall, built.
type App struct {
	Config *config.Config
	Log    *slog.Logger
	Pool   *pgxpool.Pool
	// Queue enqueues jobs in a caller's transaction.
	Queue *jobs.Queue
	// Pipeline processes calls; Calls are the use cases on them.
	Pipeline *pipeline.Service
	Calls    *pipeline.Calls
	// Access is tokens, roles and console sessions.
	Access *access.Service
	// Batches sends bulk reanalyses through the Batch API.
	Batches *pipeline.Batches
	// Retention runs the purge, the hard delete, erasures and holds.
	Retention *retention.Service
	// Recordings is nil when no S3_BUCKET is configured; Links when no
	// POSTCALL_PUBLIC_URL is.
	Recordings *recording.Store
	Links      *recording.Links
	// River is the working client (Options.Work); nil otherwise.
	River *river.Client[pgx.Tx]
	// Heartbeat beats for River's client id (Options.Work): run it for as
	// long as the client works jobs, so that other processes know this one
	// is alive, and call Stopped after the client stops. Nil otherwise.
	Heartbeat *heartbeat.Beater
	// Registry and Metrics are the worker's Prometheus metrics
	// (Options.Work); nil otherwise.
	Registry *prometheus.Registry
	Metrics  *metrics.Metrics

	schema    string
	closePool bool
	riverUI   *riverui.Handler
	// stopRiverUI ends River UI's background count caches.
	stopRiverUI context.CancelFunc
}

// New builds postcall from cfg.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *App, err error) {
	a := &App{Config: cfg, Log: opts.Logger, Pool: opts.Pool, schema: opts.Schema}
	if a.Log == nil {
		a.Log = slog.Default()
	}
	if a.Pool == nil {
		if a.Pool, err = openPool(ctx, cfg); err != nil {
			return nil, err
		}
		a.closePool = true
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if cfg.S3.Bucket != "" {
		a.Recordings, err = recording.New(ctx, recording.Config{
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
			return nil, fmt.Errorf("recording store: %w", err)
		}
	}
	if cfg.PublicURL != "" {
		if a.Links, err = recording.NewLinks(cfg.PublicURL, cfg.LinkSecret); err != nil {
			return nil, err
		}
	}
	a.Access = &access.Service{DB: a.Pool, APIToken: cfg.APIToken, Now: opts.Now}
	if a.Queue, err = jobs.NewQueue(a.Pool, opts.Schema, riverLogger(opts)); err != nil {
		return nil, err
	}
	a.Retention = &retention.Service{
		DB:                  a.Pool,
		PurgeAfterDays:      cfg.PurgeAfterDays,
		HardDeleteAfterDays: cfg.HardDeleteAfterDays,
		BatchSize:           cfg.RetentionBatchSize,
		Pause:               cfg.RetentionPause,
		Queue:               a.Queue,
		Now:                 opts.Now,
		Logger:              a.Log,
	}
	if a.Recordings != nil {
		// Without S3_BUCKET recording deletions wait in the outbox.
		a.Retention.Recordings = a.Recordings
	}
	if opts.Work {
		a.Registry = opts.Registry
		if a.Registry == nil {
			a.Registry = prometheus.NewRegistry()
		}
		a.Metrics, err = metrics.New(a.Registry, metrics.Options{
			DB: a.Pool, Schema: opts.Schema, Queues: jobs.Queues(), Runtime: opts.RuntimeMetrics,
			WorkerDeadAfter: cfg.WorkerDeadAfter,
		})
		if err != nil {
			return nil, err
		}
	}
	var batchAPI analysis.BatchAPI
	if a.Pipeline, batchAPI, err = a.newPipeline(opts); err != nil {
		return nil, err
	}
	a.Batches = &pipeline.Batches{DB: a.Pool, Pipeline: a.Pipeline, API: batchAPI, Queue: a.Queue, Logger: a.Log}
	a.Calls = &pipeline.Calls{
		DB: a.Pool, Pipeline: a.Pipeline, Retention: a.Retention, Queue: a.Queue, Recordings: a.Recordings,
	}
	if opts.Work {
		a.Heartbeat = &heartbeat.Beater{
			ConnConfig: a.Pool.Config().ConnConfig, ClientID: heartbeat.NewClientID(), Logger: a.Log,
		}
		a.River, err = jobs.NewClient(jobs.ClientConfig{
			ClientID:            a.Heartbeat.ClientID,
			WorkerDeadAfter:     cfg.WorkerDeadAfter,
			ObserveRecovered:    a.Metrics.ObserveRecovered,
			Pool:                a.Pool,
			Pipeline:            a.Pipeline,
			Retention:           a.Retention,
			Batches:             a.Batches,
			BatchPollInterval:   cfg.LLM.BatchPollInterval,
			PurgeSchedule:       cfg.PurgeSchedule,
			RetentionSchedule:   cfg.RetentionSchedule,
			RunConcurrency:      cfg.LLM.Concurrency,
			DeliveryConcurrency: cfg.DeliveryConcurrency,
			SoftStopTimeout:     cfg.ShutdownTimeout,
			RescueAfter:         cfg.RescueAfter,
			Schema:              opts.Schema,
			Logger:              riverLogger(opts),
			FetchPollInterval:   opts.FetchPollInterval,
		})
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Stopped is the last step of a working App's stop, after its River client
// stopped and its heartbeat with it: the jobs the client still held running
// (their attempts ran past the stop timeout and did not return) are made
// available again at once rather than after POSTCALL_WORKER_DEAD_AFTER, and
// the process is listed as stopped.
func (a *App) Stopped(ctx context.Context) error {
	n, err := heartbeat.Stopped(ctx, a.Pool, a.Heartbeat.ClientID)
	if err != nil {
		return err
	}
	if n > 0 {
		a.Metrics.ObserveRecovered(jobs.RecoveredStopped, n)
		a.Log.Warn("jobs still running at the stop timeout made available again", slog.Int("jobs", n))
	}
	return nil
}

// openPool connects to DatabaseURL and refuses a schema that is behind.
func openPool(ctx context.Context, cfg *config.Config) (*pgxpool.Pool, error) {
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	poolCfg.MaxConns = int32(cfg.DBMaxConns)
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", migrations.RedactURL(cfg.DatabaseURL), err)
	}
	if err := migrations.Check(ctx, pool, ""); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s: %w", migrations.RedactURL(cfg.DatabaseURL), err)
	}
	return pool, nil
}

// newPipeline chooses the model: Options.Model, else the configured
// endpoint, else the demo model when asked for, else none (runs wait for an
// endpoint); and the Batch API: Options.BatchAPI, else the configured
// endpoint's, else none.
func (a *App) newPipeline(opts Options) (*pipeline.Service, analysis.BatchAPI, error) {
	cfg := a.Config
	p := &pipeline.Service{Logger: a.Log, Prices: cfg.Prices, Deliveries: &pipeline.Deliveries{
		Deliverer:    crm.NewDeliverer(cfg.AllowPrivateTargets),
		DisableAfter: cfg.IntegrationDisableAfter,
		Now:          opts.Now,
		Logger:       a.Log,
	}}
	var observeLLM func(analysis.Observation)
	if a.Metrics != nil {
		p.Deliveries.Observer = a.Metrics.ObserveDelivery
		p.CostObserver = a.Metrics.ObserveCost
		observeLLM = a.Metrics.ObserveLLM
	}
	if a.Links != nil {
		p.Deliveries.Links = a.Links
	}
	switch {
	case opts.Model != nil:
		p.Analyzer = &analysis.Analyzer{Model: opts.Model, DefaultModel: cfg.LLM.Model}
	case cfg.LLM.Configured():
		model, err := analysis.NewOpenAI(analysis.OpenAIConfig{
			BaseURL:     cfg.LLM.BaseURL,
			APIKey:      cfg.LLM.APIKey,
			RPM:         cfg.LLM.RPM,
			TPM:         cfg.LLM.TPM,
			Concurrency: cfg.LLM.Concurrency,
			Observer:    observeLLM,
			// 0 in the configuration means "fall back at once"; to the
			// client 0 means its default and a negative value at once.
			FlexFallbackAfter: flexFallbackAfter(cfg.LLM.FlexFallbackAfter),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("LLM client: %w", err)
		}
		p.Analyzer = &analysis.Analyzer{Model: model, DefaultModel: cfg.LLM.Model}
		if opts.BatchAPI == nil {
			opts.BatchAPI = model
		}
	case cfg.LLM.Demo:
		p.Analyzer = &analysis.Analyzer{Model: analysis.Demo{}, DefaultModel: cfg.LLM.Model}
		p.Demo = true
	}
	return p, opts.BatchAPI, nil
}

// Handler is the worker's HTTP handler: the API (/v1, /metrics, health,
// recording links) and the console (/login, /calls, /riverui/ when the App
// has a working River client).
func (a *App) Handler() http.Handler {
	s := &api.Server{
		Pool: a.Pool, Schema: a.schema, Token: a.Config.APIToken, Access: a.Access, Reader: a.Calls, Enqueuer: a.Calls,
		Retention: a.Calls, Links: a.Links, Recordings: a.Recordings, Logger: a.Log,
	}
	if a.Registry != nil {
		s.Metrics = metrics.Handler(a.Registry, a.Log)
	}
	c := &console.Server{Calls: a.Calls, Sessions: a.Access, Logger: a.Log}
	if a.River != nil && a.riverUI == nil {
		ui, err := riverui.NewHandler(&riverui.HandlerOpts{
			Endpoints: riverui.NewEndpoints(a.River, nil), Logger: a.Log, Prefix: "/riverui",
		})
		if err != nil {
			// The embedded frontend is part of the module: this is a build defect.
			a.Log.Error("River UI disabled", slog.String("error", err.Error()))
		} else {
			ctx, cancel := context.WithCancel(context.Background())
			if err := ui.Start(ctx); err != nil {
				cancel()
				a.Log.Error("River UI disabled", slog.String("error", err.Error()))
			} else {
				a.riverUI, a.stopRiverUI = ui, cancel
			}
		}
	}
	if a.riverUI != nil {
		c.RiverUI = a.riverUI
	}
	apiHandler, consoleHandler := s.Handler(), c.Handler()
	mux := http.NewServeMux()
	mux.Handle("/", consoleHandler)
	for _, prefix := range []string{"/v1/", "/metrics", "/healthz", "/readyz", "/r/"} {
		mux.Handle(prefix, apiHandler)
	}
	return mux
}

// Close closes the pool the App opened.
func (a *App) Close() {
	if a.stopRiverUI != nil {
		a.stopRiverUI()
	}
	if a.closePool && a.Pool != nil {
		a.Pool.Close()
	}
}

func riverLogger(opts Options) *slog.Logger {
	if opts.RiverLogger != nil {
		return opts.RiverLogger
	}
	if opts.Logger != nil {
		return opts.Logger
	}
	return slog.Default()
}

// flexFallbackAfter turns POSTCALL_FLEX_FALLBACK_AFTER into the LLM
// client's setting, where 0 is "the default" and a negative value "at once".
func flexFallbackAfter(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
