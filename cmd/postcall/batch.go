package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postcall/postcall/internal/app"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// batchWaitPoll is how often --wait reads the batches' progress.
const batchWaitPoll = time.Second

// reanalyzeBatch runs (or resumes) the bulk reanalysis of an agent's calls
// through the Batch API (pipeline.Calls.RunBatchBulk): it creates the runs
// and hands them to the worker's batch job; with wait it then shows the
// batches' progress until every run has finished. Run again, it resumes
// the same bulk reanalysis, and with --wait shows its progress again.
func reanalyzeBatch(ctx context.Context, e *env, a *app.App, req pipeline.BulkRequest, wait bool) error {
	b, resumed, err := a.Calls.OpenBulk(ctx, req)
	if err != nil {
		return err
	}
	if resumed {
		fmt.Fprintf(e.stdout, "resuming batch reanalysis %d of %s: %d of %d calls already added\n", b.ID, req.AgentID, b.Enqueued+b.Skipped, b.Total)
	} else {
		fmt.Fprintf(e.stdout, "batch reanalysis %d of %s: %s through the Batch API\n", b.ID, req.AgentID, plural(b.Total, "call"))
	}
	if !a.Config.LLM.Configured() {
		fmt.Fprintln(e.stderr, "note: no OpenAI endpoint is configured here; the batches wait until a worker has one (the demo model has no Batch API)")
	}
	bar := newProgress(e.stdout, b.Total)
	err = a.Calls.RunBatchBulk(ctx, b, req.Kinds, func(done int) { bar.update(done, 0) })
	if err != nil {
		if ctx.Err() != nil {
			return interrupted(e, b, ctx.Err())
		}
		return err
	}
	bar.done()
	fmt.Fprintf(e.stdout, "batch reanalysis %d: %d calls added, %d skipped (purged or deleted meanwhile); the worker submits and polls the batch\n",
		b.ID, b.Enqueued, b.Skipped)
	if !wait {
		return nil
	}
	last := ""
	for {
		batches, err := a.Calls.BulkBatches(ctx, b.ID)
		if err != nil {
			return err
		}
		finished, pending, err := a.Calls.BulkProgress(ctx, b.ID)
		if err != nil {
			return err
		}
		if line := batchProgress(batches, finished, pending); line != last {
			fmt.Fprintln(e.stdout, line)
			last = line
		}
		if pending == 0 && allDone(batches) {
			for _, bt := range batches {
				fmt.Fprintln(e.stdout, batchSummary(bt))
			}
			failed, err := a.Calls.BulkFailures(ctx, b.ID)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "batch reanalysis %d: all %s finished\n", b.ID, plural(finished, "run"))
			if failed > 0 {
				fmt.Fprintf(e.stderr, "batch reanalysis %d: %s failed (postcall show CALL says why)\n", b.ID, plural(failed, "run"))
				return errSilent
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				fmt.Fprintf(e.stdout, "\nstopped waiting: the worker goes on; run the same command again to wait for batch reanalysis %d\n", b.ID)
				return errSilent
			}
			return ctx.Err()
		case <-time.After(batchWaitPoll):
		}
	}
}

// batchProgress is one line on the batches' progress: each batch's state
// and the provider's counts, and the runs finished.
func batchProgress(batches []*store.LLMBatch, finished, pending int) string {
	line := ""
	for _, b := range batches {
		status := string(b.State)
		if b.Status != nil && b.State == store.BatchSubmitted {
			status = *b.Status
		}
		line += fmt.Sprintf("batch %d: %s, %d/%d requests done, %d failed; ", b.ID, status, b.Completed, b.Requests, b.Failed)
	}
	return line + fmt.Sprintf("runs: %d finished, %d pending", finished, pending)
}

// batchSummary says what became of an ended batch's runs.
func batchSummary(b *store.LLMBatch) string {
	status := "none"
	if b.Status != nil {
		status = *b.Status
	}
	s := fmt.Sprintf("batch %d (attempt %d, provider status %s): %d requests; %d answered by the batch, %d error lines, %d resubmitted in a new batch, %d sent live",
		b.ID, b.Attempt, status, b.Requests, b.Answered, b.Errored, b.Resubmitted, b.Live)
	if b.Error != nil {
		s += "; provider errors: " + *b.Error
	}
	return s
}

func allDone(batches []*store.LLMBatch) bool {
	for _, b := range batches {
		if b.State != store.BatchDone {
			return false
		}
	}
	return true
}
