package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/store"
)

// Action is what a retention audit row records was done to a call, as
// stored in retention_audit.action.
type Action string

// Audit actions.
const (
	ActionPurge      Action = "purge"
	ActionHardDelete Action = "hard_delete"
	ActionSoftDelete Action = "soft_delete"
	ActionRestore    Action = "restore"
	ActionHoldSet    Action = "hold_set"
	ActionHoldClear  Action = "hold_clear"
)

// Audit reasons, as stored in retention_audit.reason.
const (
	ReasonPolicy     = "policy"      // the agent's retention period ran out
	ReasonRequest    = "request"     // an erasure request
	ReasonOperator   = "operator"    // a delete, restore or hold command
	ReasonLateResult = "late_result" // a run stored its result after the purge
)

// staleAfter is how long after its last batch a run still marked running is
// taken to have died with its process. It is far above the time one batch
// can take (a few statements, each bounded by the statement timeout).
const staleAfter = 30 * time.Minute

// run is the retention_runs row of a run in progress. Its counts live in the
// row, added by each batch's transaction.
type run struct {
	id      int64
	kind    string
	dryRun  bool
	started time.Time
	budget  time.Duration
	// batches are the recording outbox batches the run wrote.
	batches []int64
	partial bool
}

// startRun records a new run. It first marks runs that died with their
// process (still running, no batch for staleAfter) as interrupted.
func (s *Service) startRun(ctx context.Context, kind, trigger string, opts RunOptions, policy any) (*run, error) {
	policyJSON, err := json.Marshal(policy)
	if err != nil {
		return nil, fmt.Errorf("start %s run: encode policy: %w", kind, err)
	}
	_, err = s.DB.Exec(ctx, `
		UPDATE retention_runs SET status = 'interrupted', finished_at = updated_at,
			error = COALESCE(error, 'no progress since ' || updated_at || ': the process running it stopped')
		WHERE status = 'running' AND updated_at < now() - make_interval(secs => $1)`, staleAfter.Seconds())
	if err != nil {
		return nil, fmt.Errorf("start %s run: mark stale runs: %w", kind, err)
	}
	r := &run{kind: kind, dryRun: opts.DryRun, started: time.Now(), budget: opts.Budget}
	err = s.DB.QueryRow(ctx, `
		INSERT INTO retention_runs (kind, trigger, dry_run, policy) VALUES ($1, $2, $3, $4) RETURNING id`,
		kind, trigger, opts.DryRun, policyJSON).Scan(&r.id)
	if err != nil {
		return nil, fmt.Errorf("start %s run: %w", kind, err)
	}
	return r, nil
}

// outOfBudget reports whether the run has used up its time budget.
func (r *run) outOfBudget() bool {
	return r.budget > 0 && time.Since(r.started) >= r.budget
}

// addCounts adds one batch's counts to the run's row, in the batch's
// transaction.
func addCounts(ctx context.Context, db store.DBTX, runID int64, c counts) error {
	_, err := db.Exec(ctx, `
		UPDATE retention_runs SET purged = purged + $2, deleted = deleted + $3, skipped_hold = skipped_hold + $4,
			objects_queued = objects_queued + $5, errors = errors + $6, updated_at = now()
		WHERE id = $1`, runID, c.purged, c.deleted, c.skippedHold, c.objectsQueued, c.errors)
	if err != nil {
		return fmt.Errorf("update counts of retention run %d: %w", runID, err)
	}
	return nil
}

// noteRetry counts a failed batch attempt against the run, outside the
// batch's (rolled back) transaction.
func (s *Service) noteRetry(ctx context.Context, r *run) func(error) {
	return func(error) {
		if err := addCounts(ctx, s.DB, r.id, counts{errors: 1}); err != nil {
			s.logger().WarnContext(ctx, "count retention error", slog.Int64("run", r.id), slog.String("error", err.Error()))
		}
	}
}

