package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/robfig/cron/v3"

	"github.com/postcall/postcall/retention"
)

// retentionJobTimeout bounds one purge or hard-delete job. It stays below
// the client's RescueStuckJobsAfter (timeoutsFor shortens it with a short
// RescueAfter), so a long run is never rescued (and worked twice) while it
// is still going.
const retentionJobTimeout = 10 * time.Minute

// retentionBudget is how long one purge or hard-delete job works before it
// stops at a batch boundary (status partial) and snoozes, so that the next
// slice goes on in a fresh job well inside retentionJobTimeout.
const retentionBudget = 8 * time.Minute

// recordingRetryCap is the longest wait between two tries of a recording
// deletion the bucket refused.
const recordingRetryCap = time.Hour

// noRecordingStoreSnooze is how often a deletion job on a worker without
// S3_BUCKET looks again.
const noRecordingStoreSnooze = time.Hour

// PurgeArgs runs the sensitive-data purge once: the periodic job of
// POSTCALL_PURGE_SCHEDULE.
type PurgeArgs struct{}

func (PurgeArgs) Kind() string { return "postcall.purge" }

func (PurgeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, MaxAttempts: 3}
}

// HardDeleteArgs runs the soft-delete retention once: the periodic job of
// POSTCALL_RETENTION_SCHEDULE.
type HardDeleteArgs struct{}

func (HardDeleteArgs) Kind() string { return "postcall.hard_delete" }

func (HardDeleteArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, MaxAttempts: 3}
}

// DeleteRecordingsArgs deletes one batch of the recording deletion outbox.
// It carries the batch number only: the keys stay in postcall's table, not
// in River's.
type DeleteRecordingsArgs struct {
	Batch int64 `json:"batch"`
}

func (DeleteRecordingsArgs) Kind() string { return "postcall.delete_recordings" }

// InsertOpts: one live job per batch, so that the requeue at the start of
// every retention run only replaces jobs that gave up. Retried hourly for a
// week; after that the next retention run requeues it.
func (DeleteRecordingsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       QueueDefault,
		MaxAttempts: 7*24 + 12,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
			rivertype.JobStateRunning, rivertype.JobStateScheduled,
		}},
	}
}

// PurgeWorker works PurgeArgs.
type PurgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	Retention *retention.Service
	// JobTimeout and Budget default to retentionJobTimeout and
	// retentionBudget.
	JobTimeout, Budget time.Duration
}

func (w *PurgeWorker) Timeout(*river.Job[PurgeArgs]) time.Duration {
	return cmp.Or(w.JobTimeout, retentionJobTimeout)
}

func (w *PurgeWorker) Work(ctx context.Context, job *river.Job[PurgeArgs]) error {
	return continueIfPartial(w.Retention.Purge(ctx, retention.RunOptions{
		Trigger: retention.TriggerSchedule, Budget: cmp.Or(w.Budget, retentionBudget),
	}))
}

// HardDeleteWorker works HardDeleteArgs.
type HardDeleteWorker struct {
	river.WorkerDefaults[HardDeleteArgs]
	Retention *retention.Service
	// JobTimeout and Budget default to retentionJobTimeout and
	// retentionBudget.
	JobTimeout, Budget time.Duration
}

func (w *HardDeleteWorker) Timeout(*river.Job[HardDeleteArgs]) time.Duration {
	return cmp.Or(w.JobTimeout, retentionJobTimeout)
}

func (w *HardDeleteWorker) Work(ctx context.Context, job *river.Job[HardDeleteArgs]) error {
	return continueIfPartial(w.Retention.HardDelete(ctx, retention.RunOptions{
		Trigger: retention.TriggerSchedule, Budget: cmp.Or(w.Budget, retentionBudget),
	}))
}

// continueIfPartial snoozes a job whose run stopped at its budget, so that
// the next slice starts at once in a fresh run (snoozing uses no attempt).
func continueIfPartial(rep *retention.Report, err error) error {
	if err != nil {
		return err
	}
	if rep.Status == retention.StatusPartial {
		return river.JobSnooze(time.Second)
	}
	return nil
}

