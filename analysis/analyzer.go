package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/postcall/postcall/agent"
)

// DefaultMaxOutputTokens is the full answer budget of analysis and QC
// requests when Analyzer.MaxOutputTokens is 0 (see the output budgets in
// budget.go). Reasoning models spend part of it on reasoning; raise it for
// them.
const DefaultMaxOutputTokens = 4096

// Purposes of a request within one run: the first request, the same request
// again with the full output budget after the answer was cut off, and the
// repair request after an invalid answer.
const (
	PurposeInitial    = "initial"
	PurposeFullBudget = "full_budget"
	PurposeRepair     = "repair"
)

// DefaultModel is the model of plans that name none unless the deployment
// says otherwise (POSTCALL_MODEL): cheap, fast and good at structured
// output.
const DefaultModel = "gpt-4.1-mini"

// Analyzer runs an agent plan's analysis and QC prompts through a Model. It
// is safe for concurrent use. The only state it keeps between calls is the
// static prefix (system message and schema) of each plan it has seen.
type Analyzer struct {
	// Model sends the requests. Required.
	Model Model
	// DefaultModel is used when the plan names no model. Required unless
	// every plan names one.
	DefaultModel string
	// MaxOutputTokens is the full output budget: the most any answer may
	// take, and what a cut-off answer is retried with. Requests start with
	// less when the plan's history or schema says answers take less.
	// Default DefaultMaxOutputTokens.
	MaxOutputTokens int
	// ContextWindow returns a model's context window in tokens. Default
	// the package's ContextWindow table.
	ContextWindow func(model string) int

	prefixes prefixCache
}

// prefix is the static part of a plan's requests of one kind, and the bound
// its schema puts on an answer's tokens.
type prefix struct {
	system string
	schema json.RawMessage
	bound  int
}

// prefixCache keeps the static prefix of the plans an Analyzer has seen,
// keyed by the plan's analysis or QC section: building a prefix renders the
// whole schema, every request of a plan version sends the same one, and the
// pipeline hands the Analyzer the same plan value for every call of a
// version (store.PlanCache). A plan must not change once used; a cache that
// fills up starts over.
type prefixCache struct {
	mu sync.Mutex
	m  map[any]prefix
}

const prefixCacheSize = 1024

func (c *prefixCache) get(section any, build func() prefix) prefix {
	c.mu.Lock()
	p, ok := c.m[section]
	c.mu.Unlock()
	if ok {
		return p
	}
	p = build()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= prefixCacheSize {
		c.m = make(map[any]prefix)
	}
	c.m[section] = p
	return p
}

// RequestRecord is one LLM request of a run, kept even when the run fails
// because the tokens were paid for.
type RequestRecord struct {
	// Purpose is PurposeInitial, PurposeFullBudget or PurposeRepair.
	Purpose string `json:"purpose"`
	// Model is the model as answered, or as requested when the request
	// failed.
	Model string `json:"model"`
	// MaxTokens is the output budget the request was sent with.
	MaxTokens int `json:"max_tokens"`
	// FinishReason is the provider's finish_reason ("stop", "length");
	// empty when the request failed.
	FinishReason string `json:"finish_reason,omitempty"`
	// ServiceTier is the tier that served the request (Response.ServiceTier);
	// empty when the request failed.
	ServiceTier string `json:"service_tier,omitempty"`
	// FlexFallback says a flex request was served at the default tier
	// because flex had no capacity.
	FlexFallback bool          `json:"flex_fallback,omitempty"`
	Usage        Usage         `json:"usage"`
	Latency      time.Duration `json:"latency"`
	RequestID    string        `json:"request_id,omitempty"`
	// Err is the request's failure, empty on success. It never holds
	// prompt text.
	Err string `json:"error,omitempty"`
}