// finishRun records how the run ended and returns its report. It uses a
// context that outlives ctx, so that a cancelled run is still recorded as
// interrupted.
func (s *Service) finishRun(ctx context.Context, r *run, runErr error) (*Report, error) {
	status := StatusFinished
	var errText *string
	switch {
	case runErr != nil && ctx.Err() != nil:
		status = StatusInterrupted
	case runErr != nil:
		status = StatusFailed
	case r.partial:
		status = StatusPartial
	}
	if runErr != nil {
		msg := runErr.Error()
		errText = &msg
	}
	// The report gives the row's counts: what was committed, even when the
	// last commit's answer was lost to a cancelled context.
	var total counts
	err := s.DB.QueryRow(context.WithoutCancel(ctx), `
		UPDATE retention_runs SET status = $2, error = COALESCE($3, error), finished_at = now(), updated_at = now()
		WHERE id = $1
		RETURNING purged, deleted, skipped_hold, objects_queued, errors`, r.id, status, errText).
		Scan(&total.purged, &total.deleted, &total.skippedHold, &total.objectsQueued, &total.errors)
	if err != nil {
		err = fmt.Errorf("finish retention run %d: %w", r.id, err)
		if runErr != nil {
			return nil, errors.Join(runErr, err)
		}
		return nil, err
	}
	s.logger().InfoContext(ctx, "retention run ended", slog.Int64("run", r.id), slog.String("kind", r.kind),
		slog.String("status", status), slog.Bool("dry_run", r.dryRun), slog.Int("purged", total.purged),
		slog.Int("deleted", total.deleted), slog.Int("skipped_hold", total.skippedHold),
		slog.Int("objects_queued", total.objectsQueued), slog.Int("errors", total.errors),
		slog.Duration("duration", time.Since(r.started)))
	rep := &Report{
		RunID: r.id, Kind: r.kind, DryRun: r.dryRun, Status: status,
		Purged: total.purged, Deleted: total.deleted, SkippedHold: total.skippedHold,
		ObjectsQueued: total.objectsQueued, Batches: r.batches, Errors: total.errors,
	}
	if runErr != nil {
		return rep, fmt.Errorf("%s run %d: %w", r.kind, r.id, runErr)
	}
	return rep, nil
}

// Run is one retention run as recorded in retention_runs.
type Run struct {
	ID      int64
	Kind    string
	Trigger string
	DryRun  bool
	// Policy is what the run applied (see the migration's comment).
	Policy         json.RawMessage
	Status         string
	StartedAt      time.Time
	FinishedAt     *time.Time
	Purged         int
	Deleted        int
	SkippedHold    int
	ObjectsQueued  int
	ObjectsDeleted int
	Errors         int
	Error          *string
}

const runColumns = `id, kind, trigger, dry_run, policy, status, started_at, finished_at, purged, deleted,
	skipped_hold, objects_queued, objects_deleted, errors, error`

func scanRun(row pgx.Row) (Run, error) {
	var r Run
	err := row.Scan(&r.ID, &r.Kind, &r.Trigger, &r.DryRun, &r.Policy, &r.Status, &r.StartedAt, &r.FinishedAt,
		&r.Purged, &r.Deleted, &r.SkippedHold, &r.ObjectsQueued, &r.ObjectsDeleted, &r.Errors, &r.Error)
	return r, err
}

// ListRuns returns the most recent runs, newest first.
func ListRuns(ctx context.Context, db store.DBTX, limit int) ([]Run, error) {
	rows, err := db.Query(ctx, `SELECT `+runColumns+` FROM retention_runs ORDER BY started_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list retention runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Run, error) { return scanRun(row) })
	if err != nil {
		return nil, fmt.Errorf("list retention runs: %w", err)
	}
	return runs, nil
}

// GetRun returns one run.
func GetRun(ctx context.Context, db store.DBTX, id int64) (*Run, error) {
	r, err := scanRun(db.QueryRow(ctx, `SELECT `+runColumns+` FROM retention_runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("retention run %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read retention run %d: %w", id, err)
	}
	return &r, nil
}