// DeleteRecordingsWorker works DeleteRecordingsArgs: it returns an error
// until the bucket has confirmed every key of the batch gone, so River tries
// again.
type DeleteRecordingsWorker struct {
	river.WorkerDefaults[DeleteRecordingsArgs]
	Retention *retention.Service
	Logger    *slog.Logger
}

func (w *DeleteRecordingsWorker) Work(ctx context.Context, job *river.Job[DeleteRecordingsArgs]) error {
	_, err := w.Retention.DeleteRecordings(ctx, job.Args.Batch)
	if errors.Is(err, retention.ErrNoRecordingStore) {
		w.Logger.WarnContext(ctx, "recording deletions wait: this worker has no S3_BUCKET",
			slog.Int64("batch", job.Args.Batch))
		return river.JobSnooze(noRecordingStoreSnooze)
	}
	return err
}

// NextRetry backs off exponentially from 2s up to an hour: a bucket that
// refuses deletions is tried hourly, not days apart as River's default
// schedule would by the end.
func (w *DeleteRecordingsWorker) NextRetry(job *river.Job[DeleteRecordingsArgs]) time.Time {
	wait := recordingRetryCap
	if job.Attempt < 12 {
		wait = min(time.Duration(1<<job.Attempt)*time.Second, recordingRetryCap)
	}
	return time.Now().Add(wait)
}

// addRetention registers the retention workers and the periodic purge and
// hard delete when the client has a Retention service. River's leader
// election makes only the elected leader enqueue the periodic jobs.
func addRetention(cfg *ClientConfig, t timeouts, workers *river.Workers, rc *river.Config) error {
	if cfg.Retention == nil {
		return nil
	}
	river.AddWorker(workers, &PurgeWorker{Retention: cfg.Retention, JobTimeout: t.retention, Budget: t.retentionBudget})
	river.AddWorker(workers, &HardDeleteWorker{Retention: cfg.Retention, JobTimeout: t.retention, Budget: t.retentionBudget})
	river.AddWorker(workers, &DeleteRecordingsWorker{Retention: cfg.Retention, Logger: cfg.Logger})
	periodic, err := RetentionPeriodicJobs(cfg.PurgeSchedule, cfg.RetentionSchedule, time.Now())
	if err != nil {
		return err
	}
	rc.PeriodicJobs = append(rc.PeriodicJobs, periodic...)
	return nil
}

// RetentionPeriodicJobs returns the periodic purge (purgeSchedule, default
// DefaultPurgeSchedule) and hard delete (retentionSchedule, default
// DefaultRetentionSchedule), parsed with cron.ParseStandard
// (CRON_TZ= allowed). Both run on start as well, so a run missed while no
// worker was up happens at the next start; each job is unique per period of
// its schedule (measured around now), so that restarts within a period add
// no second run.
func RetentionPeriodicJobs(purgeSchedule, retentionSchedule string, now time.Time) ([]*river.PeriodicJob, error) {
	var jobs []*river.PeriodicJob
	for _, spec := range []struct {
		variable, expr, def string
		args                river.JobArgs
	}{
		{"POSTCALL_PURGE_SCHEDULE", purgeSchedule, DefaultPurgeSchedule, PurgeArgs{}},
		{"POSTCALL_RETENTION_SCHEDULE", retentionSchedule, DefaultRetentionSchedule, HardDeleteArgs{}},
	} {
		expr := spec.expr
		if expr == "" {
			expr = spec.def
		}
		schedule, err := cron.ParseStandard(expr)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", spec.variable, expr, err)
		}
		args := spec.args
		opts := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: SchedulePeriod(schedule, now)}}
		jobs = append(jobs, river.NewPeriodicJob(schedule,
			func() (river.JobArgs, *river.InsertOpts) { return args, opts },
			&river.PeriodicJobOpts{ID: args.Kind(), RunOnStart: true}))
	}
	return jobs, nil
}

// SchedulePeriod is the shortest interval between the schedule's next few
// runs after now, between a minute and a day: the uniqueness period of its
// job. A nightly schedule gives 24h.
func SchedulePeriod(schedule cron.Schedule, now time.Time) time.Duration {
	period := 24 * time.Hour
	at := schedule.Next(now)
	for range 8 {
		next := schedule.Next(at)
		if next.IsZero() {
			break
		}
		period = min(period, next.Sub(at))
		at = next
	}
	return max(period, time.Minute)
}