// AnalysisResult is a run of an agent's analysis prompt.
type AnalysisResult struct {
	// Fields holds every plan field: string (string, enum, date), float64
	// (number), int64 (integer), bool (boolean), or nil when the call does
	// not give a value. Nil when the run failed.
	Fields map[string]any
	// Evidence holds, per field that keeps evidence and has a value, its
	// checked quote; nil when the plan's analysis.evidence is off.
	Evidence map[string]Evidence
	// Unverified are the fields whose quote was not found, in plan order;
	// nil when analysis.evidence is off.
	Unverified []string
	// Model is the model as answered by the last request.
	Model string
	// Requests are the run's LLM requests in order.
	Requests []RequestRecord

	// quotes are the answer's quotes by field, as validation read them,
	// until they are checked against the transcript.
	quotes map[string]*string
}

// QCResult is a run of an agent's QC prompt.
type QCResult struct {
	// Items are the verdicts in checklist order. Nil when the run failed.
	Items []Verdict
	// Score is the final score 1-10 (see Score).
	Score int
	// Passed is Score >= the plan's pass score.
	Passed bool
	// Unverified are the items whose quote was not found, in checklist
	// order; nil when qc.evidence is off.
	Unverified []string
	// Model is the model as answered by the last request.
	Model string
	// Requests are the run's LLM requests in order.
	Requests []RequestRecord
}

// Analyze runs the plan's analysis prompt on one call. On failure it
// returns the partial result, whose Requests still record the usage, with
// the error.
func (a *Analyzer) Analyze(ctx context.Context, plan *agent.Plan, version int, in Input) (*AnalysisResult, error) {
	res := &AnalysisResult{}
	if plan.Analysis == nil {
		return res, fmt.Errorf("analysis request for call %s: agent %s has no analysis prompt", in.CallID, plan.ID)
	}
	spec := a.analysisSpec(plan, res)
	model, err := a.run(ctx, plan, version, in, spec, &res.Requests)
	res.Model = model
	if err != nil {
		res.Fields = nil
		return res, fmt.Errorf("analysis request for call %s: %w", in.CallID, err)
	}
	res.Evidence, res.Unverified = checkFields(plan.Analysis, res.Fields, res.quotes, in.Transcript)
	return res, nil
}

// QC runs the plan's QC prompt on one call and computes the score. On
// failure it returns the partial result, whose Requests still record the
// usage, with the error.
func (a *Analyzer) QC(ctx context.Context, plan *agent.Plan, version int, in Input) (*QCResult, error) {
	res := &QCResult{}
	if plan.QC == nil {
		return res, fmt.Errorf("qc request for call %s: agent %s has no qc prompt", in.CallID, plan.ID)
	}
	spec := a.qcSpec(plan, res)
	model, err := a.run(ctx, plan, version, in, spec, &res.Requests)
	res.Model = model
	if err != nil {
		res.Items = nil
		return res, fmt.Errorf("qc request for call %s: %w", in.CallID, err)
	}
	res.Unverified = checkItems(plan.QC, res.Items, in.Transcript)
	res.Score = Score(plan.QC.Checklist, credited(plan.QC, res.Items))
	res.Passed = res.Score >= passScore(plan.QC)
	return res, nil
}

// analysisSpec is the plan's analysis prompt; validation keeps the fields
// it parses in res (nil: dropped).
func (a *Analyzer) analysisSpec(plan *agent.Plan, res *AnalysisResult) runSpec {
	pre := a.prefixes.get(plan.Analysis, func() prefix {
		return prefix{system: analysisSystem(plan.Analysis), schema: AnalysisSchema(plan.Analysis), bound: analysisBound(plan.Analysis)}
	})
	return runSpec{
		kind:      KindAnalysis,
		system:    pre.system,
		schema:    Schema{Name: analysisSchemaName, Definition: pre.schema},
		maxTokens: plan.Analysis.MaxTokens,
		bound:     pre.bound,
		validate: func(content string) []string {
			fields, quotes, v := validateAnalysis(plan.Analysis, content)
			if res != nil {
				res.Fields, res.quotes = fields, quotes
			}
			return v
		},
	}
}

