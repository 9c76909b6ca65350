// Package pipeline is postcall's domain core: a call's post-call processing
// on the store (Service: an auto disposition or model runs, each run through
// the analysis package, finalization when the runs have finished, CRM
// deliveries) and the use cases on calls (Calls: ingest, reanalyze one call
// or an agent's calls in bulk, redeliver, show, list, soft delete, erase),
// with their result and error types. The CLI, the HTTP API and the console
// call Calls; River's workers call Service.
//
// It knows nothing of the job queue. A step that writes takes the caller's
// transaction and returns the Jobs that transaction must enqueue; the use
// cases insert them through the Queue interface, which jobs implements. A
// new use case, or a new rule about what a call needs, goes here.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/pricing"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// ErrNoModel is returned by Service.Execute when no LLM endpoint is
// configured: the run waits, visibly, and nothing is invented.
var ErrNoModel = errors.New("waiting for an LLM endpoint (set OPENAI_API_KEY or OPENAI_BASE_URL)")

// TransientError is returned by Service.Execute when the provider is
// unavailable for now; the caller retries after RetryAfter.
type TransientError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// DB is a pool: it runs statements and starts transactions.
type DB interface {
	store.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Service runs a call's post-call processing on the store: it decides
// between an auto disposition and model runs, executes runs, and finalizes
// the call when its current runs are all finished. It knows nothing of the
// job queue: every step that writes takes the caller's transaction and
// returns the jobs that transaction must enqueue (Jobs); the caller inserts
// them and, for a worker, completes its job in the same transaction.
type Service struct {
	// Analyzer sends requests to the model. Nil means no endpoint is
	// configured: runs wait with ErrNoModel.
	Analyzer *analysis.Analyzer
	// Demo marks every result as demo output.
	Demo bool
	// Deliveries creates the CRM deliveries of a finalized call. Nil: none.
	Deliveries *Deliveries
	// Prices prices each LLM request when it is stored. Default nil: the
	// built-in table (pricing.Default).
	Prices *pricing.Table
	// CostObserver, when set, is told what each priced request cost once
	// it is recorded (e.g. for metrics). It must be safe for concurrent use
	// and must not block. Default none.
	CostObserver func(CostObservation)
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// plans caches the plan versions the jobs of this process need.
	plans store.PlanCache
	// histories caches what their answers took, for the output budgets.
	histories histories
}

// PlanVersion returns one stored version of the agent's plan, from memory
// when this process has read it before.
func (p *Service) PlanVersion(ctx context.Context, db store.DBTX, agentID string, version int) (*agent.Plan, error) {
	return p.plans.Version(ctx, db, agentID, version)
}

// CurrentPlan returns the agent's current plan and its version; only the
// version number is read from the database when the plan is in memory.
func (p *Service) CurrentPlan(ctx context.Context, db store.DBTX, agentID string) (*agent.Plan, int, error) {
	return p.plans.Current(ctx, db, agentID)
}

// Started says what Start did for a call.
type Started struct {
	// Auto is set when the call got an auto disposition (and is done).
	Auto *call.Auto
	// Runs are the runs created; the caller enqueues one job each.
	Runs []RunRef
	// Deliveries are the deliveries an auto disposition created; the
	// caller enqueues one job each.
	Deliveries []string
}

// Jobs are what the caller's transaction must enqueue for the call, with
// the runs at priority.
func (s *Started) Jobs(priority Priority) Jobs {
	return Jobs{Runs: s.Runs, RunPriority: priority, Deliveries: s.Deliveries}
}

// Kinds selects which runs Start creates.
type Kinds struct{ Analysis, QC bool }

// AllKinds is analysis and QC.
var AllKinds = Kinds{Analysis: true, QC: true}

// Start decides what a call needs with the given plan version: an auto
// disposition (finalized at once, no LLM request) or analysis and QC runs.
// c must be locked by tx (store.LockCall) or new in tx.
func (p *Service) Start(ctx context.Context, tx pgx.Tx, c *store.Call, plan *agent.Plan, version int, trigger string, kinds Kinds) (*Started, error) {
	if auto, ok := autoDisposition(&c.Record, plan); ok {
		src := "auto"
		deliveries, err := p.finish(ctx, tx, c, plan, store.Outcome{
			State: store.StateDone, Disposition: &auto.Disposition, DispositionSource: &src, AutoReason: &auto.Reason,
		}, &version)
		if err != nil {
			return nil, err
		}
		return &Started{Auto: &auto, Deliveries: deliveries}, nil
	}
	var started Started
	wantAnalysis, wantQC := kinds.Analysis && plan.Analysis != nil, kinds.QC && plan.QC != nil
	if !wantAnalysis && !wantQC {
		if trigger == store.TriggerReanalyze {
			return &started, nil
		}
		// A plan without analysis or QC: nothing to wait for.
		var err error
		started.Deliveries, err = p.finish(ctx, tx, c, plan, store.Outcome{State: store.StateDone}, &version)
		return &started, err
	}
	analysisRun, qcRun, err := store.StartRuns(ctx, tx, c.ID, plan.ID, version, trigger, wantAnalysis, wantQC)
	if err != nil {
		return nil, err
	}
	if analysisRun != nil {
		started.Runs = append(started.Runs, RunRef{ID: *analysisRun, CallID: c.ID, Kind: store.KindAnalysis})
	}
	if qcRun != nil {
		started.Runs = append(started.Runs, RunRef{ID: *qcRun, CallID: c.ID, Kind: store.KindQC})
	}
	return &started, nil
}

// autoDisposition is the auto disposition the plan gives a call, if any:
// such a call needs no model run.
func autoDisposition(r *call.Record, plan *agent.Plan) (call.Auto, bool) {
	return call.AutoDisposition(r, plan.Analysis.MinUserTurns(), plan.Analysis.MinDuration())
}

// Executed is a run Execute has performed: the result to store, if any.
// Store stores it in the caller's transaction.
type Executed struct {
	run *store.Run
	// result is nil when the run's result was already stored (a retried
	// job): Store then only finalizes the call if that is still to do.
	result *store.RunResult
}

// Execute performs one run outside any transaction: it sends the run's
// model requests and records their usage, and a valid answer with them
// (money spent, and what it bought, is recorded whatever happens next). The
// caller then stores the result with Store, in the transaction that
// completes its job, and when Store fails because the database refuses the
// result for good, stores what Unstorable returns instead. A run whose
// result or answer is already stored is not sent again: a retried job does
// not pay twice.
func (p *Service) Execute(ctx context.Context, db store.DBTX, runID int64) (*Executed, error) {
	run, c, err := store.GetRunWithCall(ctx, db, runID)
	if err != nil {
		return nil, err
	}
	if run.Terminal() {
		return &Executed{run: run}, nil
	}
	if answer := store.StoredAnswer(run); answer != nil {
		// An earlier attempt paid for this answer, then failed to store it.
		return &Executed{run: run, result: answer}, nil
	}
	if c.IsPurged {
		return &Executed{run: run, result: &store.RunResult{Status: store.RunFailed, Error: retention.PurgedBeforeRun}}, nil
	}
	plan, err := p.PlanVersion(ctx, db, run.AgentID, run.PlanVersion)
	if err != nil {
		return nil, err
	}
	if p.Analyzer == nil {
		if err := store.SetRunWaiting(ctx, db, run.ID); err != nil {
			return nil, err
		}
		if err := store.SetCallState(ctx, db, c.ID, store.StateWaitingLLM); err != nil {
			return nil, err
		}
		return nil, ErrNoModel
	}

	in, err := p.input(ctx, db, run, c, plan)
	if err != nil {
		return nil, err
	}
	// A run of a batch reanalysis starts from the Batch API's answer to its
	// first request; the rest of the run (a full-budget retry, a repair,
	// validation, storing) is a live run's.
	var batch *store.BatchAnswer
	if run.Trigger == store.TriggerReanalyze {
		if batch, err = store.GetBatchAnswer(ctx, db, run.ID); err != nil {
			return nil, err
		}
		if batch != nil {
			in.Answered = &batch.Answered
		}
	}
	start := time.Now()
	var (
		requests   []analysis.RequestRecord
		output     any
		evidence   any
		unverified []string
		model      string
		score      *int
		passed     *bool
		runErr     error
	)
	switch run.Kind {
	case store.KindAnalysis:
		res, err := p.Analyzer.Analyze(ctx, plan, run.PlanVersion, in)
		if res != nil {
			requests, output, model, unverified = res.Requests, res.Fields, res.Model, res.Unverified
			if res.Evidence != nil {
				evidence = res.Evidence
			}
		}
		runErr = err
	case store.KindQC:
		res, err := p.Analyzer.QC(ctx, plan, run.PlanVersion, in)
		if res != nil {
			requests, output, model, unverified = res.Requests, res.Items, res.Model, res.Unverified
			score, passed = &res.Score, &res.Passed
		}
		runErr = err
	default:
		return nil, fmt.Errorf("run %d: unknown kind %q", run.ID, run.Kind)
	}
	if batch != nil && batch.Recorded && len(requests) > 0 {
		// An earlier attempt recorded the batch request: it was paid once.
		requests = requests[1:]
	}
	if runErr == nil {
		// Money spent, and what it bought, is recorded whatever happens next.
		res, err := p.recordAnswer(ctx, db, run, p.storeRequests(requests), &store.RunResult{
			Status: store.RunSucceeded, Model: model, Demo: p.Demo, Output: output, Score: score, Passed: passed,
			Evidence: evidence, Unverified: unverified, Latency: time.Since(start),
		})
		if err != nil {
			return nil, err
		}
		return &Executed{run: run, result: res}, nil
	}
	if err := p.recordRequests(ctx, db, run, p.storeRequests(requests)); err != nil {
		return nil, err
	}
	if d, ok := analysis.RetryAfter(runErr); ok {
		return nil, &TransientError{RetryAfter: d, Err: fmt.Errorf("%s run %d of call %s: %w", run.Kind, run.ID, c.ID, runErr)}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s run %d of call %s: %w", run.Kind, run.ID, c.ID, runErr)
	}
	p.logger().WarnContext(ctx, "run failed", slog.String("call", c.ID.String()), slog.Int64("run", run.ID),
		slog.String("kind", run.Kind), slog.String("error", runErr.Error()))
	return &Executed{run: run, result: &store.RunResult{
		Status: store.RunFailed, Model: model, Demo: p.Demo, Error: runErr.Error(), Latency: time.Since(start),
	}}, nil
}

// input is the per-call content of the run's requests, with what its plan
// version's answers took when the output budget is sized from them.
func (p *Service) input(ctx context.Context, db store.DBTX, run *store.Run, c *store.Call, plan *agent.Plan) (analysis.Input, error) {
	in := InputFromRecord(&c.Record)
	if !plansOwnBudget(plan, run.Kind) {
		var err error
		if in.History, err = p.histories.get(ctx, db, run.AgentID, run.PlanVersion, run.Kind); err != nil {
			return in, err
		}
	}
	return in, nil
}

// firstRequest is the request the run starts with, as Execute would send
// it: a line of a batch's input file.
func (p *Service) firstRequest(ctx context.Context, db store.DBTX, run *store.Run, c *store.Call) (analysis.Request, error) {
	if p.Analyzer == nil {
		return analysis.Request{}, ErrNoModel
	}
	plan, err := p.PlanVersion(ctx, db, run.AgentID, run.PlanVersion)
	if err != nil {
		return analysis.Request{}, err
	}
	in, err := p.input(ctx, db, run, c, plan)
	if err != nil {
		return analysis.Request{}, err
	}
	return p.Analyzer.FirstRequest(plan, run.PlanVersion, run.Kind, in)
}

// Store stores an executed run's result in tx and finalizes the call if
// this was its last unfinished run, returning the deliveries the
// finalization created for tx to enqueue. The caller completes its job in
// the same tx, so the run's effect and its job's completion never diverge;
// completing it before Store holds the call's lock for a statement less
// (the completion touches nothing the lock guards).
func (p *Service) Store(ctx context.Context, tx pgx.Tx, e *Executed) (Jobs, error) {
	run, res := e.run, e.result
	// Analysis and QC of one call finish in either order, and only the one
	// that finishes last may finalize: each locks the call, then stores its
	// result and reads both runs; whichever locks second sees the other's
	// result committed. The call is locked before the run row is written,
	// in the order the purge takes them, so the two cannot deadlock.
	c, err := store.LockCallHead(ctx, tx, run.CallID)
	if err != nil {
		return Jobs{}, err
	}
	var runs map[int64]*store.Run // the call's current runs, once read
	if res != nil {
		if runs, err = store.FinishRunAndGetRuns(ctx, tx, run.ID, *res, currentRuns(c)...); err != nil {
			return Jobs{}, err
		}
	}
	if c.IsPurged {
		// The call was purged while this run talked to the model (or while
		// an earlier attempt crashed after recording its requests): what the
		// run stored gets what the purge gave the call's other runs (pii and
		// summary fields null, QC evidence null, error texts replaced)
		// before finalization copies anything from it. The disposition and
		// scores survive, as they do a purge.
		if err := retention.RedactLateResult(ctx, tx, c); err != nil {
			return Jobs{}, err
		}
		runs = nil // as redacted, read again
	}
	deliveries, err := p.finalizeIfReady(ctx, tx, c, runs)
	return Jobs{Deliveries: deliveries}, err
}

// String names the run for error messages: "analysis run 12".
func (e *Executed) String() string { return fmt.Sprintf("%s run %d", e.run.Kind, e.run.ID) }

// finalizeIfReady writes the call's outcome when every current run has
// finished. c is locked by tx; runs are its current runs as tx sees them,
// nil to read them here. It returns the deliveries a finalization created.
func (p *Service) finalizeIfReady(ctx context.Context, tx pgx.Tx, c *store.Call, runs map[int64]*store.Run) ([]string, error) {
	if c.Done || c.PlanVersion == nil {
		return nil, nil
	}
	ids := currentRuns(c)
	if runs == nil {
		var err error
		if runs, err = store.GetRuns(ctx, tx, ids...); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		switch r := runs[id]; {
		case r == nil:
			return nil, fmt.Errorf("finalize call %s: run %d: %w", c.ID, id, store.ErrNotFound)
		case !r.Terminal():
			return nil, nil
		}
	}
	var analysisRun, qcRun *store.Run
	if c.AnalysisRunID != nil {
		analysisRun = runs[*c.AnalysisRunID]
	}
	if c.QCRunID != nil {
		qcRun = runs[*c.QCRunID]
	}
	plan, err := p.PlanVersion(ctx, tx, c.Record.AgentID, *c.PlanVersion)
	if err != nil {
		return nil, err
	}
	out, err := Outcome(plan, analysisRun, qcRun)
	if err != nil {
		return nil, fmt.Errorf("finalize call %s: %w", c.ID, err)
	}
	return p.finish(ctx, tx, c, plan, out, nil)
}

// currentRuns are the ids of the call's current analysis and QC runs.
func currentRuns(c *store.Call) []int64 {
	var ids []int64
	for _, id := range []*int64{c.AnalysisRunID, c.QCRunID} {
		if id != nil {
			ids = append(ids, *id)
		}
	}
	return ids
}

// finish writes the call's outcome and creates its deliveries, in the
// transaction that finalizes it so that a finalized call and its deliveries
// never diverge; it returns the deliveries to enqueue.
func (p *Service) finish(ctx context.Context, tx pgx.Tx, c *store.Call, plan *agent.Plan, o store.Outcome, version *int) ([]string, error) {
	if version != nil {
		if _, err := tx.Exec(ctx, `UPDATE calls SET plan_version = $2 WHERE id = $1`, c.ID, *version); err != nil {
			return nil, fmt.Errorf("finalize call %s: %w", c.ID, err)
		}
	}
	if err := store.FinishCall(ctx, tx, c.ID, o); err != nil {
		return nil, err
	}
	if p.Deliveries == nil || len(plan.Integrations) == 0 {
		return nil, nil
	}
	return p.Deliveries.Create(ctx, tx, c, plan)
}

// Outcome derives a call's outcome from its finished runs (either may be
// nil when the plan has no such prompt or the kind was not re-run): the
// plan's summary, disposition and success fields from the analysis, the
// score from QC. A failed run makes the call's state failed.
func Outcome(plan *agent.Plan, analysisRun, qcRun *store.Run) (store.Outcome, error) {
	out := store.Outcome{State: store.StateDone}
	if r := analysisRun; r != nil {
		if r.Status != store.RunSucceeded {
			out.State = store.StateFailed
		} else if plan.Analysis != nil {
			fields, err := decodeFields(r.Output)
			if err != nil {
				return out, fmt.Errorf("decode analysis run %d: %w", r.ID, err)
			}
			a := plan.Analysis
			if s, ok := fields[a.SummaryField].(string); ok && a.SummaryField != "" {
				out.CallSummary = &s
			}
			if d, ok := fields[a.DispositionField].(string); ok && a.DispositionField != "" {
				src := "analysis"
				out.Disposition, out.DispositionSource = &d, &src
			}
			if b, ok := fields[a.SuccessField].(bool); ok && a.SuccessField != "" {
				out.GeneralSuccess = &b
			}
		}
	}
	if r := qcRun; r != nil {
		if r.Status != store.RunSucceeded {
			out.State = store.StateFailed
		} else {
			out.FinalScore, out.QCPassed = r.Score, r.Passed
		}
	}
	return out, nil
}

func decodeFields(raw []byte) (map[string]any, error) {
	fields := map[string]any{}
	if len(raw) == 0 {
		return fields, nil
	}
	err := json.Unmarshal(raw, &fields)
	return fields, err
}

// InputFromRecord is the per-call content of a request.
func InputFromRecord(r *call.Record) analysis.Input {
	in := analysis.Input{
		CallID: r.CallID, Direction: r.Direction, EndedReason: r.EndedReason, DisconnectedBy: r.DisconnectedBy,
		StartedAt: r.StartedAt, EndedAt: &r.EndedAt, Duration: r.Duration, CustomerName: r.CustomerName,
		ContactData: r.ContactData, FunctionOutput: r.FunctionOutput,
	}
	for _, t := range r.Transcript {
		in.Transcript = append(in.Transcript, analysis.Turn{Role: string(t.Role), Text: t.Text, TMs: t.TMs})
	}
	return in
}

func (p *Service) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}
