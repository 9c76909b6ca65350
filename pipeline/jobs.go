package pipeline

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Jobs are the jobs a transaction must enqueue before it commits: every
// step of the pipeline that creates runs or deliveries returns them, and
// the caller (a River worker, or a use case through its Queue) inserts them
// in the same transaction, so that stored work and its jobs never diverge.
type Jobs struct {
	// Runs are analysis and QC runs to work, at RunPriority.
	Runs []RunRef
	// RunPriority orders Runs in their queue. Default 0: PriorityIngest.
	RunPriority Priority
	// Deliveries are the ids of deliveries to attempt.
	Deliveries []string
	// Batches are the ids of Batch API batches (llm_batches) to submit and
	// poll until their runs have finished.
	Batches []int64
}

// Empty reports whether there is nothing to enqueue.
func (j Jobs) Empty() bool { return len(j.Runs) == 0 && len(j.Deliveries) == 0 && len(j.Batches) == 0 }

// RunRef names a created run.
type RunRef struct {
	ID     int64
	CallID uuid.UUID
	Kind   string
}

// Priority orders runs in their queue: an admin's reanalysis of a call jumps
// ahead of the ingest backlog; bulk reanalysis goes after it, so that
// thousands of old calls never delay the analysis of new ones.
type Priority int

// Run priorities, as River's (1 is worked first).
const (
	PriorityReanalyze Priority = 1
	PriorityIngest    Priority = 2
	PriorityBulk      Priority = 3
)

// Queue enqueues Jobs in the caller's transaction; *jobs.Queue is one. The
// use cases (Calls) enqueue through it; workers insert what the pipeline
// returns themselves.
type Queue interface {
	Enqueue(ctx context.Context, tx pgx.Tx, j Jobs) error
}
