package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/analysis"
)

// Run kinds.
const (
	KindAnalysis = "analysis"
	KindQC       = "qc"
)

// RunStatus is where an analysis or QC run is, as stored in
// analysis_runs.status.
type RunStatus string

// Run statuses.
const (
	RunPending    RunStatus = "pending"
	RunWaitingLLM RunStatus = "waiting_llm"
	RunSucceeded  RunStatus = "succeeded"
	RunFailed     RunStatus = "failed"
)

// Run triggers.
const (
	TriggerIngest    = "ingest"
	TriggerReanalyze = "reanalyze"
)

// Run is one analysis or QC run of one call.
type Run struct {
	ID          int64
	CallID      uuid.UUID
	Kind        string
	AgentID     string
	PlanVersion int
	Trigger     string
	Status      RunStatus
	Model       *string
	Demo        bool
	// Output is the analysis fields object, or the QC items array.
	Output json.RawMessage
	// Evidence is the analysis run's checked quotes by field (an object of
	// analysis.Evidence); nil when the plan asks for none, and for QC.
	Evidence json.RawMessage
	// Unverified are the fields (analysis) or items (QC) whose quote was
	// not found, in plan order; nil when the plan asks for no evidence.
	Unverified []string
	Score      *int
	Passed     *bool
	Error      *string
	Usage      analysis.Usage
	Requests   int
	LatencyMs  *int64
	CreatedAt  time.Time
	FinishedAt *time.Time
}

// Terminal reports whether the run has finished, well or not.
func (r *Run) Terminal() bool { return r.Status == RunSucceeded || r.Status == RunFailed }

const runColumns = `id, call_id, kind, agent_id, plan_version, trigger, status, model, demo, output, score, passed,
	error, prompt_tokens, completion_tokens, cached_read_tokens, cache_created_tokens, requests, latency_ms,
	created_at, finished_at, evidence, unverified`

func scanRun(row pgx.Row) (*Run, error) {
	var r Run
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return &r, nil
}

// dest are the scan destinations of runColumns.
func (r *Run) dest() []any {
	return []any{&r.ID, &r.CallID, &r.Kind, &r.AgentID, &r.PlanVersion, &r.Trigger, &r.Status, &r.Model, &r.Demo,
		&r.Output, &r.Score, &r.Passed, &r.Error, &r.Usage.Prompt, &r.Usage.Completion, &r.Usage.CachedRead,
		&r.Usage.CacheCreated, &r.Requests, &r.LatencyMs, &r.CreatedAt, &r.FinishedAt, &r.Evidence, &r.Unverified}
}

// GetRunWithCall returns one run and its call in one query: what a job
// reads before it works a run.
func GetRunWithCall(ctx context.Context, db DBTX, id int64) (*Run, *Call, error) {
	var run Run
	c, err := scanCall(db.QueryRow(ctx, `
		SELECT `+qualified(callColumns, "c")+`, `+qualified(runColumns, "r")+`
		FROM analysis_runs r JOIN calls c ON c.id = r.call_id WHERE r.id = $1`, id), run.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read run %d and its call: %w", id, err)
	}
	return &run, c, nil
}

// qualified prefixes each column name of a column list with a table alias;
// expressions (headColumns' null transcript) stay as they are.
func qualified(columns, alias string) string {
	list := strings.Split(columns, ",")
	for i, col := range list {
		col = strings.TrimSpace(col)
		if !strings.ContainsAny(col, " :()") {
			col = alias + "." + col
		}
		list[i] = col
	}
	return strings.Join(list, ", ")
}

// GetRun returns one run.
func GetRun(ctx context.Context, db DBTX, id int64) (*Run, error) {
	r, err := scanRun(db.QueryRow(ctx, `SELECT `+runColumns+` FROM analysis_runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read run %d: %w", id, err)
	}
	return r, nil
}

// GetRuns returns the runs with the given ids, by id; an id with no run is
// missing from the map.
func GetRuns(ctx context.Context, db DBTX, ids ...int64) (map[int64]*Run, error) {
	rows, err := db.Query(ctx, `SELECT `+runColumns+` FROM analysis_runs WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read runs %v: %w", ids, err)
	}
	byID, err := collectRuns(rows)
	if err != nil {
		return nil, fmt.Errorf("read runs %v: %w", ids, err)
	}
	return byID, nil
}

// collectRuns reads rows of runColumns into a map by id.
func collectRuns(rows pgx.Rows) (map[int64]*Run, error) {
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Run, error) { return scanRun(row) })
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]*Run, len(runs))
	for _, r := range runs {
		byID[r.ID] = r
	}
	return byID, nil
}

