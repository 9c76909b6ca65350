package analysis_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
)

// evidencePlan asks for quotes on every field but seats.
func evidencePlan(mode agent.EvidenceMode) *agent.Plan {
	no := false
	return &agent.Plan{
		ID: "evidence", Model: "gpt-4.1-mini",
		Analysis: &agent.Analysis{
			Prompt: "You review sales calls.",
			Fields: []agent.Field{
				{Name: "outcome", Type: agent.FieldEnum, Values: []string{"agreed", "declined"}},
				{Name: "email", Type: agent.FieldString, PII: true},
				{Name: "demo_day", Type: agent.FieldString},
				{Name: "seats", Type: agent.FieldInteger, Evidence: &no},
				{Name: "budget", Type: agent.FieldNumber},
			},
			DispositionField: "outcome",
			Evidence:         mode,
		},
		QC: &agent.QC{
			Prompt: "Judge the agent.",
			Checklist: []agent.ChecklistItem{
				{ID: "consent", Description: "Asked for recording consent", Weight: 1, Fatal: true},
				{ID: "next_step", Description: "Proposed a next step", Weight: 1},
				{ID: "close", Description: "Closed politely", Weight: 1},
			},
			PassScore: 7,
			Evidence:  mode,
		},
	}
}

func evidenceInput() analysis.Input {
	return analysis.Input{CallID: "call-evidence", Transcript: quoteTranscript}
}

// The three kinds of answers a model gives: a correct quote (with speech
// to text noise), a paraphrase, a fabricated quote; and a null value.
const evidenceAnswer = `{
	"outcome": {"quote": "Next Tuesday works for me", "value": "agreed"},
	"email": {"quote": "my email is dana@example.com", "value": "dana@example.com"},
	"demo_day": {"quote": "the customer picked Tuesday for the demo", "value": "Tuesday"},
	"seats": 400,
	"budget": {"quote": null, "value": null}
}`

// analyzeEvidence analyses evidenceInput with evidencePlan(mode), the fake
// answering evidenceAnswer.
func analyzeEvidence(t *testing.T, mode agent.EvidenceMode) *analysis.AnalysisResult {
	t.Helper()
	srv := openaitest.NewServer(t)
	srv.SetDefault(openaitest.Content(evidenceAnswer))
	a, _ := newAnalyzer(t, srv)
	res, err := a.Analyze(context.Background(), evidencePlan(mode), 1, evidenceInput())
	require.NoError(t, err)
	return res
}

func TestAnalyzeEvidenceCheck(t *testing.T) {
	t.Parallel()
	res := analyzeEvidence(t, agent.EvidenceCheck)
	require.Equal(t, map[string]any{"outcome": "agreed", "email": "dana@example.com", "demo_day": "Tuesday",
		"seats": int64(400), "budget": nil}, res.Fields, "check keeps every value")
	require.Equal(t, []string{"email", "demo_day"}, res.Unverified, "the fabricated and the paraphrased quote, in plan order")
	require.True(t, res.Evidence["outcome"].Verified)
	require.Equal(t, 4, *res.Evidence["outcome"].Turn)
	require.False(t, res.Evidence["email"].Verified, "the transcript says 'dana at example dot com'")
	require.Nil(t, res.Evidence["email"].Turn)
	require.Equal(t, "my email is dana@example.com", *res.Evidence["email"].Quote)
	require.Nil(t, res.Evidence["email"].Withheld, "check withholds nothing")
	require.NotContains(t, res.Evidence, "seats", "a field that opts out has no evidence")
	require.NotContains(t, res.Evidence, "budget", "a null value needs no quote")
}

func TestAnalyzeEvidenceRequireWithholds(t *testing.T) {
	t.Parallel()
	res := analyzeEvidence(t, agent.EvidenceRequire)
	require.Equal(t, map[string]any{"outcome": "agreed", "email": nil, "demo_day": nil, "seats": int64(400), "budget": nil},
		res.Fields, "unverified values are null; a field without evidence is kept")
	require.Equal(t, []string{"email", "demo_day"}, res.Unverified)
	require.Equal(t, "dana@example.com", res.Evidence["email"].Withheld, "the model's value stays for review")
	require.Equal(t, "Tuesday", res.Evidence["demo_day"].Withheld)
	require.Nil(t, res.Evidence["outcome"].Withheld)
}

