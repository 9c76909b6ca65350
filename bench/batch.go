package main

import (
	"context"
	"fmt"
	"time"

	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// batchPoll is the benchmark worker's POSTCALL_BATCH_POLL_INTERVAL, its
// least value: the fake answers a batch at its first poll, so the
// measured time is postcall's, plus at most two polls.
const batchPoll = time.Second

// runBatch measures a bulk re-analysis through the Batch API end to end:
// e.opts.batchCalls calls are first analysed live (analysis, QC and one
// delivery each), then re-analysed with `reanalyze --agent --batch`
// (pipeline.Calls.RunBatchBulk and the worker's batch job) against the fake
// provider's Batch API, until every call is finalized and delivered again.
// It reports the time of each part, the requests sent each way, and how
// many re-analysed calls got exactly the live result (the fake answers a
// request the same way whichever way it comes).
func runBatch(ctx context.Context, e *env) (*result, error) {
	s, err := e.db.newSchema(ctx, "batch")
	if err != nil {
		return nil, err
	}
	defer s.close(ctx)
	recv := newReceiver()
	defer recv.close()
	model, stopModel := fakeModel()
	defer stopModel()
	if err := applyPlan(ctx, s.Pool, recv.URL()); err != nil {
		return nil, err
	}
	w, err := startWorker(ctx, workerConfig{
		Pool: s.Pool, Schema: s.Name, ModelURL: model.URL, ModelKey: model.APIKey, Concurrency: 16,
		BatchPoll: batchPoll, Logger: e.log,
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.stop(ctx) }()
	enq, closeIngest, err := s.ingester(ctx, e.log)
	if err != nil {
		return nil, err
	}
	defer closeIngest()
	n := e.opts.batchCalls
	// Calls of the last hour: the plan's 30-day retention would purge calls
	// of firstCallStart's date while they are re-analysed.
	recs, err := makeCalls("batch", n, 5, time.Now().Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	liveTime, err := ingestAndWait(ctx, e, enq, s, recs, pollInterval)
	if err != nil {
		return nil, err
	}
	live, err := currentResults(ctx, s)
	if err != nil {
		return nil, err
	}
	liveRequests := model.Len()
	e.progress("batch: %d calls analysed live in %.1fs, %d requests", n, liveTime.Done.Seconds(), liveRequests)

	start := time.Now()
	bulk, _, err := enq.OpenBulk(ctx, pipeline.BulkRequest{AgentID: agentID, KindName: "all", Kinds: pipeline.AllKinds, Batch: true})
	if err != nil {
		return nil, err
	}
	if err := enq.RunBatchBulk(ctx, bulk, pipeline.AllKinds, nil); err != nil {
		return nil, err
	}
	handedOver := time.Since(start)
	// Every call delivered a second time, after its batch runs finalized it.
	end, err := waitCounts(ctx, s.Pool, deliveredProgress, 2*n, pollInterval)
	if err != nil {
		return nil, err
	}
	batchTime := end.Sub(start)
	again, err := currentResults(ctx, s)
	if err != nil {
		return nil, err
	}
	same := 0
	for id, r := range again {
		if l, ok := live[id]; ok && l.equal(r) && r.run != l.run {
			same++
		}
	}
	var lines, liveDuring int
	for _, r := range model.Requests()[liveRequests:] {
		if r.Batch != "" {
			lines++
		} else {
			liveDuring++
		}
	}
	var batchTier int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM llm_requests WHERE service_tier = 'batch'`).Scan(&batchTier); err != nil {
		return nil, fmt.Errorf("count batch requests: %w", err)
	}
	batches, err := store.BulkBatches(ctx, s.Pool, bulk.ID)
	if err != nil {
		return nil, err
	}
	e.progress("batch: %d calls re-analysed through %d batch(es) in %.1fs (runs created in %.1fs), %d batch lines, %d live requests, %d of %d results equal to live",
		n, len(batches), batchTime.Seconds(), handedOver.Seconds(), lines, liveDuring, same, n)
	return &result{
		Metrics: []metric{
			{Name: "live: calls analysed (ingest to delivered)", Value: float64(n) / liveTime.Done.Seconds(), Unit: "calls/s", Decimals: 1},
			{Name: "batch: re-analysis to delivered, end to end", Value: batchTime.Seconds(), Unit: "s", Decimals: 1},
			{Name: "batch: runs created and handed to the worker", Value: handedOver.Seconds(), Unit: "s", Decimals: 1},
			{Name: "batch: requests through the Batch API", Value: float64(lines), Decimals: 0},
			{Name: "batch: requests recorded at the batch tier", Value: float64(batchTier), Decimals: 0},
			{Name: "batch: live requests while re-analysing", Value: float64(liveDuring), Decimals: 0, Target: atMost(0)},
			{Name: "batch: results equal to the live ones", Value: 100 * float64(same) / float64(n), Unit: "%", Decimals: 1, Target: atLeast(100)},
		},
		Notes: []string{
			fmt.Sprintf("%d calls analysed live (%d requests), then re-analysed with reanalyze --agent --batch: %d "+
				"batch(es), the fake provider answering each batch at its first poll (POSTCALL_BATCH_POLL_INTERVAL=%s, "+
				"so up to two polls are in the end-to-end time). Results compared per call: the analysis fields, QC "+
				"items and score of the current (batch) runs against the live runs'.", n, liveRequests, len(batches), batchPoll),
		},
	}, nil
}

// runResult is a call's current result.
type runResult struct {
	run            int64
	fields, items  string
	score          *int
	disposition    *string
	callSummarized bool
}

func (r runResult) equal(o runResult) bool {
	return r.fields == o.fields && r.items == o.items && equalPtr(r.score, o.score) &&
		equalPtr(r.disposition, o.disposition) && r.callSummarized == o.callSummarized
}

// currentResults reads each call's current analysis and QC results.
func currentResults(ctx context.Context, s *schema) (map[string]runResult, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT c.id::text, a.id, a.output::text, q.output::text, q.score, c.disposition, c.call_summary IS NOT NULL
		FROM calls c JOIN analysis_runs a ON a.id = c.analysis_run_id JOIN analysis_runs q ON q.id = c.qc_run_id`)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	defer rows.Close()
	out := map[string]runResult{}
	for rows.Next() {
		var id string
		var r runResult
		if err := rows.Scan(&id, &r.run, &r.fields, &r.items, &r.score, &r.disposition, &r.callSummarized); err != nil {
			return nil, fmt.Errorf("read results: %w", err)
		}
		out[id] = r
	}
	return out, rows.Err()
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
