// Package retention removes personal data when its time is up or when
// someone asks: the sensitive-data purge, the hard delete of soft-deleted
// calls, erasure requests, legal holds, and the audit trail that proves each
// step.
//
// Every run works in short transactions of at most BatchSize calls, walking
// an index by keyset, with lock and statement timeouts set per transaction;
// batches are sized to take about BatchTarget and paced so that a run is
// busy at most Share of the time (see pacer). What a batch does to its
// calls, the counts of its run and the per-call audit rows commit together,
// so an interrupted run leaves a true record and the next run carries on
// where it stopped: a call that was purged or deleted no longer matches.
//
// Recording objects are never deleted inside a database transaction. The
// transaction that purges or hard-deletes a call writes the call's recording
// key to an outbox and asks for a deletion job in that same transaction
// (Queue); the job (DeleteRecordings) deletes the objects and forgets each
// key once the bucket confirms it gone. A crash in between leaves the key in
// the outbox, never an orphaned object.
//
// The package knows nothing of River: it defines the Queue it needs, which
// jobs.Queue implements, and the River workers call the Service. What
// belongs here: any rule about when personal data goes, how a run is paced,
// and what it records for the audit.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/postcall/postcall/internal/wait"
	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/store"
)

// Run kinds, as stored in retention_runs.kind.
const (
	KindPurge      = "purge"
	KindHardDelete = "hard_delete"
	KindErasure    = "erasure"
)

// Run triggers, as stored in retention_runs.trigger.
const (
	TriggerSchedule = "schedule" // a River periodic job
	TriggerCommand  = "command"  // `postcall purge`
	TriggerRequest  = "request"  // `postcall purge --call/--phone`
)

// Run statuses, as stored in retention_runs.status.
const (
	StatusRunning     = "running"
	StatusFinished    = "finished"
	StatusPartial     = "partial"     // stopped at its Budget; the next run goes on
	StatusInterrupted = "interrupted" // cancelled, or found still running long after its last batch
	StatusFailed      = "failed"
)

// Defaults of the Service's retention periods, for agents whose plan sets
// none.
const (
	// DefaultPurgeAfterDays keeps a call's personal data for 30 days: long
	// enough for a monthly QC cycle, disputes and reanalysis, short enough to
	// meet data minimisation without anyone having to ask. An agent whose
	// calls must be kept longer says so in its plan.
	DefaultPurgeAfterDays = 30
	// DefaultHardDeleteAfterDays gives a soft-deleted call a 30-day undo
	// window, the usual trash period, which also completes a deletion within
	// GDPR's one-month deadline for answering an erasure request.
	DefaultHardDeleteAfterDays = 30
)

// Defaults of the Service's tuning fields.
const (
	// DefaultPause is 0: the purge already pauses after each batch for a
	// quarter of the time the batch took (busy at most DefaultShare of the
	// time), which leaves a busy database more room than a fixed pause and
	// an idle one less idle time. A Pause set is a floor on top of that.
	DefaultPause time.Duration = 0
	// DefaultBatchSize is the most calls one batch takes. Batches are
	// sized to take about DefaultBatchTarget, which in the benchmark is 300
	// to 700 calls; the cap only matters on a much faster database, where
	// 5000 lets an idle database use batches large enough that round trips
	// and commits cost next to nothing.
	DefaultBatchSize = 5000
	// DefaultBatchTarget keeps each batch, and so its one purge statement
	// and its row locks, under a quarter of a second even when a batch
	// runs three times as slowly as the one before it (a checkpoint, a
	// burst of other load).
	DefaultBatchTarget = 80 * time.Millisecond
	// DefaultShare leaves the database a fifth of the time between
	// batches, whatever its speed, for the rest of the load: a purge that
	// never paused would hold one CPU for its whole run.
	DefaultShare            = 0.8
	DefaultLockTimeout      = 5 * time.Second
	DefaultStatementTimeout = time.Minute
)

// batchAttempts is how often a batch is tried when it fails on a lock
// timeout, a deadlock or a statement timeout.
const batchAttempts = 3

