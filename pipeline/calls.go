package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/recording"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// Calls is what people and the platform do with calls: ingest, reanalyze
// (one call or an agent's calls in bulk), redeliver, show and list, soft
// delete and erase. The CLI, the HTTP API and the console call these use
// cases; none of them knows the job queue, which sits behind Queue.
type Calls struct {
	// DB is the database. Required.
	DB DB
	// Pipeline decides what a stored call needs. Required.
	Pipeline *Service
	// Retention soft-deletes and erases calls. Required for SoftDelete and
	// Erase.
	Retention *retention.Service
	// Queue enqueues the jobs each use case's transaction creates.
	// Required for Ingest, Reanalyze, ReanalyzeBulk and Redeliver.
	Queue Queue
	// Recordings signs the recording URL of call documents. Default nil:
	// documents carry the recording key with a null url.
	Recordings *recording.Store
}

// IngestResult says what Ingest (or Reanalyze) did with one call.
type IngestResult struct {
	ID uuid.UUID
	// Duplicate is true when the call_id was already stored: nothing was
	// stored or enqueued.
	Duplicate bool
	// Auto is the auto disposition the call got, if any.
	Auto *call.Auto
	// Runs are the analysis and QC runs enqueued.
	Runs []RunRef
}

// ErrUnknownAgent is returned when a record names an agent with no plan.
var ErrUnknownAgent = errors.New("no such agent (apply its plan with `postcall agents apply`)")

// ErrNotReanalyzable is returned for calls whose transcript is gone.
var ErrNotReanalyzable = errors.New("cannot be reanalyzed")

// ErrOnHold is returned by Erase when a legal hold kept the call's personal
// data.
var ErrOnHold = errors.New("the call is on legal hold; its personal data is kept until the hold is released")

// Ingest stores a validated record and, in the same transaction, either
// disposes of it at once (auto disposition) or enqueues its analysis and QC.
// Re-ingesting a stored call_id changes and enqueues nothing.
func (s *Calls) Ingest(ctx context.Context, rec *call.Record) (*IngestResult, error) {
	var res IngestResult
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		plan, version, err := s.Pipeline.CurrentPlan(ctx, tx, rec.AgentID)
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
		started, err := s.Pipeline.Start(ctx, tx, c, plan, version, store.TriggerIngest, AllKinds)
		if err != nil {
			return err
		}
		res.Auto, res.Runs = started.Auto, started.Runs
		return s.enqueue(ctx, tx, started.Jobs(PriorityIngest))
	})
	if err != nil {
		return nil, fmt.Errorf("ingest call %s: %w", rec.CallID, err)
	}
	return &res, nil
}

// Reanalyze runs the selected kinds again with the agent's current plan, at
// high priority. Earlier runs stay in the call's history.
func (s *Calls) Reanalyze(ctx context.Context, ref string, kinds Kinds) (*IngestResult, error) {
	var res *IngestResult
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		found, err := store.GetCall(ctx, tx, ref)
		if err != nil {
			return err
		}
		res, err = s.reanalyze(ctx, tx, found.ID, kinds, PriorityReanalyze)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reanalyze %s: %w", ref, err)
	}
	return res, nil
}

func (s *Calls) reanalyze(ctx context.Context, tx pgx.Tx, id uuid.UUID, kinds Kinds, priority Priority) (*IngestResult, error) {
	res, started, err := s.startReanalysis(ctx, tx, id, kinds)
	if err != nil {
		return nil, err
	}
	return res, s.enqueue(ctx, tx, started.Jobs(priority))
}

// startReanalysis creates the call's runs for its agent's current plan in
// tx (or gives it an auto disposition) and returns what the caller must
// enqueue (Started.Jobs) without enqueuing it.
func (s *Calls) startReanalysis(ctx context.Context, tx pgx.Tx, id uuid.UUID, kinds Kinds) (*IngestResult, *Started, error) {
	c, err := store.LockCall(ctx, tx, id)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case c.IsPurged:
		return nil, nil, fmt.Errorf("call %s was purged: its transcript is gone: %w", c.Record.CallID, ErrNotReanalyzable)
	case c.DeletedAt != nil:
		return nil, nil, fmt.Errorf("call %s is deleted (restore it first): %w", c.Record.CallID, ErrNotReanalyzable)
	}
	plan, version, err := s.Pipeline.CurrentPlan(ctx, tx, c.Record.AgentID)
	if err != nil {
		return nil, nil, err
	}
	if kinds.Analysis && !kinds.QC && plan.Analysis == nil {
		return nil, nil, fmt.Errorf("agent %s has no analysis prompt: %w", plan.ID, ErrNotReanalyzable)
	}
	if kinds.QC && !kinds.Analysis && plan.QC == nil {
		return nil, nil, fmt.Errorf("agent %s has no QC prompt: %w", plan.ID, ErrNotReanalyzable)
	}
	started, err := s.Pipeline.Start(ctx, tx, c, plan, version, store.TriggerReanalyze, kinds)
	if err != nil {
		return nil, nil, err
	}
	return &IngestResult{ID: c.ID, Auto: started.Auto, Runs: started.Runs}, started, nil
}

