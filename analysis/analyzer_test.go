package analysis_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
)

func TestAnalysisRequestShape(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	a, _ := newAnalyzer(t, srv)
	plan := testPlan()

	res, err := a.Analyze(context.Background(), plan, 3, testInput("Dana Smith", "Yes, sign me up for 12 seats."))
	require.NoError(t, err)
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	req := reqs[0]

	require.Equal(t, "gpt-4.1-mini", req.Model)
	require.Equal(t, "Bearer "+srv.APIKey, req.Header.Get("Authorization"))
	// temperature 0 must be in the body itself: go-openai drops it.
	require.Equal(t, "0", string(req.Fields["temperature"]))
	// Without history the output budget is the schema's bound, far below
	// the full 4,096 (see budget_test.go).
	require.NotNil(t, req.MaxTokens)
	require.Less(t, *req.MaxTokens, analysis.DefaultMaxOutputTokens)
	require.Equal(t, res.Requests[0].MaxTokens, *req.MaxTokens)
	require.Nil(t, req.MaxCompletionTokens)
	require.Equal(t, analysis.CacheKey(plan.ID, 3, analysis.KindAnalysis), *req.PromptCacheKey)
	require.Equal(t, "24h", *req.PromptCacheRetention)

	rf := req.ResponseFormat
	require.Equal(t, "json_schema", rf.Type)
	require.True(t, rf.JSONSchema.Strict)
	require.Equal(t, "postcall_analysis", rf.JSONSchema.Name)

	s := schemaOf(t, req)
	require.Equal(t, "object", s["type"])
	require.Equal(t, false, s["additionalProperties"])
	require.Equal(t, []any{"summary", "outcome", "success", "callback_date", "budget", "seats", "email"}, s["required"])
	props := s["properties"].(map[string]any)
	wantTypes := map[string]string{
		"summary": "string", "outcome": "string", "success": "boolean", "callback_date": "string",
		"budget": "number", "seats": "integer", "email": "string",
	}
	for name, typ := range wantTypes {
		p := props[name].(map[string]any)
		require.Equal(t, []any{typ, "null"}, p["type"], name)
	}
	require.Equal(t, []any{"agreed", "declined", "callback", nil}, props["outcome"].(map[string]any)["enum"])
	date := props["callback_date"].(map[string]any)
	require.Equal(t, "date", date["format"])
	require.Contains(t, date["description"], "YYYY-MM-DD")
	// Properties keep the plan's order in the bytes (the model writes them
	// in schema order).
	raw := string(req.Schema())
	require.Less(t, strings.Index(raw, `"summary"`), strings.Index(raw, `"outcome"`))
	require.Less(t, strings.Index(raw, `"seats"`), strings.Index(raw, `"email"`))

	require.Len(t, req.Messages, 2)
	require.Equal(t, "system", req.Messages[0].Role)
	require.Equal(t, "user", req.Messages[1].Role)
	require.True(t, strings.HasPrefix(req.Messages[0].Content, "You review sales calls for ACME."))
	require.NotContains(t, req.Messages[0].Content, "Dana Smith", "per-call content must stay out of the static prefix")
	require.Contains(t, req.Messages[1].Content, "Dana Smith")
	require.Contains(t, req.Messages[1].Content, "[0:04] user: Yes, sign me up for 12 seats.")
	require.Contains(t, req.Messages[1].Content, `{"plan":"gold","seats":12}`)
	require.NotContains(t, req.Messages[1].Content, "call-Dana Smith", "the call id is not sent")
}

func TestReasoningModelGetsNoTemperature(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	a, _ := newAnalyzer(t, srv)
	plan := testPlan()
	plan.Model = "gpt-5-mini"

	_, err := a.Analyze(context.Background(), plan, 1, testInput("Dana", "Hello"))
	require.NoError(t, err)
	req := srv.Requests()[0]
	require.NotContains(t, req.Fields, "temperature", "gpt-5 rejects any temperature but 1")
	require.Nil(t, req.MaxTokens)
	require.Equal(t, analysis.DefaultMaxOutputTokens, *req.MaxCompletionTokens)
}