// CallRuns returns every run of the call, newest first.
func CallRuns(ctx context.Context, db DBTX, callID uuid.UUID) ([]*Run, error) {
	rows, err := db.Query(ctx, `SELECT `+runColumns+` FROM analysis_runs WHERE call_id = $1 ORDER BY id DESC`, callID)
	if err != nil {
		return nil, fmt.Errorf("list runs of call %s: %w", callID, err)
	}
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Run, error) { return scanRun(row) })
	if err != nil {
		return nil, fmt.Errorf("list runs of call %s: %w", callID, err)
	}
	return runs, nil
}

// LLMRequest is one request sent to a model on behalf of a run.
type LLMRequest struct {
	Purpose string
	Model   string
	Usage   analysis.Usage
	Latency time.Duration
	Error   string
	// MaxTokens is the output budget it was sent with; 0: unknown.
	MaxTokens int
	// FinishReason is the provider's ("stop", "length"); empty when the
	// request failed.
	FinishReason string
	// ServiceTier is the tier that served it ("default", "flex"); empty
	// when the request failed.
	ServiceTier string
	// FlexFallback says flex had no capacity and the default tier served it.
	FlexFallback bool
	// CostUSD is what it cost in US dollars (pricing.Table.Cost); nil:
	// unpriced (no price for its model or tier).
	CostUSD *float64
}

// RunResult is what a finished run stores.
type RunResult struct {
	Status  RunStatus // RunSucceeded or RunFailed
	Model   string
	Demo    bool
	Output  any // marshalled to JSON; nil for none
	Score   *int
	Passed  *bool
	Error   string
	Latency time.Duration
	// Evidence is marshalled to JSON; nil for none.
	Evidence any
	// Unverified are the fields or items whose quote was not found; nil
	// when the plan asks for no evidence.
	Unverified []string
}

// RecordRequests stores the requests a run paid for and adds their usage to
// the run, so that money spent is on record even if the run goes on to fail
// or its job to crash.
func RecordRequests(ctx context.Context, db DBTX, run *Run, reqs []LLMRequest) error {
	if len(reqs) == 0 {
		return nil
	}
	return recordRequests(ctx, db, run, reqs, "")
}

// recordRequests writes the requests and the run's totals, and set (more
// assignments to the run, with arguments after the 15th) in one statement.
func recordRequests(ctx context.Context, db DBTX, run *Run, reqs []LLMRequest, set string, setArgs ...any) error {
	n := len(reqs)
	var total analysis.Usage
	purposes, models, errs := make([]string, n), make([]string, n), make([]*string, n)
	prompt, completion, cachedRead, cacheCreated := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	msec := make([]int64, n)
	maxTokens, finish, tiers, fallbacks := make([]*int64, n), make([]*string, n), make([]*string, n), make([]bool, n)
	costs := make([]*float64, n)
	for i, q := range reqs {
		purposes[i], models[i], errs[i] = q.Purpose, storableText(q.Model), null(storableText(q.Error))
		if q.MaxTokens > 0 {
			maxTokens[i] = new(int64(q.MaxTokens))
		}
		finish[i], tiers[i], fallbacks[i] = null(storableText(q.FinishReason)), null(storableText(q.ServiceTier)), q.FlexFallback
		costs[i] = q.CostUSD
		prompt[i], completion[i] = int64(q.Usage.Prompt), int64(q.Usage.Completion)
		cachedRead[i], cacheCreated[i] = int64(q.Usage.CachedRead), int64(q.Usage.CacheCreated)
		msec[i] = q.Latency.Milliseconds()
		total = total.Add(q.Usage)
	}
	// One round trip: the requests and the run's totals are written by one
	// statement, so neither can be stored without the other.
	args := append([]any{run.ID, run.CallID, purposes, models, prompt, completion, cachedRead, cacheCreated, msec, errs,
		total.Prompt, total.Completion, total.CachedRead, total.CacheCreated, len(reqs)}, setArgs...)
	// The request budget and cost columns' arrays come after set's
	// arguments.
	budget := len(args) + 1
	args = append(args, maxTokens, finish, tiers, fallbacks, costs)
	_, err := db.Exec(ctx, `
		WITH requests AS (
			INSERT INTO llm_requests (run_id, call_id, purpose, model, prompt_tokens, completion_tokens,
				cached_read_tokens, cache_created_tokens, latency_ms, error, max_tokens, finish_reason, service_tier,
				flex_fallback, cost_usd)
			SELECT $1, $2, r.* FROM unnest($3::text[], $4::text[], $5::int[], $6::int[], $7::int[], $8::int[],
				$9::bigint[], $10::text[], $`+strconv.Itoa(budget)+`::int[], $`+strconv.Itoa(budget+1)+`::text[],
				$`+strconv.Itoa(budget+2)+`::text[], $`+strconv.Itoa(budget+3)+`::bool[],
				$`+strconv.Itoa(budget+4)+`::numeric[]) AS r
		)
		UPDATE analysis_runs SET prompt_tokens = prompt_tokens + $11, completion_tokens = completion_tokens + $12,
			cached_read_tokens = cached_read_tokens + $13, cache_created_tokens = cache_created_tokens + $14,
			requests = requests + $15`+set+`
		WHERE id = $1`, args...)
	if err != nil {
		return fmt.Errorf("record %d LLM requests of run %d: %w", len(reqs), run.ID, err)
	}
	return nil
}

