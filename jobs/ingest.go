package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/redact"
	"github.com/postcall/postcall/store"
)

// Enqueuer stores calls and enqueues their post-call processing, each call's
// write and its jobs in one transaction.
type Enqueuer struct {
	Pool     *pgxpool.Pool
	Client   *river.Client[pgx.Tx]
	Pipeline *pipeline.Service
}

// IngestResult says what Ingest did with one record.
type IngestResult struct {
	ID uuid.UUID
	// Duplicate is true when the call_id was already stored: nothing was
	// stored or enqueued.
	Duplicate bool
	// Auto is the auto disposition the call got, if any.
	Auto *call.Auto
	// Runs are the analysis and QC runs enqueued.
	Runs []pipeline.RunRef
}

// ErrUnknownAgent is returned when a record names an agent with no plan.
var ErrUnknownAgent = errors.New("no such agent (apply its plan with `postcall agents apply`)")

// Ingest stores a validated record and, in the same transaction, either
// disposes of it at once (auto disposition) or enqueues its analysis and QC.
// Re-ingesting a stored call_id changes and enqueues nothing.
func (e *Enqueuer) Ingest(ctx context.Context, rec *call.Record) (*IngestResult, error) {
	var res IngestResult
	err := pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
		plan, version, err := e.Pipeline.CurrentPlan(ctx, tx, rec.AgentID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("agent_id %q: %w", rec.AgentID, ErrUnknownAgent)
		}
		if err != nil {
			return err
		}
		// Redaction comes first: from here on only the redacted record is
		// stored, sent to a model or pushed.
		stored, counts, err := redactRecord(plan, rec)
		if err != nil {
			return err
		}
		phoneKey := call.NormalizePhone(rec.PhoneNumber)
		id, inserted, err := store.InsertCall(ctx, tx, store.NewCall{Record: stored, PhoneKey: phoneKey})
		if err != nil {
			return err
		}
		res.ID = id
		if !inserted {
			res.Duplicate = true
			return nil
		}
		if err := store.InsertRedaction(ctx, tx, id, counts); err != nil {
			return err
		}
		// The row is new in tx, so no one else sees it to lock it; what
		// Start needs of it is what was just stored.
		c := &store.Call{ID: id, Record: *stored, PhoneKey: phoneKey, State: store.StateProcessing}
		started, err := e.Pipeline.Start(ctx, tx, c, plan, version, store.TriggerIngest, pipeline.AllKinds)
		if err != nil {
			return err
		}
		res.Auto, res.Runs = started.Auto, started.Runs
		return enqueueRuns(ctx, e.Client, tx, id, started.Runs, PriorityIngest)
	})
	if err != nil {
		return nil, fmt.Errorf("ingest call %s: %w", rec.CallID, err)
	}
	return &res, nil
}

// redactRecord returns a copy of rec whose transcript has the plan's
// redact entities replaced by placeholders, and the counts (nil when the
// plan redacts nothing). rec is not changed.
func redactRecord(plan *agent.Plan, rec *call.Record) (*call.Record, redact.Counts, error) {
	r, err := plan.Redactor()
	if err != nil {
		return nil, nil, err
	}
	stored := *rec
	var counts redact.Counts
	stored.Transcript, counts = r.Transcript(rec.Transcript)
	return &stored, counts, nil
}

// ErrNotReanalyzable is returned for calls whose transcript is gone.
var ErrNotReanalyzable = errors.New("cannot be reanalyzed")

// Reanalyze runs the selected kinds again with the agent's current plan, at
// high priority. Earlier runs stay in the call's history.
func (e *Enqueuer) Reanalyze(ctx context.Context, ref string, kinds pipeline.Kinds) (*IngestResult, error) {
	var res *IngestResult
	err := pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
		found, err := store.GetCall(ctx, tx, ref)
		if err != nil {
			return err
		}
		res, err = e.reanalyze(ctx, tx, found.ID, kinds, PriorityReanalyze)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reanalyze %s: %w", ref, err)
	}
	return res, nil
}

// ReanalyzeBulkStep enqueues the reanalysis of one call of a bulk run and
// moves the run's cursor past it, in one transaction, so an interrupted bulk
// run resumes exactly after the last call it enqueued. Bulk runs go below
// live ingest (PriorityBulk) so they never starve new calls. A call that
// cannot be reanalyzed any more (purged or deleted since it was selected) is
// counted as skipped.
func (e *Enqueuer) ReanalyzeBulkStep(ctx context.Context, b *store.Bulk, callID uuid.UUID, kinds pipeline.Kinds) (*IngestResult, error) {
	var res *IngestResult
	err := pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
		var err error
		res, err = e.reanalyze(ctx, tx, callID, kinds, PriorityBulk)
		if errors.Is(err, ErrNotReanalyzable) {
			res, err = &IngestResult{ID: callID}, nil
		}
		if err != nil {
			return err
		}
		runIDs := make([]int64, len(res.Runs))
		for i, r := range res.Runs {
			runIDs[i] = r.ID
		}
		return store.AdvanceBulk(ctx, tx, b, callID, runIDs)
	})
	if err != nil {
		return nil, fmt.Errorf("bulk reanalyze %s: %w", callID, err)
	}
	return res, nil
}

func (e *Enqueuer) reanalyze(ctx context.Context, tx pgx.Tx, id uuid.UUID, kinds pipeline.Kinds, priority int) (*IngestResult, error) {
	c, err := store.LockCall(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case c.IsPurged:
		return nil, fmt.Errorf("call %s was purged: its transcript is gone: %w", c.Record.CallID, ErrNotReanalyzable)
	case c.DeletedAt != nil:
		return nil, fmt.Errorf("call %s is deleted (restore it first): %w", c.Record.CallID, ErrNotReanalyzable)
	}
	plan, version, err := e.Pipeline.CurrentPlan(ctx, tx, c.Record.AgentID)
	if err != nil {
		return nil, err
	}
	if kinds.Analysis && !kinds.QC && plan.Analysis == nil {
		return nil, fmt.Errorf("agent %s has no analysis prompt: %w", plan.ID, ErrNotReanalyzable)
	}
	if kinds.QC && !kinds.Analysis && plan.QC == nil {
		return nil, fmt.Errorf("agent %s has no QC prompt: %w", plan.ID, ErrNotReanalyzable)
	}
	started, err := e.Pipeline.Start(ctx, tx, c, plan, version, store.TriggerReanalyze, kinds)
	if err != nil {
		return nil, err
	}
	res := &IngestResult{ID: c.ID, Auto: started.Auto, Runs: started.Runs}
	return res, enqueueRuns(ctx, e.Client, tx, c.ID, started.Runs, priority)
}