func TestCacheKeyAndRetention(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	a, _ := newAnalyzer(t, srv)
	ctx := context.Background()
	plan := testPlan()

	keyOf := func(req openaitest.Request) string {
		if req.PromptCacheKey == nil {
			return ""
		}
		return *req.PromptCacheKey
	}
	_, err := a.Analyze(ctx, plan, 3, testInput("Dana", "Yes"))
	require.NoError(t, err)
	_, err = a.Analyze(ctx, plan, 3, testInput("Eli", "No thanks"))
	require.NoError(t, err)
	_, err = a.Analyze(ctx, plan, 4, testInput("Dana", "Yes"))
	require.NoError(t, err)
	_, err = a.QC(ctx, plan, 3, testInput("Dana", "Yes"))
	require.NoError(t, err)

	noRetention := testPlan()
	noRetention.Cache.Retention = ""
	_, err = a.Analyze(ctx, noRetention, 3, testInput("Dana", "Yes"))
	require.NoError(t, err)
	disabled := testPlan()
	disabled.Cache = agent.Cache{}
	_, err = a.Analyze(ctx, disabled, 3, testInput("Dana", "Yes"))
	require.NoError(t, err)

	reqs := srv.Requests()
	require.Len(t, reqs, 6)
	require.Regexp(t, `^postcall-[0-9a-f]{32}$`, keyOf(reqs[0]))
	require.Equal(t, keyOf(reqs[0]), keyOf(reqs[1]), "two calls of one plan version share the key")
	require.NotEqual(t, keyOf(reqs[0]), keyOf(reqs[2]), "a new plan version gets a new key")
	require.NotEqual(t, keyOf(reqs[0]), keyOf(reqs[3]), "QC and analysis have different prefixes")
	require.Equal(t, keyOf(reqs[0]), keyOf(reqs[4]))
	require.NotContains(t, reqs[4].Fields, "prompt_cache_retention", "retention only when the plan asks")
	require.NotContains(t, reqs[5].Fields, "prompt_cache_key", "no key when caching is off")
	require.NotContains(t, reqs[5].Fields, "prompt_cache_retention")
}

func TestStaticPrefixIsByteIdentical(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	a, _ := newAnalyzer(t, srv)
	ctx := context.Background()

	// Two different calls, and a plan rebuilt from scratch for the second
	// so no state is shared between the builds.
	_, err := a.Analyze(ctx, testPlan(), 1, testInput("Dana", "Yes, twelve seats."))
	require.NoError(t, err)
	_, err = a.Analyze(ctx, testPlan(), 1, testInput("Eli", "Call me next week."))
	require.NoError(t, err)
	_, err = a.QC(ctx, testPlan(), 1, testInput("Dana", "Yes, twelve seats."))
	require.NoError(t, err)
	_, err = a.QC(ctx, testPlan(), 1, testInput("Eli", "Call me next week."))
	require.NoError(t, err)

	reqs := srv.Requests()
	for _, pair := range [][2]openaitest.Request{{reqs[0], reqs[1]}, {reqs[2], reqs[3]}} {
		first, second := pair[0], pair[1]
		require.Equal(t, string(first.Schema()), string(second.Schema()))
		require.Equal(t, first.Messages[0].Content, second.Messages[0].Content)
		p1, p2 := first.PromptText(), second.PromptText()
		common := 0
		for common < min(len(p1), len(p2)) && p1[common] == p2[common] {
			common++
		}
		static := len(first.Schema()) + len("\nsystem\n") + len(first.Messages[0].Content) + len("\nuser\n")
		require.GreaterOrEqual(t, common, static, "the prompts must share the whole static part")
	}
	require.NotEqual(t, reqs[0].Messages[0].Content, reqs[2].Messages[0].Content)

	changed := testPlan()
	changed.Analysis.Prompt += " Be brief."
	_, err = a.Analyze(ctx, changed, 2, testInput("Dana", "Yes, twelve seats."))
	require.NoError(t, err)
	require.NotEqual(t, reqs[0].Messages[0].Content, srv.Requests()[4].Messages[0].Content)
}

func TestAnalyzeValidOutput(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	a, _ := newAnalyzer(t, srv)

	res, err := a.Analyze(context.Background(), testPlan(), 1, testInput("Dana", "Yes"))
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"summary": "example", "outcome": "agreed", "success": true, "callback_date": "2024-01-15",
		"budget": 1.5, "seats": int64(1), "email": "example",
	}, res.Fields)
	require.Equal(t, "gpt-4.1-mini", res.Model)
	require.Len(t, res.Requests, 1)
	r := res.Requests[0]
	require.Equal(t, analysis.PurposeInitial, r.Purpose)
	require.Empty(t, r.Err)
	require.Positive(t, r.Usage.Prompt)
	require.Positive(t, r.Usage.Completion)
	require.NotEmpty(t, r.RequestID)
}

