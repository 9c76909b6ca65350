package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
)

// evidencePlanFile and evidencePlanID name the plan the evidence overhead
// is measured on: the README's example sales agent.
const (
	evidencePlanFile = "examples/agents.yaml"
	evidencePlanID   = "sales-qualifier"
)

// evidenceTranscript is a typical call of that agent.
var evidenceTranscript = []analysis.Turn{
	{Role: "agent", Text: "Hi, this is Ava from ACME. This call may be recorded, is that okay?"},
	{Role: "user", Text: "Sure, that's fine."},
	{Role: "agent", Text: "We help sales teams automate their follow-ups. How do you handle follow-ups today?"},
	{Role: "user", Text: "Honestly it's a mess, we lose track of leads in spreadsheets and nobody owns the follow-up."},
	{Role: "agent", Text: "How many reps are on your team?"},
	{Role: "user", Text: "Twelve reps, all on the phones."},
	{Role: "agent", Text: "Would a 30-minute demo next Tuesday, the 14th, work for you?"},
	{Role: "user", Text: "Yes, Tuesday the 14th works. Send the invite to jordan at brightlane dot io."},
	{Role: "agent", Text: "Great, you'll get the invite today. Thanks, Jordan, and have a good day!"},
	{Role: "user", Text: "Thanks, bye."},
}

// evidenceValues is a typical answer for evidenceTranscript: each field's
// value and the quote a model gives for it, in plan order.
var evidenceValues = []struct {
	field string
	value any
	quote string
}{
	{"summary", "Jordan's team loses leads in spreadsheets. They agreed to a 30-minute demo on Tuesday the 14th.", "Yes, Tuesday the 14th works."},
	{"outcome", "agreed", "Yes, Tuesday the 14th works."},
	{"success", true, "Yes, Tuesday the 14th works."},
	{"interest_level", 4, "Honestly it's a mess, we lose track of leads in spreadsheets"},
	{"demo_date", "2026-04-14", "Would a 30-minute demo next Tuesday, the 14th, work for you?"},
	{"pain_points", "Leads get lost in spreadsheets; nobody owns the follow-up.", "we lose track of leads in spreadsheets and nobody owns the follow-up"},
	{"team_size", 12, "Twelve reps, all on the phones."},
	{"email", "jordan@brightlane.io", "Send the invite to jordan at brightlane dot io."},
}

// evidenceQCAnswer is a typical QC verdict per item, with the evidence as
// a quote (what qc.evidence asks for) and as the paraphrase a model gives
// without it.
var evidenceQCAnswer = []struct {
	id                string
	passed            bool
	quote, paraphrase string
}{
	{"greeting", true, "Hi, this is Ava from ACME.", "The agent introduced herself as Ava from ACME."},
	{"consent", true, "This call may be recorded, is that okay?", "The agent asked whether the call may be recorded."},
	{"next_step", true, "Would a 30-minute demo next Tuesday, the 14th, work for you?", "The agent proposed a demo next Tuesday."},
	{"polite_close", true, "Thanks, Jordan, and have a good day!", "The agent thanked the customer and said goodbye."},
}

// capturedRequest is a Model that keeps the request it is sent and
// answers with a fixed text.
type capturedRequest struct {
	answer string
	req    analysis.Request
}

func (m *capturedRequest) Complete(_ context.Context, req analysis.Request) (*analysis.Response, error) {
	m.req = req
	return &analysis.Response{Content: m.answer, FinishReason: "stop"}, nil
}

// evidenceSide is what one request of the plan costs, with or without
// evidence: the static prefix (system message and schema) and the answer,
// in o200k_base tokens (gpt-4.1 and gpt-4o) and in postcall's estimate.
type evidenceSide struct {
	prefixTokens, answerTokens     int
	prefixEstimate, answerEstimate int
}

// evidenceOverhead is the measurement for analysis and QC.
type evidenceOverhead struct {
	analysisOff, analysisOn evidenceSide
	qcOff, qcOn             evidenceSide
	// unverified counts the typical answer's quotes postcall did not find
	// (0: the answer is what a model that quotes correctly gives).
	unverified int
}

// measureEvidence sends the typical answers of the plan in file through an
// Analyzer, evidence off and on (require), and counts the static prefix and
// answer tokens of each request.
func measureEvidence(ctx context.Context, file string) (*evidenceOverhead, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the evidence plan: %w", err)
	}
	plans, err := agent.ParsePlans(data)
	if err != nil {
		return nil, err
	}
	var plan *agent.Plan
	for i := range plans {
		if plans[i].ID == evidencePlanID {
			plan = &plans[i]
		}
	}
	if plan == nil || plan.Analysis == nil || plan.QC == nil {
		return nil, fmt.Errorf("%s: no agent %s with analysis and qc", file, evidencePlanID)
	}
	tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
	enc, err := tiktoken.GetEncoding("o200k_base")
	if err != nil {
		return nil, fmt.Errorf("load the o200k_base tokenizer: %w", err)
	}
	tokens := func(s string) int { return len(enc.Encode(s, nil, nil)) }

	off, on := *plan, *plan
	a, q := *plan.Analysis, *plan.QC
	a.Evidence, q.Evidence = agent.EvidenceRequire, agent.EvidenceRequire
	on.Analysis, on.QC = &a, &q

	var o evidenceOverhead
	in := analysis.Input{CallID: "bench-evidence", Direction: "outbound", Transcript: evidenceTranscript}
	for _, side := range []struct {
		plan               *agent.Plan
		evidence           bool
		analysisOut, qcOut *evidenceSide
	}{{&off, false, &o.analysisOff, &o.qcOff}, {&on, true, &o.analysisOn, &o.qcOn}} {
		model := &capturedRequest{answer: typicalAnalysisAnswer(side.evidence)}
		az := &analysis.Analyzer{Model: model, DefaultModel: analysis.DefaultModel}
		res, err := az.Analyze(ctx, side.plan, 1, in)
		if err != nil {
			return nil, fmt.Errorf("typical analysis answer: %w", err)
		}
		o.unverified += len(res.Unverified)
		*side.analysisOut = measureSide(model, tokens)

		model.answer = typicalQCAnswer(side.evidence)
		qc, err := az.QC(ctx, side.plan, 1, in)
		if err != nil {
			return nil, fmt.Errorf("typical QC answer: %w", err)
		}
		o.unverified += len(qc.Unverified)
		*side.qcOut = measureSide(model, tokens)
	}
	return &o, nil
}

