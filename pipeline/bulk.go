package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/time/rate"

	"github.com/postcall/postcall/internal/wait"
	"github.com/postcall/postcall/store"
)

// bulkChunk is how many calls are selected per query.
const bulkChunk = 200

// BulkRequest selects the calls of a bulk reanalysis and paces it.
type BulkRequest struct {
	// AgentID is the agent whose live calls are reanalyzed. Required.
	AgentID string
	// Since and Until bound the calls' ended_at to [Since, Until); nil: no
	// bound.
	Since, Until *time.Time
	// KindName names Kinds as the run records it (analysis, qc, all); a
	// rerun with the same selection resumes the same run.
	KindName string
	// Kinds are the runs made for each call.
	Kinds Kinds
	// Batch sends the runs through the Batch API (RunBatchBulk) instead of
	// live requests; a bulk run with Batch and one without are distinct.
	Batch bool
	// RPM is the LLM's requests per minute: calls are enqueued no faster
	// than it allows. Required without Batch.
	RPM int
	// Concurrency is the LLM's concurrency cap: at most 2 x Concurrency runs
	// are outstanding at once. Required without Batch.
	Concurrency int
}

// OpenBulk starts a bulk reanalysis of every live call of an agent, or
// resumes the unfinished one with the same selection (resumed true).
func (s *Calls) OpenBulk(ctx context.Context, req BulkRequest) (b *store.Bulk, resumed bool, err error) {
	if _, _, err := store.CurrentPlan(ctx, s.DB, req.AgentID); err != nil {
		return nil, false, err
	}
	return store.OpenBulk(ctx, s.DB, req.AgentID, req.Since, req.Until, req.KindName, req.Batch)
}

// RunBulk enqueues the reanalysis of each remaining call of b. It is
// resumable: each call is enqueued in the transaction that moves the bulk
// run's cursor past it, so running it again after an interruption continues
// after the last call enqueued. It is paced by the LLM limits: it enqueues
// no faster than req.RPM allows and keeps at most 2 x req.Concurrency runs
// outstanding, so the queue never holds more than the model can work off
// soon. Runs go below live ingest (PriorityBulk) so they never starve new
// calls. progress, when set, is told after each call how many calls are
// enqueued (or skipped) and how many runs have finished.
func (s *Calls) RunBulk(ctx context.Context, b *store.Bulk, req BulkRequest, progress func(enqueued, finished int)) error {
	requestsPerCall := 0
	if req.Kinds.Analysis {
		requestsPerCall++
	}
	if req.Kinds.QC {
		requestsPerCall++
	}
	perMinute := max(req.RPM/requestsPerCall, 1)
	pace := rate.NewLimiter(rate.Limit(float64(perMinute)/60), min(perMinute, req.Concurrency))
	window := 2 * req.Concurrency
	err := s.forEachBulkCall(ctx, b, func(id uuid.UUID) error {
		finished, err := s.waitForWindow(ctx, b.ID, window)
		if err != nil {
			return err
		}
		if err := pace.Wait(ctx); err != nil {
			return err
		}
		if _, err := s.ReanalyzeBulkStep(ctx, b, id, req.Kinds); err != nil {
			return err
		}
		if progress != nil {
			// The step finishes no run: the count read before it holds.
			progress(b.Enqueued+b.Skipped, finished)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return store.FinishBulk(ctx, s.DB, b)
}

// forEachBulkCall calls fn with each call after the bulk's cursor, in id
// order, reading them a chunk at a time; fn moves the cursor.
func (s *Calls) forEachBulkCall(ctx context.Context, b *store.Bulk, fn func(uuid.UUID) error) error {
	for {
		ids, err := store.BulkNext(ctx, s.DB, b, bulkChunk)
		if err != nil || len(ids) == 0 {
			return err
		}
		for _, id := range ids {
			if err := fn(id); err != nil {
				return err
			}
		}
	}
}

// BulkProgress counts the finished and the pending runs of a bulk run.
func (s *Calls) BulkProgress(ctx context.Context, bulkID int64) (finished, pending int, err error) {
	return store.BulkProgress(ctx, s.DB, bulkID)
}

// BulkFailures counts the bulk run's runs that failed.
func (s *Calls) BulkFailures(ctx context.Context, bulkID int64) (int, error) {
	return store.BulkFailures(ctx, s.DB, bulkID)
}

// waitForWindow blocks while the bulk run has window or more runs pending,
// and returns how many of its runs have finished.
func (s *Calls) waitForWindow(ctx context.Context, bulkID int64, window int) (finished int, err error) {
	for {
		finished, pending, err := store.BulkProgress(ctx, s.DB, bulkID)
		if err != nil || pending < window {
			return finished, err
		}
		if err := wait.Sleep(ctx, 500*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// ReanalyzeBulkStep enqueues the reanalysis of one call of a bulk run and
// moves the run's cursor past it, in one transaction, so an interrupted bulk
// run resumes exactly after the last call it enqueued. A call that cannot be
// reanalyzed any more (purged or deleted since it was selected) is counted
// as skipped.
func (s *Calls) ReanalyzeBulkStep(ctx context.Context, b *store.Bulk, callID uuid.UUID, kinds Kinds) (*IngestResult, error) {
	var res *IngestResult
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var err error
		res, err = s.reanalyze(ctx, tx, callID, kinds, PriorityBulk)
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