func TestAnalyzeNullsAndIntegralNumbers(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.Content(`{"summary": null, "outcome": null, "success": false, "callback_date": "2024-02-29",
		"budget": 12, "seats": 3.0, "email": null}`))
	a, _ := newAnalyzer(t, srv)

	res, err := a.Analyze(context.Background(), testPlan(), 1, testInput("Dana", "Yes"))
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"summary": nil, "outcome": nil, "success": false, "callback_date": "2024-02-29",
		"budget": 12.0, "seats": int64(3), "email": nil,
	}, res.Fields)
}

func TestAnalyzeRepairsSchemaViolation(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.SchemaViolation(), openaitest.Valid())
	a, _ := newAnalyzer(t, srv)

	res, err := a.Analyze(context.Background(), testPlan(), 1, testInput("Dana", "Yes"))
	require.NoError(t, err)
	require.Equal(t, "example", res.Fields["summary"])
	require.Len(t, res.Requests, 2)
	require.Equal(t, analysis.PurposeInitial, res.Requests[0].Purpose)
	require.Equal(t, analysis.PurposeRepair, res.Requests[1].Purpose)
	require.Empty(t, res.Requests[1].Err)

	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	initial, repair := reqs[0], reqs[1]
	require.Equal(t, initial.Messages, repair.Messages[:2], "the repair keeps the cached prefix")
	require.Equal(t, string(initial.Schema()), string(repair.Schema()))
	require.Equal(t, *initial.PromptCacheKey, *repair.PromptCacheKey)
	require.Len(t, repair.Messages, 4)
	require.Equal(t, "assistant", repair.Messages[2].Role)
	require.Contains(t, repair.Messages[2].Content, "unexpected_field")
	require.Equal(t, "user", repair.Messages[3].Role)
	require.Contains(t, repair.Messages[3].Content, "field summary is missing")
	require.Contains(t, repair.Messages[3].Content, "field unexpected_field is not in the schema")
}

func TestAnalyzeInvalidTwiceFails(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.InvalidJSON(), openaitest.SchemaViolation())
	a, _ := newAnalyzer(t, srv)

	res, err := a.Analyze(context.Background(), testPlan(), 1, testInput("Dana", "Yes"))
	var invalid *analysis.InvalidOutputError
	require.ErrorAs(t, err, &invalid)
	require.Equal(t, analysis.KindAnalysis, invalid.Kind)
	require.Contains(t, invalid.Violations, "field summary is missing")
	require.True(t, analysis.IsPermanent(err))
	_, transient := analysis.RetryAfter(err)
	require.False(t, transient)
	require.Contains(t, err.Error(), "call-Dana")

	require.NotNil(t, res)
	require.Nil(t, res.Fields)
	require.Len(t, res.Requests, 2, "both requests were paid for")
	for _, r := range res.Requests {
		require.Positive(t, r.Usage.Prompt)
		require.Positive(t, r.Usage.Completion)
		require.NotEmpty(t, r.Err)
	}
	reqs := srv.Requests()
	require.Contains(t, reqs[1].Messages[3].Content, "not one valid JSON object")
	total := analysis.TotalUsage(res.Requests)
	require.Equal(t, res.Requests[0].Usage.Prompt+res.Requests[1].Usage.Prompt, total.Prompt)
}