// FinishRunAndGetRuns stores a run's result and returns
// the runs with the given ids as GetRuns does, seeing the stored result, in
// one round trip: the finalization of a call needs both of its runs right
// after storing one of them. A run that is already terminal is left as it
// is: a retried job never overwrites a stored result.
func FinishRunAndGetRuns(ctx context.Context, db DBTX, id int64, res RunResult, ids ...int64) (map[int64]*Run, error) {
	args, err := finishArgs(id, res)
	if err != nil {
		return nil, err
	}
	// The statement's snapshot predates its own update, so the updated
	// run comes from RETURNING and every other one from the table.
	rows, err := db.Query(ctx, `
		WITH finished AS (
			UPDATE analysis_runs SET `+finishSet+` WHERE `+finishWhere+`
			RETURNING `+runColumns+`
		)
		SELECT `+runColumns+` FROM finished
		UNION ALL
		SELECT `+runColumns+` FROM analysis_runs WHERE id = ANY($12) AND id NOT IN (SELECT id FROM finished)`,
		append(args, ids)...)
	if err != nil {
		return nil, fmt.Errorf("finish run %d: %w", id, err)
	}
	byID, err := collectRuns(rows)
	if err != nil {
		return nil, fmt.Errorf("finish run %d: %w", id, err)
	}
	return byID, nil
}

// finishSet and finishWhere store a run's result ($1 the run, $2-$11
// finishArgs) unless the run has one already.
const (
	finishSet = `status = $2, model = $3, demo = $4, output = $5, score = $6, passed = $7, error = $8,
		latency_ms = $9, evidence = $10, unverified = $11, finished_at = now()`
	finishWhere = `id = $1 AND status NOT IN ('succeeded', 'failed')`
)

func finishArgs(id int64, res RunResult) ([]any, error) {
	output, err := jsonOrNil(res.Output)
	if err != nil {
		return nil, fmt.Errorf("encode output of run %d: %w", id, err)
	}
	evidence, err := jsonOrNil(res.Evidence)
	if err != nil {
		return nil, fmt.Errorf("encode evidence of run %d: %w", id, err)
	}
	return []any{id, res.Status, null(storableText(res.Model)), res.Demo, output, res.Score, res.Passed, null(storableText(res.Error)),
		res.Latency.Milliseconds(), evidence, res.Unverified}, nil
}

// jsonOrNil marshals v; nil (SQL NULL) for nil.
func jsonOrNil(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

// SetRunWaiting marks a pending run as waiting for an LLM endpoint.
func SetRunWaiting(ctx context.Context, db DBTX, id int64) error {
	_, err := db.Exec(ctx, `UPDATE analysis_runs SET status = 'waiting_llm' WHERE id = $1 AND status = 'pending'`, id)
	if err != nil {
		return fmt.Errorf("mark run %d waiting: %w", id, err)
	}
	return nil
}