// ErrNoRecordingStore is returned by DeleteRecordings when the Service has
// no Recordings: the keys stay in the outbox until a worker with S3_BUCKET
// deletes them.
var ErrNoRecordingStore = errors.New("no recording store configured (S3_BUCKET): recording objects wait to be deleted")

// DB is a pool (or, in tests, a transaction): it runs statements and starts
// transactions.
type DB interface {
	store.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Queue enqueues one recording deletion job per outbox batch in tx;
// *jobs.Queue is one.
type Queue interface {
	EnqueueRecordingDeletions(ctx context.Context, tx pgx.Tx, batches []int64) error
}

// RecordingDeleter deletes recording objects; *recording.Store is one.
type RecordingDeleter interface {
	Delete(ctx context.Context, keys []string) (recording.DeleteResult, error)
}

// Service runs retention on the store. The zero value of every optional
// field selects its default.
type Service struct {
	// DB is the database. Required.
	DB DB
	// PurgeAfterDays is how many days after it ended a call keeps its
	// personal data when its agent's plan sets no retention.purge_after_days;
	// 0 purges at the next run. Set from POSTCALL_PURGE_AFTER_DAYS (default
	// 30); here 0 means 0.
	PurgeAfterDays int
	// HardDeleteAfterDays is how many days after its soft delete a call is
	// hard-deleted when its agent's plan sets no
	// retention.hard_delete_after_days; 0 at the next run. Commands set it
	// from POSTCALL_HARD_DELETE_AFTER_DAYS (default
	// DefaultHardDeleteAfterDays); here 0 means 0.
	HardDeleteAfterDays int
	// BatchSize is the most calls per transaction. Default
	// DefaultBatchSize. Within it, each batch is sized to take about
	// BatchTarget at the speed of the one before (see pacer).
	BatchSize int
	// BatchTarget is how long a batch should take. Default
	// DefaultBatchTarget.
	BatchTarget time.Duration
	// Share is the largest share of a run's time spent in batches: after a
	// batch that took d the run pauses at least d*(1-Share)/Share. Default
	// DefaultShare; 1 for no such pause.
	Share float64
	// Pause is the least wait between two batches. Default DefaultPause.
	Pause time.Duration
	// LockTimeout bounds each wait for a row lock (lock_timeout); a batch
	// that times out is tried again. Default 5s.
	LockTimeout time.Duration
	// StatementTimeout bounds each statement (statement_timeout). Default 1m.
	StatementTimeout time.Duration
	// Recordings deletes recording objects. Nil: DeleteRecordings returns
	// ErrNoRecordingStore and the keys wait in the outbox.
	Recordings RecordingDeleter
	// Queue enqueues the deletion jobs of recording outbox batches, in the
	// transaction that wrote each batch. Required as soon as a purged or
	// hard-deleted call has a recording (the batch fails rather than leave
	// its keys waiting unannounced); nil skips the requeue of waiting
	// deletions at the start of each run.
	Queue Queue
	// Now is the clock that cutoffs and windows are computed from. Default
	// time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// RunOptions says how to run the purge, the hard delete or an erasure.
type RunOptions struct {
	// Trigger is recorded with the run. Default TriggerCommand
	// (TriggerRequest for erasures).
	Trigger string
	// DryRun counts what the run would do and changes nothing but its own
	// retention_runs row.
	DryRun bool
	// Budget stops the run at the first batch boundary after this long, with
	// status partial; the next run goes on. Default 0: until done.
	Budget time.Duration
}

// Report says what a run did (or, for a dry run, would do).
type Report struct {
	// RunID is the run's retention_runs id.
	RunID int64
	// Kind is KindPurge, KindHardDelete or KindErasure.
	Kind   string
	DryRun bool
	// Status is the run's final status.
	Status string
	// Purged counts calls whose personal data was removed.
	Purged int
	// Deleted counts hard-deleted calls.
	Deleted int
	// SkippedHold counts calls that were due but are on legal hold (their
	// own or their agent's).
	SkippedHold int
	// ObjectsQueued counts recording objects put in the deletion outbox.
	ObjectsQueued int
	// Batches are the outbox batches written; each has a deletion job.
	Batches []int64
	// Errors counts batch failures, including those a retry got past.
	Errors int
	// Agents details a purge or hard delete per agent.
	Agents []AgentReport
	// AlreadyPurged is set by an erasure of a call that was purged before.
	AlreadyPurged bool
}

// AgentReport is one agent's part of a purge or hard delete.
type AgentReport struct {
	AgentID string `json:"agent_id"`
	// AfterDays is the retention period applied.
	AfterDays int `json:"after_days"`
	// FromPlan is true when the agent's plan set AfterDays, false when it is
	// the global default.
	FromPlan bool `json:"from_plan"`
	// Cutoff: calls that ended (purge) or were soft-deleted (hard delete)
	// before it were due.
	Cutoff time.Time `json:"cutoff"`
	// OnHold is true when the whole agent is on legal hold.
	OnHold bool `json:"on_hold"`
	// Done counts calls purged or deleted.
	Done int `json:"done"`
	// SkippedHold counts due calls on hold.
	SkippedHold int `json:"skipped_hold"`
}

// counts is what one batch adds to its run.
type counts struct {
	purged, deleted, skippedHold, objectsQueued, errors int
}

// inBatchTx runs fn, a batch of run r, in a transaction with the Service's
// lock and statement timeouts. A batch that fails on a lock timeout, a
// deadlock, a serialization failure or a statement timeout is tried again
// after a pause, up to batchAttempts times; each such failure counts in the
// run's errors.
//
// A batch of the purge or the hard delete, which resume where they stopped,
// commits without waiting for its WAL to reach the disk (synchronous_commit
// off). Its commit would otherwise flush megabytes of WAL while holding the
// lock that orders committing NOTIFYs (its deletion job notifies, as every
// ingest's jobs do), and ingest would wait for it. A crash may then lose
// the last batches committed before it, which is the same as the run
// having stopped before them: their calls, outbox rows, audit rows and
// counts go together, and the next run purges the calls again. (A deletion
// job of a lost batch may already have deleted its objects; the next run
// queues the keys again and a missing object counts as gone.) An erasure
// request answers only once its batch is durable.
func (s *Service) inBatchTx(ctx context.Context, r *run, fn func(tx pgx.Tx) error) error {
	syncCommit := "on"
	if r.kind != KindErasure {
		syncCommit = "off"
	}
	onRetry := s.noteRetry(ctx, r)
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true),
				set_config('synchronous_commit', $3, true)`,
				millis(s.lockTimeout()), millis(s.statementTimeout()), syncCommit)
			if err != nil {
				return fmt.Errorf("set batch timeouts and commit mode: %w", err)
			}
			return fn(tx)
		})
		if err == nil || ctx.Err() != nil || !retryable(err) || attempt == batchAttempts {
			return err
		}
		onRetry(err)
		s.logger().WarnContext(ctx, "retention batch failed; trying again", slog.Int("attempt", attempt),
			slog.String("error", err.Error()))
		if err := wait.Sleep(ctx, s.Pause+time.Duration(attempt)*200*time.Millisecond); err != nil {
			return err
		}
	}
}

// retryable reports whether a batch that failed with err may succeed if
// tried again: it met a lock held too long, a deadlock, or a slow moment.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "55P03", // lock_not_available (lock_timeout)
		"40P01", // deadlock_detected
		"40001", // serialization_failure
		"57014": // query_canceled (statement_timeout)
		return true
	}
	return false
}

func millis(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

func (s *Service) batchSize() int {
	if s.BatchSize > 0 {
		return s.BatchSize
	}
	return DefaultBatchSize
}

// pacer returns a new pacer for one sweep, from the Service's settings.
func (s *Service) pacer() *pacer {
	target := s.BatchTarget
	if target <= 0 {
		target = DefaultBatchTarget
	}
	share := s.Share
	if share <= 0 || share > 1 {
		share = DefaultShare
	}
	return newPacer(s.batchSize(), target, share, s.Pause)
}

func (s *Service) lockTimeout() time.Duration {
	if s.LockTimeout > 0 {
		return s.LockTimeout
	}
	return DefaultLockTimeout
}

func (s *Service) statementTimeout() time.Duration {
	if s.StatementTimeout > 0 {
		return s.StatementTimeout
	}
	return DefaultStatementTimeout
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}