func TestAnalysisValidation(t *testing.T) {
	t.Parallel()
	valid := map[string]any{
		"summary": "s", "outcome": "agreed", "success": true, "callback_date": "2024-01-15",
		"budget": 1.5, "seats": 2, "email": nil,
	}
	with := func(key string, value any) string {
		m := map[string]any{}
		for k, v := range valid {
			m[k] = v
		}
		if value == "<delete>" {
			delete(m, key)
		} else {
			m[key] = value
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, tc := range []struct {
		name, content, violation string
	}{
		{"fractional integer", with("seats", 2.5), "field seats: must be a whole number"},
		{"integer as string", with("seats", "2"), "field seats: must be a JSON integer"},
		{"number as string", with("budget", "1.5"), "field budget: must be a JSON number"},
		{"unknown enum value", with("outcome", "secret-maybe"), "field outcome: must be one of agreed, declined, callback or null"},
		{"impossible date", with("callback_date", "2025-02-30"), "field callback_date: must be a real calendar date"},
		{"date in another format", with("callback_date", "15/01/2024"), "field callback_date: must be a real calendar date"},
		{"boolean as string", with("success", "true"), "field success: must be true, false or null"},
		{"string as number", with("summary", 5), "field summary: must be a string or null"},
		{"missing field", with("email", "<delete>"), "field email is missing"},
		{"extra field", with("notes", "x"), "field notes is not in the schema"},
		{"array", `[1, 2]`, "the top level is array"},
		{"text after the object", with("seats", 1) + " Hope this helps!", "text after the JSON object"},
		{"empty", ``, "the answer is empty"},
		{"null", `null`, "the answer is null"},
		{"truncated", `{"summary": "cut`, "not one valid JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t)
			srv.Script(openaitest.Content(tc.content), openaitest.Content(tc.content))
			a, _ := newAnalyzer(t, srv)
			_, err := a.Analyze(context.Background(), testPlan(), 1, testInput("Dana", "Yes"))
			var invalid *analysis.InvalidOutputError
			require.ErrorAs(t, err, &invalid)
			require.True(t, containsAny(invalid.Violations, tc.violation), "violations %q lack %q", invalid.Violations, tc.violation)
			require.NotContains(t, err.Error(), "secret-maybe", "violations never quote the model's values")
			require.Equal(t, 2, srv.Len())
		})
	}
}

func TestRefusalAndTruncationAreRepaired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		first   openaitest.Responder
		message string
	}{
		{"refusal", func(*openaitest.Request) openaitest.Reply {
			return openaitest.Reply{Refusal: "I can't help with that."}
		}, "refusal"},
		{"cut at the plan's max tokens", func(*openaitest.Request) openaitest.Reply {
			return openaitest.Reply{Content: `{"summary": "a long`, FinishReason: "length"}
		}, "cut off at the output token limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t)
			srv.Script(tc.first, openaitest.Valid())
			a, _ := newAnalyzer(t, srv)
			// The plan's own budget is the full budget: a cut-off answer
			// gets a repair request, not a second one with more tokens.
			plan := testPlan()
			plan.Analysis.MaxTokens = 600
			res, err := a.Analyze(context.Background(), plan, 1, testInput("Dana", "Yes"))
			require.NoError(t, err)
			require.Len(t, res.Requests, 2)
			require.Contains(t, srv.Requests()[1].Messages[3].Content, tc.message)
		})
	}
}

func TestQC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("request shape and all passed", func(t *testing.T) {
		t.Parallel()
		srv := openaitest.NewServer(t)
		a, _ := newAnalyzer(t, srv)
		res, err := a.QC(ctx, testPlan(), 2, testInput("Dana", "Yes"))
		require.NoError(t, err)
		require.Equal(t, []analysis.Verdict{
			{ID: "greeting", Passed: true, Evidence: "example"},
			{ID: "consent", Passed: true, Evidence: "example"},
		}, res.Items)
		require.Equal(t, 10, res.Score)
		require.True(t, res.Passed)

		req := srv.Requests()[0]
		require.Equal(t, "postcall_qc", req.ResponseFormat.JSONSchema.Name)
		require.Equal(t, analysis.CacheKey("sales-qualifier", 2, analysis.KindQC), *req.PromptCacheKey)
		s := schemaOf(t, req)
		require.Equal(t, false, s["additionalProperties"])
		require.Equal(t, []any{"greeting", "consent"}, s["required"])
		item := s["properties"].(map[string]any)["consent"].(map[string]any)
		require.Equal(t, false, item["additionalProperties"])
		require.Equal(t, []any{"evidence", "passed"}, item["required"])
		require.Equal(t, "boolean", item["properties"].(map[string]any)["passed"].(map[string]any)["type"])
		require.Contains(t, req.Messages[0].Content, "- consent: Asked for recording consent")
	})

	for _, tc := range []struct {
		name     string
		answer   string
		score    int
		passed   bool
		violates string
	}{
		{"greeting failed", `{"greeting": {"evidence": "no name", "passed": false}, "consent": {"evidence": "asked", "passed": true}}`, 7, true, ""},
		{"fatal failed", `{"greeting": {"evidence": "hi", "passed": true}, "consent": {"evidence": "never asked", "passed": false}}`, 1, false, ""},
		{"item missing", `{"greeting": {"evidence": "hi", "passed": true}}`, 0, false, "item consent is missing"},
		{"passed null", `{"greeting": {"evidence": "hi", "passed": null}, "consent": {"evidence": "x", "passed": true}}`, 0, false, "item greeting: passed must be true or false"},
		{"evidence missing", `{"greeting": {"passed": true}, "consent": {"evidence": "x", "passed": true}}`, 0, false, "item greeting key evidence is missing"},
		{"item not an object", `{"greeting": true, "consent": {"evidence": "x", "passed": true}}`, 0, false, "item greeting must be an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t)
			srv.Script(openaitest.Content(tc.answer), openaitest.Content(tc.answer))
			a, _ := newAnalyzer(t, srv)
			res, err := a.QC(ctx, testPlan(), 1, testInput("Dana", "Yes"))
			if tc.violates != "" {
				var invalid *analysis.InvalidOutputError
				require.ErrorAs(t, err, &invalid)
				require.Equal(t, analysis.KindQC, invalid.Kind)
				require.True(t, containsAny(invalid.Violations, tc.violates), "%q lacks %q", invalid.Violations, tc.violates)
				require.Len(t, res.Requests, 2)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.score, res.Score)
			require.Equal(t, tc.passed, res.Passed)
			require.Len(t, res.Requests, 1)
		})
	}
}