// Redeliver replays the call's deliveries (only the named integration's
// when integration is set), keeping each delivery's webhook-id, re-enables
// the integrations concerned, and returns the ids enqueued (none when the
// agent has no integrations).
func (s *Calls) Redeliver(ctx context.Context, c *store.Call, integration string) ([]string, error) {
	var ids []string
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var err error
		if ids, err = s.Pipeline.Deliveries.Redeliver(ctx, tx, c.ID, integration); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, Jobs{Deliveries: ids})
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// enqueue inserts j in tx, when there is anything to insert.
func (s *Calls) enqueue(ctx context.Context, tx pgx.Tx, j Jobs) error {
	if j.Empty() {
		return nil
	}
	return s.Queue.Enqueue(ctx, tx, j)
}

// Find returns the call named by ref (postcall's id or the platform's
// call_id); an error wrapping store.ErrNotFound when there is none.
func (s *Calls) Find(ctx context.Context, ref string) (*store.Call, error) {
	return store.GetCall(ctx, s.DB, ref)
}

// Document returns the call document of c, with a freshly signed recording
// URL when Recordings is set.
func (s *Calls) Document(ctx context.Context, c *store.Call) (*calldoc.Document, error) {
	return calldoc.Build(ctx, s.DB, c, calldoc.SignWith(s.Recordings))
}

// List returns one page of calls, newest first.
func (s *Calls) List(ctx context.Context, f store.ListFilter) (*store.ListPage, error) {
	return store.ListCalls(ctx, s.DB, f)
}

// ListItem returns one call as List shows it.
func (s *Calls) ListItem(ctx context.Context, id uuid.UUID) (*store.ListItem, error) {
	return store.GetListItem(ctx, s.DB, id)
}

// SoftDelete marks the call deleted: it leaves listings and is hard-deleted
// when its agent's retention period says so.
func (s *Calls) SoftDelete(ctx context.Context, ref string) error {
	_, err := s.Retention.Delete(ctx, ref)
	return err
}

// Erase purges the call's personal data now (an erasure request); an error
// wrapping ErrOnHold when a legal hold kept it.
func (s *Calls) Erase(ctx context.Context, ref string) error {
	rep, err := s.Retention.EraseCall(ctx, ref, retention.RunOptions{Trigger: retention.TriggerRequest})
	if err != nil {
		return err
	}
	if rep.SkippedHold > 0 {
		return ErrOnHold
	}
	return nil
}

// Restore undoes SoftDelete inside the call's retention window; an error
// wrapping retention.ErrPastWindow after it.
func (s *Calls) Restore(ctx context.Context, ref string) error {
	_, err := s.Retention.Restore(ctx, ref)
	return err
}

// RetentionStatus is the call's legal hold and, when it is soft-deleted,
// the end of its restore window.
func (s *Calls) RetentionStatus(ctx context.Context, c *store.Call) (*retention.CallStatus, error) {
	return s.Retention.Status(ctx, c)
}

// Plan returns the agent's current plan and its version.
func (s *Calls) Plan(ctx context.Context, agentID string) (*agent.Plan, int, error) {
	return s.Pipeline.CurrentPlan(ctx, s.DB, agentID)
}

// ParseKinds reads what to re-run: "analysis", "qc", or "all" (also "").
func ParseKinds(s string) (Kinds, error) {
	switch s {
	case "", "all":
		return AllKinds, nil
	case "analysis":
		return Kinds{Analysis: true}, nil
	case "qc":
		return Kinds{QC: true}, nil
	}
	return Kinds{}, fmt.Errorf("kind %q: want analysis, qc or all", s)
}