func measureSide(m *capturedRequest, tokens func(string) int) evidenceSide {
	system, schema := m.req.Messages[0].Content, string(m.req.Schema.Definition)
	static := analysis.Request{Model: m.req.Model, Messages: m.req.Messages[:1], Schema: m.req.Schema}
	return evidenceSide{
		prefixTokens: tokens(system) + tokens(schema), answerTokens: tokens(m.answer),
		prefixEstimate: analysis.EstimateTokens(static),
		answerEstimate: analysis.EstimateTokens(analysis.Request{Messages: []analysis.Message{{Content: m.answer}}}),
	}
}

// typicalAnalysisAnswer is evidenceValues as a model writes them: compact
// JSON in schema order, each value wrapped with its quote when evidence is
// on.
func typicalAnalysisAnswer(evidence bool) string {
	parts := make([]string, len(evidenceValues))
	for i, v := range evidenceValues {
		value, _ := json.Marshal(v.value)
		if evidence {
			quote, _ := json.Marshal(v.quote)
			value = fmt.Appendf(nil, `{"quote":%s,"value":%s}`, quote, value)
		}
		parts[i] = fmt.Sprintf(`%q:%s`, v.field, value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// typicalQCAnswer is evidenceQCAnswer with quotes (evidence on) or
// paraphrases.
func typicalQCAnswer(evidence bool) string {
	parts := make([]string, len(evidenceQCAnswer))
	for i, it := range evidenceQCAnswer {
		key, text := "evidence", it.paraphrase
		if evidence {
			key, text = "quote", it.quote
		}
		t, _ := json.Marshal(text)
		parts[i] = fmt.Sprintf(`%q:{%q:%s,"passed":%t}`, it.id, key, t, it.passed)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// runEvidence reports the token overhead of evidence per request of the
// example sales agent.
func runEvidence(ctx context.Context, _ *env) (*result, error) {
	o, err := measureEvidence(ctx, evidencePlanFile)
	if err != nil {
		return nil, err
	}
	if o.unverified > 0 {
		return nil, fmt.Errorf("the typical answers have %d quotes postcall does not find", o.unverified)
	}
	n := func(v int) float64 { return float64(v) }
	pct := func(on, off int) float64 { return 100 * float64(on-off) / float64(off) }
	return &result{
		Metrics: []metric{
			{Name: "analysis static prefix, evidence off", Value: n(o.analysisOff.prefixTokens), Unit: "tokens"},
			{Name: "analysis static prefix, evidence on", Value: n(o.analysisOn.prefixTokens), Unit: "tokens"},
			{Name: "analysis prefix overhead", Value: pct(o.analysisOn.prefixTokens, o.analysisOff.prefixTokens), Unit: "%", Decimals: 1},
			{Name: "analysis answer, evidence off", Value: n(o.analysisOff.answerTokens), Unit: "tokens"},
			{Name: "analysis answer, evidence on", Value: n(o.analysisOn.answerTokens), Unit: "tokens"},
			{Name: "QC static prefix, evidence off", Value: n(o.qcOff.prefixTokens), Unit: "tokens"},
			{Name: "QC static prefix, evidence on", Value: n(o.qcOn.prefixTokens), Unit: "tokens"},
			{Name: "QC answer, evidence off", Value: n(o.qcOff.answerTokens), Unit: "tokens"},
			{Name: "QC answer, evidence on", Value: n(o.qcOn.answerTokens), Unit: "tokens"},
		},
		Notes: []string{
			fmt.Sprintf("Agent %s of %s, evidence off and require (every field); tokens are o200k_base (gpt-4.1, gpt-4o) "+
				"of the system message plus the response schema's JSON (how the provider renders the schema is not "+
				"published; the raw JSON is the proxy), and of a typical compact answer whose every quote postcall "+
				"verifies. postcall's own estimate (4 bytes a token): analysis prefix %d -> %d, answer %d -> %d; "+
				"QC prefix %d -> %d, answer %d -> %d.", evidencePlanID, evidencePlanFile,
				o.analysisOff.prefixEstimate, o.analysisOn.prefixEstimate, o.analysisOff.answerEstimate, o.analysisOn.answerEstimate,
				o.qcOff.prefixEstimate, o.qcOn.prefixEstimate, o.qcOff.answerEstimate, o.qcOn.answerEstimate),
			"The prefix is static per plan version (cached by the provider after the first request of a version); " +
				"the answer's extra tokens are output tokens, paid on every request. QC answers carry evidence either " +
				"way: a quote replaces a paraphrase. Also `go test -run Evidence -v ./bench`.",
		},
	}, ctx.Err()
}
