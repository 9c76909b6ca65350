package jobs

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/postcall/postcall/heartbeat"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/retention"
)

// Defaults of ClientConfig.
const (
	// DefaultPurgeSchedule runs the purge nightly at 03:00 UTC, and
	// DefaultRetentionSchedule the hard delete at 03:30 UTC: outside office
	// hours almost everywhere the calls are made.
	DefaultPurgeSchedule     = "0 3 * * *"
	DefaultRetentionSchedule = "30 3 * * *"
	// DefaultRunConcurrency is how many analysis and how many QC jobs run
	// at once: the LLM client's own concurrency cap (analysis.
	// DefaultConcurrency).
	DefaultRunConcurrency = 16
	// DefaultDeliveryConcurrency is how many CRM deliveries run at once. A
	// delivery mostly waits on its receiver (up to 15 s), so this is set by
	// how many slow receivers should not hold up the rest, not by CPUs.
	DefaultDeliveryConcurrency = 32
	// DefaultSoftStopTimeout is how long a stopping worker lets running
	// jobs finish.
	DefaultSoftStopTimeout = 30 * time.Second
	// DefaultRescueAfter is how long a job whose worker died stays running
	// before River retries it: above the longest run (10 minutes) with room
	// to spare.
	DefaultRescueAfter = 15 * time.Minute
	// MinRescueAfter is the shortest RescueAfter that leaves every job a
	// useful timeout (two thirds of it).
	MinRescueAfter = 5 * time.Second
)

// ClientConfig configures postcall's River client.
type ClientConfig struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Pipeline does the post-call work. Required.
	Pipeline *pipeline.Service
	// Retention runs the purge, the hard delete and the recording
	// deletions. Nil: no retention jobs are registered.
	Retention *retention.Service
	// PurgeSchedule and RetentionSchedule are the cron expressions of the
	// periodic purge and hard delete (robfig/cron standard syntax, CRON_TZ=
	// allowed), used with Retention. Defaults
	// DefaultPurgeSchedule and DefaultRetentionSchedule.
	PurgeSchedule, RetentionSchedule string
	// RunConcurrency is how many analysis and how many QC jobs run at once
	// in this process. The LLM client's own concurrency cap is what limits
	// requests; this only keeps enough jobs in flight to use it. Default
	// DefaultRunConcurrency.
	RunConcurrency int
	// Batches sends runs through the Batch API. Nil: batch jobs are not
	// worked.
	Batches *pipeline.Batches
	// BatchPollInterval is how often a submitted batch is polled. Default
	// DefaultBatchPollInterval.
	BatchPollInterval time.Duration
	// DeliveryConcurrency is how many CRM deliveries run at once in this
	// process. Default DefaultDeliveryConcurrency.
	DeliveryConcurrency int
	// SoftStopTimeout is how long a stopping worker lets running jobs
	// finish before their contexts are cancelled. Default
	// DefaultSoftStopTimeout.
	SoftStopTimeout time.Duration
	// RescueAfter is how long a job whose worker died (kill -9, lost node)
	// stays running before the leader's rescuer makes it available again.
	// River never rescues a job younger than its kind's timeout, so every
	// job timeout is held to two thirds of RescueAfter (runs and retention
	// jobs at most 10m, other jobs at most 1m): a job still working is
	// cancelled by its own timeout before it could be rescued and worked a
	// second time. Default DefaultRescueAfter.
	RescueAfter time.Duration
	// ClientID is River's client id of this process (river.Config.ID),
	// the id its heartbeats carry. Default heartbeat.NewClientID().
	ClientID string
	// WorkerDeadAfter is how long a worker process may miss its heartbeats
	// before the jobs it holds running are made available again (see
	// package heartbeat). Default heartbeat.DefaultDeadAfter.
	WorkerDeadAfter time.Duration
	// ObserveRecovered counts jobs recovered from dead or stopped workers
	// by cause (RecoveredDead, RecoveredStopped). Default nil.
	ObserveRecovered func(cause string, n int)
	// Schema is the database schema of River's tables. Default "": the
	// connection's search_path.
	Schema string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// FetchPollInterval overrides River's poll interval (tests). Default
	// River's own (1s; LISTEN/NOTIFY wakes workers sooner).
	FetchPollInterval time.Duration
}