// AuditEntry is one row of retention_audit: what happened to one call (or,
// for a hold on an agent, to one agent), when and why. It holds no personal
// data: Removed names columns and fields, never their values.
type AuditEntry struct {
	ID       int64
	RunID    *int64
	Action   Action
	Reason   string
	CallUUID *uuid.UUID
	CallID   *string
	AgentID  string
	Removed  []string
	Note     *string
	At       time.Time
}

const auditColumns = `id, run_id, action, reason, call_uuid, call_id, agent_id, removed, note, at`

func scanAudit(row pgx.CollectableRow) (AuditEntry, error) {
	var a AuditEntry
	err := row.Scan(&a.ID, &a.RunID, &a.Action, &a.Reason, &a.CallUUID, &a.CallID, &a.AgentID, &a.Removed, &a.Note, &a.At)
	return a, err
}

// CallAudit returns the audit rows of one call, oldest first. ref is
// postcall's id or the platform's call_id; it works after the call was
// hard-deleted.
func CallAudit(ctx context.Context, db store.DBTX, ref string) ([]AuditEntry, error) {
	if !store.IsText(ref) {
		return nil, nil // names no call: ingest refuses such call_ids
	}
	var rows pgx.Rows
	var err error
	if id, perr := uuid.Parse(ref); perr == nil {
		// postcall's id wins over a call_id (store's CALL reference rule).
		rows, err = db.Query(ctx, `SELECT `+auditColumns+` FROM retention_audit
			WHERE CASE WHEN EXISTS (SELECT 1 FROM retention_audit WHERE call_uuid = $1) THEN call_uuid = $1 ELSE call_id = $2 END
			ORDER BY id`, id, ref)
	} else {
		rows, err = db.Query(ctx, `SELECT `+auditColumns+` FROM retention_audit WHERE call_id = $1 ORDER BY id`, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("read audit of call %s: %w", ref, err)
	}
	entries, err := pgx.CollectRows(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("read audit of call %s: %w", ref, err)
	}
	return entries, nil
}

// RunAudit returns up to limit audit rows of one run, oldest first.
func RunAudit(ctx context.Context, db store.DBTX, runID int64, limit int) ([]AuditEntry, error) {
	rows, err := db.Query(ctx, `SELECT `+auditColumns+` FROM retention_audit WHERE run_id = $1 ORDER BY id LIMIT $2`, runID, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit of retention run %d: %w", runID, err)
	}
	entries, err := pgx.CollectRows(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("read audit of retention run %d: %w", runID, err)
	}
	return entries, nil
}

// insertAudit writes one audit row per call in one statement. removed[i]
// lists what was removed from calls[i].
func insertAudit(ctx context.Context, db store.DBTX, runID *int64, action Action, reason string, calls []candidate, removed [][]string) error {
	if len(calls) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(calls))
	callIDs := make([]string, len(calls))
	agents := make([]string, len(calls))
	// Each call's list travels as a JSON array: an extra key may hold any
	// character.
	lists := make([]string, len(calls))
	for i, c := range calls {
		ids[i], callIDs[i], agents[i] = c.id, c.callID, c.agentID
		list, err := json.Marshal(append([]string{}, removed[i]...))
		if err != nil {
			return fmt.Errorf("write %s audit rows: %w", action, err)
		}
		lists[i] = string(list)
	}
	_, err := db.Exec(ctx, `
		INSERT INTO retention_audit (run_id, action, reason, call_uuid, call_id, agent_id, removed)
		SELECT $1, $2, $3, u.id, u.call_id, u.agent_id, ARRAY(SELECT jsonb_array_elements_text(u.removed::jsonb))
		FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[]) AS u(id, call_id, agent_id, removed)`,
		runID, action, reason, ids, callIDs, agents, lists)
	if err != nil {
		return fmt.Errorf("write %s audit rows: %w", action, err)
	}
	return nil
}