func TestEvidenceRequestShape(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t) // Valid(): answers generated from the schema
	a, _ := newAnalyzer(t, srv)
	plan := evidencePlan(agent.EvidenceCheck)

	_, err := a.Analyze(context.Background(), plan, 1, evidenceInput())
	require.NoError(t, err, "the strict schema with quotes is accepted by the fake's strictness check")
	_, err = a.Analyze(context.Background(), plan, 1, analysis.Input{CallID: "other", Transcript: quoteTranscript[:2]})
	require.NoError(t, err)
	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	require.Equal(t, string(reqs[0].Schema()), string(reqs[1].Schema()), "static prefix: same schema for every call")
	require.Equal(t, reqs[0].Messages[0], reqs[1].Messages[0], "static prefix: same system message for every call")

	props := schemaOf(t, reqs[0])["properties"].(map[string]any)
	email := props["email"].(map[string]any)
	require.Equal(t, "object", email["type"])
	require.Equal(t, []any{"quote", "value"}, email["required"])
	require.Equal(t, []any{"integer", "null"}, props["seats"].(map[string]any)["type"], "seats opts out: a bare value")
	system := reqs[0].Messages[0].Content
	require.Contains(t, system, "copied verbatim from the transcript")
	require.Contains(t, system, "These fields take no quote: seats.")

	// Off: the schema and system message are as before evidence existed.
	off := evidencePlan(agent.EvidenceOff)
	off.Analysis.Fields[3].Evidence = nil
	_, err = a.Analyze(context.Background(), off, 1, evidenceInput())
	require.NoError(t, err)
	last := srv.Requests()[2]
	require.NotContains(t, string(last.Schema()), "quote")
	require.NotContains(t, last.Messages[0].Content, "verbatim")
}

func TestQCEvidence(t *testing.T) {
	t.Parallel()
	// consent quoted right, next_step paraphrased (a pass), close
	// fabricated (a failure), every other verdict a pass.
	const answer = `{
		"consent": {"quote": "May I record this call", "passed": true},
		"next_step": {"quote": "the agent offered a demo", "passed": true},
		"close": {"quote": "see you later alligator", "passed": false}
	}`
	for _, tc := range []struct {
		mode  agent.EvidenceMode
		score int
	}{
		// check: consent and next_step pass: round(1 + 9*2/3) = 7.
		{agent.EvidenceCheck, 7},
		// require: the unverified pass earns nothing: round(1 + 9/3) = 4.
		{agent.EvidenceRequire, 4},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t)
			srv.SetDefault(openaitest.Content(answer))
			a, _ := newAnalyzer(t, srv)
			res, err := a.QC(context.Background(), evidencePlan(tc.mode), 1, evidenceInput())
			require.NoError(t, err)
			require.Equal(t, tc.score, res.Score)
			require.Equal(t, []string{"next_step", "close"}, res.Unverified)
			require.True(t, *res.Items[0].Verified)
			require.Equal(t, 0, *res.Items[0].Turn)
			require.Equal(t, "May I record this call", res.Items[0].Evidence)
			require.False(t, *res.Items[1].Verified)
			require.Nil(t, res.Items[1].Turn)
			require.True(t, res.Items[1].Passed, "the model's verdict is kept as it said")
			schema := string(srv.Requests()[0].Schema())
			require.Contains(t, schema, `"quote"`)
			require.NotContains(t, schema, `"evidence"`)
		})
	}
}

func TestQCEvidenceRequireFatal(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.SetDefault(openaitest.Content(`{"consent": {"quote": "we record all calls", "passed": true},
		"next_step": {"quote": "Shall we book a demo", "passed": true}, "close": {"quote": null, "passed": true}}`))
	a, _ := newAnalyzer(t, srv)
	res, err := a.QC(context.Background(), evidencePlan(agent.EvidenceRequire), 1, evidenceInput())
	require.NoError(t, err)
	require.Equal(t, 1, res.Score, "a fatal item passed without a quote found is a fatal failure under require")
	require.Equal(t, []string{"consent", "close"}, res.Unverified, "a null quote is unverified")
}

func TestEvidenceAnswerProblemsAreRepaired(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	// A bare value where {quote, value} is due, then a valid answer.
	srv.Script(openaitest.Content(`{"outcome": "agreed", "email": {"quote": 5, "value": null},
		"demo_day": {"value": null}, "seats": null, "budget": {"quote": null, "value": null}}`),
		openaitest.Content(`{"outcome": {"quote": null, "value": null}, "email": {"quote": null, "value": null},
		"demo_day": {"quote": null, "value": null}, "seats": null, "budget": {"quote": null, "value": null}}`))
	a, _ := newAnalyzer(t, srv)
	res, err := a.Analyze(context.Background(), evidencePlan(agent.EvidenceRequire), 1, evidenceInput())
	require.NoError(t, err)
	require.Empty(t, res.Unverified)
	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	repair := reqs[1].Messages[len(reqs[1].Messages)-1].Content
	for _, want := range []string{"field outcome must be an object {quote, value}", "field email: quote must be a string or null",
		"field demo_day key quote is missing"} {
		require.Contains(t, repair, want)
	}
	js, err := json.Marshal(res.Evidence)
	require.NoError(t, err)
	require.Equal(t, "{}", string(js), "null values: nothing to check")
	require.False(t, strings.Contains(repair, "dana"))
}
