package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Queues lists the queues a client (NewClient) runs.
func Queues() []string {
	return []string{QueueDefault, QueueAnalysis, QueueQC, QueueDeliveries}
}

// Job outcomes of a JobEvent, named after the state River leaves the job in.
const (
	OutcomeCompleted = "completed"
	// OutcomeRetryable: the job failed and River will retry it.
	OutcomeRetryable = "retryable"
	// OutcomeDiscarded: the job failed for the last time.
	OutcomeDiscarded = "discarded"
	OutcomeCancelled = "cancelled"
	// OutcomeSnoozed: the job asked to run again later (a run waiting for
	// an LLM endpoint or a provider outage, a delivery's next retry); a
	// snooze uses no attempt.
	OutcomeSnoozed = "snoozed"
	// OutcomeInterrupted: the worker stopped while the job ran; it is
	// worked again without using an attempt.
	OutcomeInterrupted = "interrupted"
)

// JobEvent describes one job River finished working (one attempt), for
// metrics. It holds no job arguments.
type JobEvent struct {
	// Kind is the job kind (postcall.analysis, postcall.qc,
	// postcall.deliver, ...).
	Kind  string
	Queue string
	// Outcome is one of the Outcome* constants.
	Outcome string
	// RunDuration is the time the worker ran.
	RunDuration time.Duration
	// QueueWait is the time the job waited between becoming available and
	// starting.
	QueueWait time.Duration
	// JobID and Attempt name the attempt.
	JobID   int64
	Attempt int
	// Error is what the attempt returned, for a failed one (retryable or
	// discarded): postcall's own error texts, which name ids, never call
	// content.
	Error string
}

// watchBuffer is the subscription's buffer. River drops events (and logs a
// warning) when it is full; the reader only counts, so it keeps up with
// any realistic burst at this size.
const watchBuffer = 10_000

// WatchJobs calls observe for every job attempt the client finishes, from
// River's event subscription, until the client stops (River then ends the
// subscription) or stop is called. The client must be a working client; call
// WatchJobs before Start, and again after a restart. observe runs on one
// goroutine and must not block.
func WatchJobs(client *river.Client[pgx.Tx], observe func(JobEvent)) (stop func()) {
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: watchBuffer,
		Kinds: []river.EventKind{
			river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled,
			river.EventKindJobSnoozed, river.EventKindJobInterrupted,
		},
	})
	go func() {
		for ev := range events {
			if ev.Job == nil {
				continue
			}
			observe(jobEvent(ev))
		}
	}()
	return cancel
}

func jobEvent(ev *river.Event) JobEvent {
	e := JobEvent{Kind: ev.Job.Kind, Queue: ev.Job.Queue, Outcome: jobOutcome(ev), JobID: ev.Job.ID, Attempt: ev.Job.Attempt}
	if ev.JobStats != nil {
		e.RunDuration, e.QueueWait = ev.JobStats.RunDuration, ev.JobStats.QueueWaitDuration
	}
	if ev.Kind == river.EventKindJobFailed && len(ev.Job.Errors) > 0 {
		e.Error = ev.Job.Errors[len(ev.Job.Errors)-1].Error
	}
	return e
}

// LogFailure logs a failed attempt at WARN (River retries it) or ERROR (it
// was the last): River's own "Job errored" line is INFO, below the level
// postcall holds River's logger at, so without this an operator would not
// see at the default level that a job failed, nor why.
func LogFailure(ctx context.Context, log *slog.Logger, e JobEvent) {
	level := slog.LevelWarn
	switch e.Outcome {
	case OutcomeRetryable:
	case OutcomeDiscarded:
		level = slog.LevelError
	default:
		return
	}
	log.Log(ctx, level, "job failed", slog.String("kind", e.Kind), slog.Int64("job", e.JobID),
		slog.Int("attempt", e.Attempt), slog.String("outcome", e.Outcome), slog.String("error", e.Error))
}

func jobOutcome(ev *river.Event) string {
	switch ev.Kind {
	case river.EventKindJobCompleted:
		return OutcomeCompleted
	case river.EventKindJobFailed:
		if ev.Job.State == rivertype.JobStateDiscarded {
			return OutcomeDiscarded
		}
		return OutcomeRetryable
	case river.EventKindJobCancelled:
		return OutcomeCancelled
	case river.EventKindJobSnoozed:
		return OutcomeSnoozed
	case river.EventKindJobInterrupted:
		return OutcomeInterrupted
	}
	return string(ev.Kind)
}