func TestContextTooLongSendsNothing(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	a, _ := newAnalyzer(t, srv)
	plan := testPlan()
	plan.Model = "gpt-4o-mini"
	in := testInput("Dana", strings.Repeat("blah ", 110_000)) // ~137,500 tokens > 128,000

	res, err := a.Analyze(context.Background(), plan, 1, in)
	require.ErrorIs(t, err, analysis.ErrContextTooLong)
	require.Contains(t, err.Error(), "128000")
	require.True(t, analysis.IsPermanent(err))
	require.Empty(t, res.Requests)
	require.Zero(t, srv.Len(), "nothing may be sent")

	// The same call fits gpt-4.1's window.
	plan.Model = "gpt-4.1-mini"
	_, err = a.Analyze(context.Background(), plan, 1, in)
	require.NoError(t, err)
	require.Equal(t, 1, srv.Len())

	// The output budget counts: a window that fits the prompt and the sized
	// budget but not the plan's own refuses.
	small := &analysis.Analyzer{Model: a.Model, DefaultModel: a.DefaultModel,
		ContextWindow: func(string) int { return 5000 }}
	_, err = small.QC(context.Background(), plan, 1, testInput("Dana", "Yes"))
	require.NoError(t, err)
	plan.QC.MaxTokens = 5000
	_, err = small.QC(context.Background(), plan, 1, testInput("Dana", "Yes"))
	require.ErrorIs(t, err, analysis.ErrContextTooLong)
}

func TestContextWindowTable(t *testing.T) {
	t.Parallel()
	for model, want := range map[string]int{
		"gpt-4.1": 1_047_576, "gpt-4.1-mini": 1_047_576, "openai/gpt-4.1-nano": 1_047_576,
		"gpt-4o": 128_000, "gpt-4o-mini": 128_000, "gpt-5": 400_000, "gpt-5-mini": 400_000,
		"llama3:8b": 128_000, "": 128_000,
	} {
		require.Equal(t, want, analysis.ContextWindow(model), model)
	}
}

func TestAnalyzerNeedsAModel(t *testing.T) {
	t.Parallel()
	plan := testPlan()
	plan.Model = ""
	_, err := (&analysis.Analyzer{Model: analysis.Demo{}}).Analyze(context.Background(), plan, 1, testInput("Dana", "Yes"))
	require.ErrorContains(t, err, "names no model")

	plan.Analysis = nil
	_, err = (&analysis.Analyzer{Model: analysis.Demo{}, DefaultModel: "m"}).Analyze(context.Background(), plan, 1, testInput("Dana", "Yes"))
	require.ErrorContains(t, err, "has no analysis prompt")
	require.False(t, errors.Is(err, analysis.ErrContextTooLong))
}