// qcSpec is the plan's QC prompt; validation keeps the verdicts it parses
// in res (nil: dropped).
func (a *Analyzer) qcSpec(plan *agent.Plan, res *QCResult) runSpec {
	pre := a.prefixes.get(plan.QC, func() prefix {
		return prefix{system: qcSystem(plan.QC), schema: QCSchema(plan.QC), bound: qcBound(plan.QC)}
	})
	return runSpec{
		kind:      KindQC,
		system:    pre.system,
		schema:    Schema{Name: qcSchemaName, Definition: pre.schema},
		maxTokens: plan.QC.MaxTokens,
		bound:     pre.bound,
		validate: func(content string) []string {
			items, v := validateQC(plan.QC, content)
			if res != nil {
				res.Items = items
			}
			return v
		},
	}
}

// runSpec is what differs between analysis and QC.
type runSpec struct {
	kind   string
	system string
	schema Schema
	// maxTokens is the plan's own output budget; 0: none.
	maxTokens int
	// bound is the schema's bound on an answer's tokens.
	bound int
	// validate checks an answer, keeps its parsed form and returns the
	// violations.
	validate func(content string) []string
}

// FirstRequest is the request a run of the plan's analysis (KindAnalysis)
// or QC (KindQC) prompt starts with, built exactly as Analyze or QC would
// send it, without sending it: for the Batch API (BatchLine). A run whose
// first request was answered elsewhere continues from the answer
// (Input.Answered).
func (a *Analyzer) FirstRequest(plan *agent.Plan, version int, kind string, in Input) (Request, error) {
	var spec runSpec
	switch {
	case kind == KindAnalysis && plan.Analysis != nil:
		spec = a.analysisSpec(plan, nil)
	case kind == KindQC && plan.QC != nil:
		spec = a.qcSpec(plan, nil)
	default:
		return Request{}, fmt.Errorf("%s request for call %s: agent %s has no %s prompt", kind, in.CallID, plan.ID, kind)
	}
	req, _, err := a.firstRequest(plan, version, in, spec)
	if err == nil {
		err = a.checkContext(req)
	}
	if err != nil {
		return Request{}, fmt.Errorf("%s request for call %s: %w", kind, in.CallID, err)
	}
	return req, nil
}

// firstRequest builds a run's first request and its output budget.
func (a *Analyzer) firstRequest(plan *agent.Plan, version int, in Input, spec runSpec) (Request, budget, error) {
	model := orDefault(plan.Model, a.DefaultModel)
	if model == "" {
		return Request{}, budget{}, fmt.Errorf("agent %s names no model and there is no default model", plan.ID)
	}
	budget := a.outputBudget(model, spec.maxTokens, spec.bound, in.History)
	req := Request{
		Model: model,
		Messages: []Message{
			{Role: RoleSystem, Content: spec.system},
			{Role: RoleUser, Content: callMessage(in)},
		},
		Schema:      &spec.schema,
		MaxTokens:   budget.initial,
		ServiceTier: plan.ServiceTier,
	}
	if plan.Cache.Enabled {
		req.CacheKey = CacheKey(plan.ID, version, spec.kind)
		req.CacheRetention = plan.Cache.Retention
	}
	return req, budget, nil
}