// NewClient returns postcall's working River client: every queue, a worker
// for every job kind the configured services work, and the periodic
// retention jobs. Processes that only enqueue use a Queue instead.
func NewClient(cfg ClientConfig) (*river.Client[pgx.Tx], error) {
	if cfg.Pool == nil {
		return nil, fmt.Errorf("jobs client: Pool is required")
	}
	if cfg.Pipeline == nil {
		return nil, fmt.Errorf("jobs client: Pipeline is required")
	}
	if cfg.RunConcurrency <= 0 {
		cfg.RunConcurrency = DefaultRunConcurrency
	}
	if cfg.DeliveryConcurrency <= 0 {
		cfg.DeliveryConcurrency = DefaultDeliveryConcurrency
	}
	if cfg.SoftStopTimeout <= 0 {
		cfg.SoftStopTimeout = DefaultSoftStopTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RescueAfter <= 0 {
		cfg.RescueAfter = DefaultRescueAfter
	}
	if cfg.ClientID == "" {
		cfg.ClientID = heartbeat.NewClientID()
	}
	if cfg.WorkerDeadAfter <= 0 {
		cfg.WorkerDeadAfter = heartbeat.DefaultDeadAfter
	}
	t := timeoutsFor(cfg.RescueAfter)
	workers := river.NewWorkers()
	river.AddWorker(workers, &RunWorker[AnalysisArgs]{DB: cfg.Pool, Pipeline: cfg.Pipeline, RunTimeout: t.run})
	river.AddWorker(workers, &RunWorker[QCArgs]{DB: cfg.Pool, Pipeline: cfg.Pipeline, RunTimeout: t.run})
	if cfg.Batches != nil {
		river.AddWorker(workers, &BatchWorker{Batches: cfg.Batches, PollInterval: cfg.BatchPollInterval, StepTimeout: t.run})
	}
	if cfg.Pipeline.Deliveries != nil {
		river.AddWorker(workers, &DeliverWorker{DB: cfg.Pool, Deliveries: cfg.Pipeline.Deliveries})
	}

	river.AddWorker(workers, &RescueDeadWorkersWorker{
		DB: cfg.Pool, DeadAfter: cfg.WorkerDeadAfter, Observe: cfg.ObserveRecovered, Logger: cfg.Logger,
	})

	rc := &river.Config{
		// The id this process's heartbeats carry (heartbeat.Beater).
		ID:      cfg.ClientID,
		Logger:  cfg.Logger,
		Schema:  cfg.Schema,
		Workers: workers,
		// Completed jobs are only bookkeeping (results live in postcall's
		// tables): keep them a day for debugging, then let River clean up.
		CompletedJobRetentionPeriod: 24 * time.Hour,
		// Discarded jobs are failures someone should look at: keep them a
		// week.
		DiscardedJobRetentionPeriod: 7 * 24 * time.Hour,
		// A job whose worker died (kill -9, lost node) is rescued
		// WorkerDeadAfter after its last heartbeat (RescueDeadWorkersArgs);
		// River's own rescuer is the backstop for a process alive but
		// stuck, after this, which exceeds every job timeout (timeoutsFor)
		// so a slow but live job is never worked twice.
		RescueStuckJobsAfter: cfg.RescueAfter,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(rescueDeadInterval),
			func() (river.JobArgs, *river.InsertOpts) { return RescueDeadWorkersArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true})},
		// An attempt rescued from this process while it was thought dead
		// must not report on the next attempt's row.
		Middleware: []rivertype.Middleware{&attemptGuard{db: cfg.Pool, maxHold: cfg.RescueAfter, logger: cfg.Logger}},
		// Default timeout for jobs that set none; runs and retention jobs
		// set their own.
		JobTimeout: t.job,
		// On SIGTERM running jobs get this long to finish before their
		// contexts are cancelled; a cancelled run is retried later and
		// pays again only for a request whose result was not yet stored.
		SoftStopTimeout: cfg.SoftStopTimeout,
	}
	if err := addRetention(&cfg, t, workers, rc); err != nil {
		return nil, fmt.Errorf("jobs client: %w", err)
	}
	if cfg.FetchPollInterval > 0 {
		rc.FetchPollInterval = cfg.FetchPollInterval
		rc.FetchCooldown = min(cfg.FetchPollInterval, 100*time.Millisecond)
	}
	rc.Queues = map[string]river.QueueConfig{
		QueueDefault:    {MaxWorkers: 10},
		QueueAnalysis:   {MaxWorkers: cfg.RunConcurrency},
		QueueQC:         {MaxWorkers: cfg.RunConcurrency},
		QueueDeliveries: {MaxWorkers: cfg.DeliveryConcurrency},
	}
	client, err := river.NewClient(riverpgxv5.New(cfg.Pool), rc)
	if err != nil {
		return nil, fmt.Errorf("jobs client: %w", err)
	}
	return client, nil
}

// timeouts are the job timeouts of one client.
type timeouts struct {
	// run bounds an analysis or QC run; retention a purge or hard-delete
	// job, which stops at a batch boundary after retentionBudget; job every
	// other job.
	run, retention, retentionBudget, job time.Duration
}

// timeoutsFor holds every job timeout to two thirds of rescueAfter: River
// rescues a job whose attempt is older than both RescueStuckJobsAfter and
// the job's own timeout, so a job that might still be working must have
// been cancelled by its timeout well before. With the default 15m nothing
// is shortened.
func timeoutsFor(rescueAfter time.Duration) timeouts {
	limit := rescueAfter * 2 / 3
	t := timeouts{
		run:       min(runTimeout, limit),
		retention: min(retentionJobTimeout, limit),
		job:       min(time.Minute, limit),
	}
	t.retentionBudget = min(retentionBudget, t.retention*4/5)
	return t
}
