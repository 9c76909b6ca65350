package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// RecordAnswer stores the requests a run paid for, as RecordRequests does,
// and the validated answer they bought (model, output, score), leaving the
// run unfinished, in one statement. The run's result is stored afterwards,
// with its job's completion; when that fails, the job's retry finds the
// answer here (StoredAnswer) and does not pay the model again; a purged
// call's run is not given the answer (its retry asks again).
func RecordAnswer(ctx context.Context, db DBTX, run *Run, reqs []LLMRequest, res RunResult) error {
	args, err := finishArgs(run.ID, res)
	if err != nil {
		return err
	}
	// args are finishArgs': [0] id, [1] status, [2] model, [3] demo, [4]
	// output, [5] score, [6] passed, [7] error, [8] latency, [9] evidence,
	// [10] unverified. The answer is the model's part of them, passed after
	// recordRequests' 15 arguments: model $16, demo $17, output $18, score
	// $19, passed $20, latency $21, evidence $22, unverified $23 ($2 is
	// recordRequests' call id). A purged call's run keeps no answer before
	// its result is stored (and purged in the same transaction): the answer
	// and its quotes may quote the call.
	const set = `, model = $16, demo = $17, score = $19, passed = $20, latency_ms = $21, unverified = $23,
		output = CASE WHEN (SELECT is_purged FROM calls WHERE id = $2) THEN output ELSE $18 END,
		evidence = CASE WHEN (SELECT is_purged FROM calls WHERE id = $2) THEN evidence ELSE $22 END`
	if err := recordRequests(ctx, db, run, reqs, set, args[2], args[3], args[4], args[5], args[6], args[8], args[9], args[10]); err != nil {
		return fmt.Errorf("record the answer of run %d: %w", run.ID, err)
	}
	return nil
}

// StoredAnswer is the successful result RecordAnswer stored for a run that
// has not finished, or nil when there is none.
func StoredAnswer(r *Run) *RunResult {
	if r.Terminal() || len(r.Output) == 0 {
		return nil
	}
	res := &RunResult{Status: RunSucceeded, Demo: r.Demo, Output: json.RawMessage(r.Output), Score: r.Score, Passed: r.Passed,
		Unverified: r.Unverified}
	if len(r.Evidence) > 0 {
		res.Evidence = json.RawMessage(r.Evidence)
	}
	if r.Model != nil {
		res.Model = *r.Model
	}
	if r.LatencyMs != nil {
		res.Latency = time.Duration(*r.LatencyMs) * time.Millisecond
	}
	return res
}