// run sends the initial request (or starts from its answer, when
// in.Answered has it) and, when its answer is cut off at a budget below the
// full one, the same request once with the full budget; when the answer is
// invalid, one repair request sharing the same prefix. It appends a record
// per request sent and returns the model as last answered.
func (a *Analyzer) run(ctx context.Context, plan *agent.Plan, version int, in Input, spec runSpec, records *[]RequestRecord) (string, error) {
	if a.Model == nil {
		return "", errors.New("analyzer has no model")
	}
	req, budget, err := a.firstRequest(plan, version, in, spec)
	if err != nil {
		return "", err
	}
	first := in.Answered
	if first != nil && first.MaxTokens > 0 {
		// The budget it was sent with, whatever the history says now.
		req.MaxTokens = first.MaxTokens
	}
	answered := req.Model
	model := req.Model
	purpose := PurposeInitial
	for {
		var resp *Response
		if first != nil {
			resp, first = first.Response, nil
		} else {
			if err := a.checkContext(req); err != nil {
				return answered, err
			}
			if resp, err = a.Model.Complete(ctx, req); err != nil {
				*records = append(*records, RequestRecord{Purpose: purpose, Model: model, MaxTokens: req.MaxTokens, Err: err.Error()})
				return answered, err
			}
		}
		answered = orDefault(resp.Model, model)
		*records = append(*records, RequestRecord{
			Purpose: purpose, Model: answered, MaxTokens: req.MaxTokens, FinishReason: resp.FinishReason,
			ServiceTier: resp.ServiceTier, FlexFallback: resp.FlexFallback,
			Usage: resp.Usage, Latency: resp.Latency, RequestID: resp.RequestID,
		})
		last := &(*records)[len(*records)-1]
		if resp.FinishReason == "length" && req.MaxTokens < budget.full {
			last.Err = fmt.Sprintf("answer cut off at the output budget of %d tokens; sent again with %d", req.MaxTokens, budget.full)
			req.MaxTokens = budget.full
			if purpose != PurposeRepair {
				purpose = PurposeFullBudget
			}
			continue
		}
		violations := answerProblems(resp)
		if violations == nil {
			violations = spec.validate(resp.Content)
		}
		if violations == nil {
			return answered, nil
		}
		if purpose == PurposeRepair {
			last.Err = "invalid output"
			return answered, &InvalidOutputError{Kind: spec.kind, Violations: violations}
		}
		last.Err = "invalid output, repair requested"
		// Same prefix, then the bad answer and what is wrong with it.
		req.Messages = append(req.Messages,
			Message{Role: RoleAssistant, Content: resp.Content},
			Message{Role: RoleUser, Content: repairMessage(violations)},
		)
		purpose = PurposeRepair
	}
}

// answerProblems reports answers that cannot be valid whatever their text.
func answerProblems(resp *Response) []string {
	switch {
	case resp.Refusal != "":
		return []string{"the answer is a refusal; answer with the JSON object, using null where the call gives no value"}
	case resp.FinishReason == "length":
		return []string{"the answer was cut off at the output token limit; keep free text shorter"}
	}
	return nil
}

// checkContext refuses a request whose estimated size exceeds the model's
// context window; see the package documentation.
func (a *Analyzer) checkContext(req Request) error {
	window := ContextWindow
	if a.ContextWindow != nil {
		window = a.ContextWindow
	}
	limit := window(req.Model)
	prompt := EstimateTokens(req)
	if prompt+req.MaxTokens > limit {
		return fmt.Errorf("%w: about %d prompt tokens + %d output tokens > %d for model %s",
			ErrContextTooLong, prompt, req.MaxTokens, limit, req.Model)
	}
	return nil
}

// ContextWindow is the context window, in tokens, of known model families:
// gpt-4.1* 1,047,576; gpt-5* 400,000; o1/o3/o4* 200,000; gpt-4o* 128,000;
// anything else 128,000. A router prefix such as "openai/" is ignored.
func ContextWindow(model string) int {
	m := baseModelName(model)
	switch {
	case strings.HasPrefix(m, "gpt-4.1"):
		return 1_047_576
	case strings.HasPrefix(m, "gpt-5"):
		return 400_000
	case strings.HasPrefix(m, "o1"), strings.HasPrefix(m, "o3"), strings.HasPrefix(m, "o4"):
		return 200_000
	case strings.HasPrefix(m, "gpt-4o"):
		return 128_000
	}
	return 128_000
}
