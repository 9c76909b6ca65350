package agent

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/redact"
)

// fullYAML is a plan that uses every key once.
const fullYAML = `
id: sales-qualifier
name: Sales qualifier
model: gpt-4.1-mini
analysis:
  prompt: "You review sales calls for ACME."
  fields:
    - {name: summary, type: string, description: "Two-sentence summary"}
    - {name: outcome, type: enum, values: [agreed, declined, callback]}
    - {name: success, type: boolean}
    - {name: interest, type: integer}
    - {name: amount, type: number}
    - {name: demo_date, type: date}
    - {name: email, type: string, pii: true}
  summary_field: summary
  disposition_field: outcome
  success_field: success
  skip: {min_user_turns: 2, min_duration: 5.5}
qc:
  prompt: "Judge the agent against each item."
  checklist:
    - {id: greeting, description: "Introduced itself", weight: 1}
    - {id: consent, description: "Asked for recording consent", weight: 2, fatal: true}
  pass_score: 8
cache: {enabled: true, retention: 24h}
integrations:
  - name: zapier
    type: webhook
    url: "https://hooks.example.com/abc"
    secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
    headers: {X-Team: sales, X-Env: prod}
    fields: [summary, outcome]
retention: {purge_after_days: 30, hard_delete_after_days: 0}
`

// fullJSON is fullYAML written as JSON with every object's keys in a
// different order.
const fullJSON = `{
  "retention": {"hard_delete_after_days": 0, "purge_after_days": 30},
  "integrations": [{
    "fields": ["summary", "outcome"],
    "headers": {"X-Env": "prod", "X-Team": "sales"},
    "secret": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
    "url": "https://hooks.example.com/abc",
    "type": "webhook",
    "name": "zapier"
  }],
  "cache": {"retention": "24h", "enabled": true},
  "qc": {
    "pass_score": 8,
    "checklist": [
      {"weight": 1, "description": "Introduced itself", "id": "greeting"},
      {"fatal": true, "weight": 2, "description": "Asked for recording consent", "id": "consent"}
    ],
    "prompt": "Judge the agent against each item."
  },
  "analysis": {
    "skip": {"min_duration": 5.5, "min_user_turns": 2},
    "success_field": "success",
    "disposition_field": "outcome",
    "summary_field": "summary",
    "fields": [
      {"description": "Two-sentence summary", "type": "string", "name": "summary"},
      {"values": ["agreed", "declined", "callback"], "type": "enum", "name": "outcome"},
      {"type": "boolean", "name": "success"},
      {"type": "integer", "name": "interest"},
      {"type": "number", "name": "amount"},
      {"type": "date", "name": "demo_date"},
      {"pii": true, "type": "string", "name": "email"}
    ],
    "prompt": "You review sales calls for ACME."
  },
  "model": "gpt-4.1-mini",
  "name": "Sales qualifier",
  "id": "sales-qualifier"
}`

// parseOne parses data, which must hold exactly one valid plan.
func parseOne(t *testing.T, data string) Plan {
	t.Helper()
	plans, err := ParsePlans([]byte(data))
	require.NoError(t, err)
	require.Len(t, plans, 1)
	return plans[0]
}

func intPtr(v int) *int           { return &v }
func floatPtr(v float64) *float64 { return &v }
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestParsePlansFormats(t *testing.T) {
	t.Parallel()

	// want is what fullYAML and fullJSON both decode to.
	want := Plan{
		ID:    "sales-qualifier",
		Name:  "Sales qualifier",
		Model: "gpt-4.1-mini",
		Analysis: &Analysis{
			Prompt: "You review sales calls for ACME.",
			Fields: []Field{
				{Name: "summary", Type: FieldString, Description: "Two-sentence summary"},
				{Name: "outcome", Type: FieldEnum, Values: []string{"agreed", "declined", "callback"}},
				{Name: "success", Type: FieldBoolean},
				{Name: "interest", Type: FieldInteger},
				{Name: "amount", Type: FieldNumber},
				{Name: "demo_date", Type: FieldDate},
				{Name: "email", Type: FieldString, PII: true},
			},
			SummaryField:     "summary",
			DispositionField: "outcome",
			SuccessField:     "success",
			Skip:             Skip{MinUserTurns: intPtr(2), MinDuration: floatPtr(5.5)},
		},
		QC: &QC{
			Prompt: "Judge the agent against each item.",
			Checklist: []ChecklistItem{
				{ID: "greeting", Description: "Introduced itself", Weight: 1},
				{ID: "consent", Description: "Asked for recording consent", Weight: 2, Fatal: true},
			},
			PassScore: 8,
		},
		Cache: Cache{Enabled: true, Retention: "24h"},
		Integrations: []Integration{{
			Name: "zapier",
			Type: "webhook",
			Settings: map[string]any{
				"url":     "https://hooks.example.com/abc",
				"secret":  "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
				"headers": map[string]any{"X-Team": "sales", "X-Env": "prod"},
				"fields":  []any{"summary", "outcome"},
			},
		}},
		Retention: Retention{PurgeAfterDays: intPtr(30), HardDeleteAfterDays: intPtr(0)},
	}
	minimal := Plan{ID: "support", Name: "support"}

	tests := []struct {
		name string
		data string
		want []Plan
	}{
		{"YAML one agent", fullYAML, []Plan{want}},
		{"JSON one agent", fullJSON, []Plan{want}},
		{"YAML list", "- id: support\n- " + indent(fullYAML), []Plan{minimal, want}},
		{"JSON list", `[{"id": "support"}, ` + fullJSON + `]`, []Plan{minimal, want}},
		{"YAML list of one", "- id: support\n", []Plan{minimal}},
		{"YAML with comments and document start", "# agents\n---\nid: support # the support line\n", []Plan{minimal}},
		{"YAML with trailing document end", "id: support\n...\n", []Plan{minimal}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plans, err := ParsePlans([]byte(tt.data))
			require.NoError(t, err)
			require.Equal(t, tt.want, plans)
		})
	}
}

// indent turns a top-level YAML mapping into a list item's body.
func indent(yamlDoc string) string {
	return regexp.MustCompile(`\n(.)`).ReplaceAllString(yamlDoc, "\n  $1")
}

func TestParsePlansExampleFile(t *testing.T) {
	t.Parallel()

	data, err := os.ReadFile("../examples/agents.yaml")
	require.NoError(t, err)
	plans, err := ParsePlans(data)
	require.NoError(t, err)
	require.Len(t, plans, 2)
	require.Equal(t, "sales-qualifier", plans[0].ID)
	require.Equal(t, "support-line", plans[1].ID)
	for _, p := range plans {
		require.NoError(t, p.Validate(), p.ID)
	}
}

func TestApplyDefaults(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		data  string
		check func(t *testing.T, p Plan)
	}{
		{"name defaults to id", "id: support\n", func(t *testing.T, p Plan) {
			require.Equal(t, "support", p.Name)
		}},
		{"explicit name kept", "id: support\nname: Support line\n", func(t *testing.T, p Plan) {
			require.Equal(t, "Support line", p.Name)
		}},
		{"weight defaults to 1 and pass_score to 7", `
id: a
qc: {prompt: p, checklist: [{id: first, description: d}, {id: second, description: d, weight: 3}]}
`, func(t *testing.T, p Plan) {
			require.Equal(t, 1, p.QC.Checklist[0].Weight)
			require.Equal(t, 3, p.QC.Checklist[1].Weight)
			require.Equal(t, 7, p.QC.PassScore)
		}},
		{"explicit pass_score kept", "id: a\nqc: {prompt: p, checklist: [{id: x, description: d}], pass_score: 10}\n", func(t *testing.T, p Plan) {
			require.Equal(t, 10, p.QC.PassScore)
		}},
		{"explicit zero weight and pass_score mean the default", "id: a\nqc: {prompt: p, checklist: [{id: x, description: d, weight: 0}], pass_score: 0}\n", func(t *testing.T, p Plan) {
			require.Equal(t, 1, p.QC.Checklist[0].Weight)
			require.Equal(t, 7, p.QC.PassScore)
		}},
		{"skip defaults: 1 user turn, no minimum duration", "id: a\nanalysis: {prompt: p, fields: [{name: f, type: string}]}\n", func(t *testing.T, p Plan) {
			require.Equal(t, 1, p.Analysis.MinUserTurns())
			require.Equal(t, time.Duration(0), p.Analysis.MinDuration())
		}},
		{"explicit skip kept, zero turns included", "id: a\nanalysis: {prompt: p, fields: [{name: f, type: string}], skip: {min_user_turns: 0, min_duration: 5.5}}\n", func(t *testing.T, p Plan) {
			require.Equal(t, 0, p.Analysis.MinUserTurns())
			require.Equal(t, 5500*time.Millisecond, p.Analysis.MinDuration())
		}},
		{"no analysis, no qc: thresholds still defined", "id: a\n", func(t *testing.T, p Plan) {
			require.Nil(t, p.Analysis)
			require.Nil(t, p.QC)
			require.Equal(t, 1, p.Analysis.MinUserTurns())
			require.Equal(t, time.Duration(0), p.Analysis.MinDuration())
		}},
		{"retention unset means the global default, 0 is kept", "id: a\nretention: {purge_after_days: 0}\n", func(t *testing.T, p Plan) {
			require.Equal(t, intPtr(0), p.Retention.PurgeAfterDays)
			require.Nil(t, p.Retention.HardDeleteAfterDays)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, parseOne(t, tt.data))
		})
	}

	t.Run("applyDefaults alone", func(t *testing.T) {
		t.Parallel()
		p := Plan{ID: "a", QC: &QC{Checklist: []ChecklistItem{{ID: "x"}, {ID: "y", Weight: -2}}}}
		p.applyDefaults()
		require.Equal(t, "a", p.Name)
		require.Equal(t, 7, p.QC.PassScore)
		require.Equal(t, 1, p.QC.Checklist[0].Weight)
		require.Equal(t, -2, p.QC.Checklist[1].Weight, "only a missing weight gets the default")
	})
}

func TestParsePlansErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		data string
		// wantErr is contained in the error.
		wantErr string
	}{
		{"empty file", "", "parse agents file: no agent in file"},
		{"only comments", "# nothing here\n", "parse agents file: no agent in file"},
		{"null", "null\n", "parse agents file: no agent in file"},
		{"empty YAML list", "[]\n", "parse agents file: no agent in file (empty list)"},
		{"empty JSON list", " [ ] ", "parse agents file: no agent in file (empty list)"},
		{"not YAML", "id: [unclosed\n", "parse agents file: yaml:"},
		{"second YAML document", "id: a\n---\nid: b\n", "parse agents file: more than one YAML document (---)"},
		{"second YAML document on the marker line", "id: a\n--- {id: b}\n", "parse agents file: more than one YAML document (---)"},
		{"duplicate key", "id: a\nid: b\n", `key "id" already set in map`},
		{"duplicate key in JSON", `{"id": "a", "model": "x", "model": "y"}`, `key "model" already set in map`},
		{"a scalar", "42\n", "agent #1: json: cannot unmarshal number"},
		{"unknown top-level key", "id: a\nmodle: gpt-4.1\n", `agent #1: json: unknown field "modle"`},
		{"unknown analysis key", "id: a\nanalysis: {prompt: p, fields: [{name: f, type: string}], sumary_field: f}\n", `unknown field "sumary_field"`},
		{"unknown field key", "id: a\nanalysis: {prompt: p, fields: [{name: f, typ: string}]}\n", `unknown field "typ"`},
		{"unknown skip key", "id: a\nanalysis: {prompt: p, fields: [{name: f, type: string}], skip: {min_turns: 1}}\n", `unknown field "min_turns"`},
		{"unknown qc key", "id: a\nqc: {prompt: p, checklist: [{id: x, description: d}], passscore: 7}\n", `unknown field "passscore"`},
		{"unknown checklist key", "id: a\nqc: {prompt: p, checklist: [{id: x, description: d, wieght: 2}]}\n", `unknown field "wieght"`},
		{"unknown cache key", "id: a\ncache: {enable: true}\n", `unknown field "enable"`},
		{"unknown retention key", "id: a\nretention: {purge_days: 3}\n", `unknown field "purge_days"`},
		{"wrong type names the key", "id: a\nqc: {prompt: p, checklist: [{id: x, description: d, weight: two}]}\n", "qc.checklist.weight"},
		{"id not a string", "id: 123\n", "Plan.id of type string"},
		{"integration name not a string", "id: a\nintegrations: [{name: 5, type: webhook}]\n", "integrations.name: 5 must be a string"},
		{"integration type not a string", "id: a\nintegrations: [{name: x, type: [webhook]}]\n", `integrations.type: ["webhook"] must be a string`},
		{"validation error names the agent", "id: a\nanalysis: {prompt: p, fields: []}\n", `agent "a": analysis.fields: at least one field is required`},
		{"validation error without id names the position", "- id: a\n- name: nameless\n", "agent #2: id: required"},
		{"null list item", "- id: a\n- null\n", "agent #2: id: required"},
		{"listed twice", "- id: a\n- id: b\n- id: a\n", `agent "a": listed twice`},
		{"enum without values", "id: broken\nanalysis: {prompt: x, fields: [{name: outcome, type: enum}]}\n",
			`agent "broken": analysis.fields[0].values: required for an enum (at least one value)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plans, err := ParsePlans([]byte(tt.data))
			require.ErrorContains(t, err, tt.wantErr)
			require.Nil(t, plans)
		})
	}
}

// validPlan is a plan that passes Validate, for mutating into invalid ones.
func validPlan(t *testing.T) Plan {
	t.Helper()
	return parseOne(t, fullYAML)
}

func TestValidate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		mutate func(p *Plan)
		// wantErr is the exact error; empty means valid.
		wantErr string
	}{
		{"valid", func(p *Plan) {}, ""},
		{"minimal", func(p *Plan) { *p = Plan{ID: "a"} }, ""},

		// id
		{"id required", func(p *Plan) { p.ID = "" }, "id: required"},
		{"id with a space", func(p *Plan) { p.ID = "sales qualifier" }, `id: "sales qualifier" must be 1-128 letters, digits or _.:- and start with a letter or digit`},
		{"id starting with -", func(p *Plan) { p.ID = "-a" }, `id: "-a" must be 1-128 letters, digits or _.:- and start with a letter or digit`},
		{"id of 129 characters", func(p *Plan) { p.ID = xs(129) }, `id: "` + xs(129) + `" must be 1-128 letters, digits or _.:- and start with a letter or digit`},
		{"id of 128 characters with every allowed character", func(p *Plan) { p.ID = "A9_.:-" + xs(122) }, ""},

		// analysis
		{"analysis prompt required", func(p *Plan) { p.Analysis.Prompt = "" }, "analysis.prompt: required"},
		{"analysis prompt blank", func(p *Plan) { p.Analysis.Prompt = " \n\t" }, "analysis.prompt: required"},
		{"analysis fields required", func(p *Plan) { p.Analysis.Fields = nil }, "analysis.fields: at least one field is required"},
		{"field name required", func(p *Plan) { p.Analysis.Fields[1].Name = "" }, `analysis.fields[1].name: "" must be a letter or _ followed by up to 63 letters, digits or _`},
		{"field name starting with a digit", func(p *Plan) { p.Analysis.Fields[1].Name = "1st" }, `analysis.fields[1].name: "1st" must be a letter or _ followed by up to 63 letters, digits or _`},
		{"field name with a dash", func(p *Plan) { p.Analysis.Fields[1].Name = "call-outcome" }, `analysis.fields[1].name: "call-outcome" must be a letter or _ followed by up to 63 letters, digits or _`},
		{"field name used twice", func(p *Plan) { p.Analysis.Fields[3].Name = "summary" }, `analysis.fields[3].name: "summary" used twice`},
		{"field type required", func(p *Plan) { p.Analysis.Fields[2].Type = "" }, "analysis.fields[2].type: required (string, number, integer, boolean, enum or date)"},
		{"field type unknown", func(p *Plan) { p.Analysis.Fields[2].Type = "bool" }, `analysis.fields[2].type: "bool" must be string, number, integer, boolean, enum or date`},
		{"values on a string field", func(p *Plan) { p.Analysis.Fields[0].Values = []string{"a"} }, "analysis.fields[0].values: only an enum field takes values"},
		{"values on a date field", func(p *Plan) { p.Analysis.Fields[5].Values = []string{"a"} }, "analysis.fields[5].values: only an enum field takes values"},
		{"enum needs values", func(p *Plan) { p.Analysis.Fields[1].Values = nil }, "analysis.fields[1].values: required for an enum (at least one value)"},
		{"enum empty value", func(p *Plan) { p.Analysis.Fields[1].Values = []string{"agreed", ""} }, `analysis.fields[1].values: "" is empty or repeated`},
		{"enum repeated value", func(p *Plan) { p.Analysis.Fields[1].Values = []string{"agreed", "declined", "agreed"} }, `analysis.fields[1].values: "agreed" is empty or repeated`},
		{"enum of one value", func(p *Plan) { p.Analysis.Fields[1].Values = []string{"agreed"} }, ""},

		{"summary_field not a field", func(p *Plan) { p.Analysis.SummaryField = "summry" }, `analysis.summary_field: "summry" is not one of the fields`},
		{"summary_field an enum", func(p *Plan) { p.Analysis.SummaryField = "outcome" }, `analysis.summary_field: field "outcome" is enum, want string`},
		{"summary_field a boolean", func(p *Plan) { p.Analysis.SummaryField = "success" }, `analysis.summary_field: field "success" is boolean, want string`},
		{"summary_field unset", func(p *Plan) { p.Analysis.SummaryField = "" }, ""},
		{"summary_field a pii string", func(p *Plan) { p.Analysis.SummaryField = "email" }, ""},
		{"disposition_field not a field", func(p *Plan) { p.Analysis.DispositionField = "result" }, `analysis.disposition_field: "result" is not one of the fields`},
		{"disposition_field a boolean", func(p *Plan) { p.Analysis.DispositionField = "success" }, `analysis.disposition_field: field "success" is boolean, want enum or string`},
		{"disposition_field an integer", func(p *Plan) { p.Analysis.DispositionField = "interest" }, `analysis.disposition_field: field "interest" is integer, want enum or string`},
		{"disposition_field a date", func(p *Plan) { p.Analysis.DispositionField = "demo_date" }, `analysis.disposition_field: field "demo_date" is date, want enum or string`},
		{"disposition_field a string", func(p *Plan) { p.Analysis.DispositionField = "summary" }, ""},
		{"disposition_field unset", func(p *Plan) { p.Analysis.DispositionField = "" }, ""},
		{"success_field not a field", func(p *Plan) { p.Analysis.SuccessField = "won" }, `analysis.success_field: "won" is not one of the fields`},
		{"success_field a string", func(p *Plan) { p.Analysis.SuccessField = "summary" }, `analysis.success_field: field "summary" is string, want boolean`},
		{"success_field an enum", func(p *Plan) { p.Analysis.SuccessField = "outcome" }, `analysis.success_field: field "outcome" is enum, want boolean`},
		{"success_field a number", func(p *Plan) { p.Analysis.SuccessField = "amount" }, `analysis.success_field: field "amount" is number, want boolean`},
		{"success_field unset", func(p *Plan) { p.Analysis.SuccessField = "" }, ""},
		{"min_user_turns negative", func(p *Plan) { p.Analysis.Skip.MinUserTurns = intPtr(-1) }, "analysis.skip.min_user_turns: -1 must not be negative"},
		{"min_user_turns zero", func(p *Plan) { p.Analysis.Skip.MinUserTurns = intPtr(0) }, ""},
		{"min_duration negative", func(p *Plan) { p.Analysis.Skip.MinDuration = floatPtr(-0.5) }, "analysis.skip.min_duration: -0.5 must not be negative"},
		{"min_duration zero", func(p *Plan) { p.Analysis.Skip.MinDuration = floatPtr(0) }, ""},
		{"no analysis", func(p *Plan) { p.Analysis = nil }, ""},

		// qc
		{"qc prompt required", func(p *Plan) { p.QC.Prompt = "" }, "qc.prompt: required"},
		{"qc prompt blank", func(p *Plan) { p.QC.Prompt = "  " }, "qc.prompt: required"},
		{"qc checklist required", func(p *Plan) { p.QC.Checklist = nil }, "qc.checklist: at least one item is required"},
		{"checklist id required", func(p *Plan) { p.QC.Checklist[1].ID = "" }, `qc.checklist[1].id: "" must be a letter or _ followed by up to 63 letters, digits or _`},
		{"checklist id with a space", func(p *Plan) { p.QC.Checklist[0].ID = "next step" }, `qc.checklist[0].id: "next step" must be a letter or _ followed by up to 63 letters, digits or _`},
		{"checklist id used twice", func(p *Plan) { p.QC.Checklist[1].ID = "greeting" }, `qc.checklist[1].id: "greeting" used twice`},
		{"checklist description required", func(p *Plan) { p.QC.Checklist[1].Description = " " }, "qc.checklist[1].description: required"},
		{"checklist weight zero", func(p *Plan) { p.QC.Checklist[0].Weight = 0 }, "qc.checklist[0].weight: 0 must be a positive integer"},
		{"checklist weight negative", func(p *Plan) { p.QC.Checklist[1].Weight = -2 }, "qc.checklist[1].weight: -2 must be a positive integer"},
		{"checklist weight at the limit", func(p *Plan) { p.QC.Checklist[1].Weight = MaxWeight }, ""},
		{"checklist weight over the limit", func(p *Plan) { p.QC.Checklist[1].Weight = MaxWeight + 1 }, "qc.checklist[1].weight: 1001 must be between 1 and 1000"},
		{"checklist weight that overflows the score", func(p *Plan) { p.QC.Checklist[0].Weight = math.MaxInt64 }, "qc.checklist[0].weight: 9223372036854775807 must be between 1 and 1000"},
		{"checklist weights over the total", func(p *Plan) {
			p.QC.Checklist = nil
			for i := range MaxTotalWeight/MaxWeight + 1 {
				p.QC.Checklist = append(p.QC.Checklist, ChecklistItem{ID: fmt.Sprintf("i%d", i), Description: "d", Weight: MaxWeight})
			}
		}, "qc.checklist: the weights add up to 101000, more than 100000"},
		{"pass_score zero", func(p *Plan) { p.QC.PassScore = 0 }, "qc.pass_score: 0 must be between 1 and 10"},
		{"pass_score 11", func(p *Plan) { p.QC.PassScore = 11 }, "qc.pass_score: 11 must be between 1 and 10"},
		{"pass_score negative", func(p *Plan) { p.QC.PassScore = -1 }, "qc.pass_score: -1 must be between 1 and 10"},
		{"pass_score 1", func(p *Plan) { p.QC.PassScore = 1 }, ""},
		{"pass_score 10", func(p *Plan) { p.QC.PassScore = 10 }, ""},
		{"no qc", func(p *Plan) { p.QC = nil }, ""},

		// cache
		{"cache retention 24h", func(p *Plan) { p.Cache.Retention = "24h" }, ""},
		{"cache retention in_memory", func(p *Plan) { p.Cache.Retention = "in_memory" }, ""},
		{"cache retention unset", func(p *Plan) { p.Cache.Retention = "" }, ""},
		{"cache retention 1h", func(p *Plan) { p.Cache.Retention = "1h" }, `cache.retention: "1h" must be 24h or in_memory`},
		{"cache retention in-memory", func(p *Plan) { p.Cache.Retention = "in-memory" }, `cache.retention: "in-memory" must be 24h or in_memory`},
		{"cache retention 24H", func(p *Plan) { p.Cache.Retention = "24H" }, `cache.retention: "24H" must be 24h or in_memory`},
		{"cache retention without caching enabled", func(p *Plan) { p.Cache = Cache{Retention: "in_memory"} }, ""},

		// output budgets and service tier
		{"analysis max_tokens", func(p *Plan) { p.Analysis.MaxTokens = 800 }, ""},
		{"qc max_tokens", func(p *Plan) { p.QC.MaxTokens = MaxPlanTokens }, ""},
		{"analysis max_tokens negative", func(p *Plan) { p.Analysis.MaxTokens = -1 },
			"analysis.max_tokens: -1 must be between 1 and 128000 (absent: sized from the answers)"},
		{"qc max_tokens too large", func(p *Plan) { p.QC.MaxTokens = MaxPlanTokens + 1 },
			"qc.max_tokens: 128001 must be between 1 and 128000 (absent: sized from the answers)"},
		{"service tier flex", func(p *Plan) { p.ServiceTier = "flex" }, ""},
		{"service tier unset", func(p *Plan) { p.ServiceTier = "" }, ""},
		{"service tier priority", func(p *Plan) { p.ServiceTier = "priority" },
			`service_tier: "priority" must be flex (or absent for the default tier)`},

		// integrations
		{"integration name required", func(p *Plan) { p.Integrations[0].Name = "" }, "integrations[0].name: required"},
		{"integration name used twice", func(p *Plan) {
			p.Integrations = append(p.Integrations, Integration{Name: "zapier", Type: "hubspot"})
		}, `integrations[1].name: "zapier" used twice`},
		{"integration type required", func(p *Plan) {
			p.Integrations = append(p.Integrations, Integration{Name: "crm"})
		}, "integrations[1].type: required"},
		{"several integrations", func(p *Plan) {
			p.Integrations = append(p.Integrations, Integration{Name: "crm", Type: "hubspot"}, Integration{Name: "ghl", Type: "gohighlevel"})
		}, ""},

		// retention
		{"purge_after_days negative", func(p *Plan) { p.Retention.PurgeAfterDays = intPtr(-1) }, "retention.purge_after_days: -1 must be between 0 and 36500"},
		{"purge_after_days that overflows the cutoff", func(p *Plan) { p.Retention.PurgeAfterDays = intPtr(math.MaxInt64) }, "retention.purge_after_days: 9223372036854775807 must be between 0 and 36500"},
		{"purge_after_days at the limit", func(p *Plan) { p.Retention.PurgeAfterDays = intPtr(MaxRetentionDays) }, ""},
		{"hard_delete_after_days negative", func(p *Plan) { p.Retention.HardDeleteAfterDays = intPtr(-30) }, "retention.hard_delete_after_days: -30 must be between 0 and 36500"},
		{"hard_delete_after_days over the limit", func(p *Plan) { p.Retention.HardDeleteAfterDays = intPtr(MaxRetentionDays + 1) }, "retention.hard_delete_after_days: 36501 must be between 0 and 36500"},
		{"retention zero", func(p *Plan) { p.Retention = Retention{PurgeAfterDays: intPtr(0), HardDeleteAfterDays: intPtr(0)} }, ""},
		{"retention unset", func(p *Plan) { p.Retention = Retention{} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := validPlan(t)
			tt.mutate(&p)
			err := p.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

// xs is n times "x".
func xs(n int) string { return strings.Repeat("x", n) }

// TestValidateEveryProblem: Validate reports every problem at once, in key
// order, each with its key, so that one run shows everything to fix.
func TestValidateEveryProblem(t *testing.T) {
	t.Parallel()

	p := validPlan(t)
	p.Analysis.Prompt = ""
	p.QC.Prompt = ""
	p.Cache.Retention = "1h"
	err := p.Validate()
	var planErr *PlanError
	require.ErrorAs(t, err, &planErr)
	require.Equal(t, []string{"analysis.prompt: required", "qc.prompt: required", `cache.retention: "1h" must be 24h or in_memory`},
		planErr.Problems)
	p.Analysis.Prompt, p.QC.Prompt = "p", "p"
	require.EqualError(t, p.Validate(), `cache.retention: "1h" must be 24h or in_memory`, "one problem reads as itself")
}

// TestParsePlansEveryProblem: every problem of every agent in a file, each
// with its agent and key; a misnamed or mistyped field is one problem, not
// one more for each key naming it.
func TestParsePlansEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := ParsePlans([]byte(`
- id: x
  analysis:
    prompt: p
    fields:
      - {name: colour, type: colour}
      - {name: outcome, type: enum}
    disposition_field: colour
    summary_field: missing
- id: z
  qc: {prompt: "", checklist: [{id: a, description: d, weight: -1}]}
- id: x
`))
	var planErr *PlanError
	require.ErrorAs(t, err, &planErr)
	require.Equal(t, []string{
		`agent "x": analysis.fields[0].type: "colour" must be string, number, integer, boolean, enum or date`,
		`agent "x": analysis.fields[1].values: required for an enum (at least one value)`,
		`agent "x": analysis.summary_field: "missing" is not one of the fields`,
		`agent "z": qc.prompt: required`,
		`agent "z": qc.checklist[0].weight: -1 must be a positive integer`,
		`agent "x": listed twice`,
	}, planErr.Problems)
	require.True(t, strings.HasPrefix(err.Error(), "6 problems:\n  agent \"x\""), err.Error())
}

func TestHash(t *testing.T) {
	t.Parallel()

	base := parseOne(t, fullYAML)
	hexSHA256 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	require.Regexp(t, hexSHA256, base.Hash())
	require.Equal(t, base.Hash(), base.Hash())

	t.Run("same plan, same hash", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			data string
		}{
			{"JSON with every key reordered", fullJSON},
			{"YAML with top-level keys reordered", reorderTopLevel(fullYAML)},
			{"YAML as a list of one", "- " + indent(fullYAML)},
			{"YAML with comments", "# the sales agent\n" + fullYAML + "# end\n"},
			{"block style instead of flow style", regexp.MustCompile(`cache: \{enabled: true, retention: 24h\}`).
				ReplaceAllString(fullYAML, "cache:\n  retention: \"24h\"\n  enabled: true")},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				p := parseOne(t, tt.data)
				require.Equal(t, string(base.Canonical()), string(p.Canonical()))
				require.Equal(t, base.Hash(), p.Hash())
			})
		}
	})

	t.Run("defaults written out, same hash", func(t *testing.T) {
		t.Parallel()
		implicit := parseOne(t, "id: a\nqc: {prompt: p, checklist: [{id: x, description: d}]}\n")
		explicit := parseOne(t, "id: a\nname: a\nqc: {prompt: p, checklist: [{id: x, description: d, weight: 1}], pass_score: 7}\n")
		require.Equal(t, implicit.Hash(), explicit.Hash())
	})

	t.Run("stored and read back, same hash", func(t *testing.T) {
		t.Parallel()
		// The store keeps Canonical and decodes it with encoding/json.
		var back Plan
		require.NoError(t, json.Unmarshal(base.Canonical(), &back))
		require.Equal(t, base, back)
		require.Equal(t, base.Hash(), back.Hash())
	})

	t.Run("changed plan, new hash", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			mutate func(p *Plan)
		}{
			{"analysis prompt", func(p *Plan) { p.Analysis.Prompt += " Be brief." }},
			{"analysis prompt whitespace", func(p *Plan) { p.Analysis.Prompt += "\n" }},
			{"qc prompt", func(p *Plan) { p.QC.Prompt = "Judge strictly." }},
			{"name", func(p *Plan) { p.Name = "Sales" }},
			{"model", func(p *Plan) { p.Model = "gpt-4.1" }},
			{"field order", func(p *Plan) {
				p.Analysis.Fields[0], p.Analysis.Fields[1] = p.Analysis.Fields[1], p.Analysis.Fields[0]
			}},
			{"field description", func(p *Plan) { p.Analysis.Fields[0].Description = "One sentence" }},
			{"field pii", func(p *Plan) { p.Analysis.Fields[0].PII = true }},
			{"enum values", func(p *Plan) { p.Analysis.Fields[1].Values = append(p.Analysis.Fields[1].Values, "maybe") }},
			{"skip", func(p *Plan) { p.Analysis.Skip.MinDuration = floatPtr(6) }},
			{"checklist weight", func(p *Plan) { p.QC.Checklist[0].Weight = 2 }},
			{"checklist fatal", func(p *Plan) { p.QC.Checklist[0].Fatal = true }},
			{"pass score", func(p *Plan) { p.QC.PassScore = 7 }},
			{"cache", func(p *Plan) { p.Cache.Retention = "in_memory" }},
			{"integration setting", func(p *Plan) { p.Integrations[0].Settings["url"] = "https://hooks.example.com/def" }},
			{"integration nested setting", func(p *Plan) {
				p.Integrations[0].Settings["headers"] = map[string]any{"X-Team": "support", "X-Env": "prod"}
			}},
			{"integration type", func(p *Plan) { p.Integrations[0].Type = "hubspot" }},
			{"retention", func(p *Plan) { p.Retention.HardDeleteAfterDays = intPtr(1) }},
			{"retention unset", func(p *Plan) { p.Retention.HardDeleteAfterDays = nil }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				p := parseOne(t, fullYAML)
				tt.mutate(&p)
				require.NotEqual(t, base.Hash(), p.Hash())
			})
		}
	})
}

// reorderTopLevel moves fullYAML's first three top-level keys (id, name,
// model) to the end.
func reorderTopLevel(doc string) string {
	head := "\nid: sales-qualifier\nname: Sales qualifier\nmodel: gpt-4.1-mini\n"
	return doc[len(head):] + head[1:]
}

func TestIntegrationJSON(t *testing.T) {
	t.Parallel()

	t.Run("settings flattened next to name and type", func(t *testing.T) {
		t.Parallel()
		in := Integration{Name: "crm", Type: "hubspot", Settings: map[string]any{"token": "t", "fields": []any{"a"}}}
		require.JSONEq(t, `{"name": "crm", "type": "hubspot", "token": "t", "fields": ["a"]}`, jsonOf(t, in))
	})

	t.Run("no settings", func(t *testing.T) {
		t.Parallel()
		require.JSONEq(t, `{"name": "crm", "type": "hubspot"}`, jsonOf(t, Integration{Name: "crm", Type: "hubspot"}))
	})

	t.Run("name and type win over settings of the same key", func(t *testing.T) {
		t.Parallel()
		in := Integration{Name: "crm", Type: "hubspot", Settings: map[string]any{"name": "other", "type": "webhook"}}
		require.JSONEq(t, `{"name": "crm", "type": "hubspot"}`, jsonOf(t, in))
	})

	tests := []struct {
		name    string
		data    string
		want    Integration
		wantErr string
	}{
		{"every other key in settings", `{"name": "zap", "type": "webhook", "url": "https://x.example", "retries": 3, "headers": {"A": "b"}}`,
			Integration{Name: "zap", Type: "webhook", Settings: map[string]any{"url": "https://x.example", "retries": float64(3), "headers": map[string]any{"A": "b"}}}, ""},
		{"only name and type", `{"name": "zap", "type": "webhook"}`, Integration{Name: "zap", Type: "webhook", Settings: map[string]any{}}, ""},
		{"null name and type are absent", `{"name": null, "type": null, "url": "u"}`, Integration{Settings: map[string]any{"url": "u"}}, ""},
		{"missing name and type", `{"url": "u"}`, Integration{Settings: map[string]any{"url": "u"}}, ""},
		{"name not a string", `{"name": 5, "type": "webhook"}`, Integration{}, "integrations.name: 5 must be a string"},
		{"type not a string", `{"name": "zap", "type": true}`, Integration{}, "integrations.type: true must be a string"},
		{"not an object", `["zap"]`, Integration{}, "cannot unmarshal array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got Integration
			err := json.Unmarshal([]byte(tt.data), &got)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)

			// Round trip: marshal then unmarshal gives the same integration.
			var back Integration
			require.NoError(t, json.Unmarshal([]byte(jsonOf(t, got)), &back))
			require.Equal(t, got, back)
		})
	}
}

func TestAnalysisField(t *testing.T) {
	t.Parallel()

	a := validPlan(t).Analysis
	tests := []struct {
		name   string
		field  string
		want   Field
		wantOK bool
	}{
		{"first", "summary", Field{Name: "summary", Type: FieldString, Description: "Two-sentence summary"}, true},
		{"enum", "outcome", Field{Name: "outcome", Type: FieldEnum, Values: []string{"agreed", "declined", "callback"}}, true},
		{"last", "email", Field{Name: "email", Type: FieldString, PII: true}, true},
		{"missing", "phone", Field{}, false},
		{"case-sensitive", "Summary", Field{}, false},
		{"empty", "", Field{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := a.Field(tt.field)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestSkipThresholds(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name         string
		analysis     *Analysis
		wantTurns    int
		wantDuration time.Duration
	}{
		{"nil analysis", nil, 1, 0},
		{"unset", &Analysis{}, 1, 0},
		{"zero turns", &Analysis{Skip: Skip{MinUserTurns: intPtr(0)}}, 0, 0},
		{"three turns", &Analysis{Skip: Skip{MinUserTurns: intPtr(3)}}, 3, 0},
		{"whole seconds", &Analysis{Skip: Skip{MinDuration: floatPtr(5)}}, 1, 5 * time.Second},
		{"fractional seconds", &Analysis{Skip: Skip{MinDuration: floatPtr(0.25)}}, 1, 250 * time.Millisecond},
		{"both", &Analysis{Skip: Skip{MinUserTurns: intPtr(2), MinDuration: floatPtr(90)}}, 2, 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.wantTurns, tt.analysis.MinUserTurns())
			require.Equal(t, tt.wantDuration, tt.analysis.MinDuration())
		})
	}
}

func TestYAMLDocuments(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		data string
		want int
	}{
		{"empty", "", 0},
		{"comments only", "# a\n  # b\n", 0},
		{"one", "id: a\n", 1},
		{"one with start marker", "---\nid: a\n", 1},
		{"one with directive and start marker", "%YAML 1.2\n---\nid: a\n", 1},
		{"one with trailing marker", "id: a\n---\n", 1},
		{"one with trailing marker and comment", "id: a\n--- # nothing\n# more\n", 1},
		{"one with end marker", "id: a\n...\n", 1},
		{"dashes inside a block scalar", "id: a\nanalysis:\n  prompt: |\n    ---\n    text\n", 1},
		{"dashes not a marker", "id: a\n----\n", 1},
		{"JSON", `{"id": "a"}`, 1},
		{"two", "id: a\n---\nid: b\n", 2},
		{"two with CRLF", "id: a\r\n---\r\nid: b\r\n", 2},
		{"two, second on the marker line", "id: a\n--- {id: b}\n", 2},
		{"three", "---\nid: a\n---\nid: b\n---\nid: c\n", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, yamlDocuments([]byte(tt.data)))
		})
	}
}

func TestOutputBudgetAndServiceTierKeys(t *testing.T) {
	t.Parallel()
	// Plans without the keys keep their canonical form, hence their
	// versions.
	base := parseOne(t, fullYAML)
	require.NotContains(t, string(base.Canonical()), "max_tokens")
	require.NotContains(t, string(base.Canonical()), "service_tier")

	withKeys := strings.Replace(fullYAML, "analysis:\n", "service_tier: flex\nanalysis:\n  max_tokens: 900\n", 1)
	withKeys = strings.Replace(withKeys, "qc:\n", "qc:\n  max_tokens: 700\n", 1)
	p := parseOne(t, withKeys)
	require.Equal(t, "flex", p.ServiceTier)
	require.Equal(t, 900, p.Analysis.MaxTokens)
	require.Equal(t, 700, p.QC.MaxTokens)
	require.NotEqual(t, base.Hash(), p.Hash(), "a new budget or tier is a new plan version")

	_, err := ParsePlans([]byte(strings.Replace(fullYAML, "qc:\n", "qc:\n  max_tokens: 0.5\n", 1)))
	require.Error(t, err)
}

func TestRedact(t *testing.T) {
	t.Parallel()
	const base = "id: a\nanalysis: {prompt: p, fields: [{name: s, type: string}]}\n"
	parse := func(t *testing.T, extra string) (*Plan, error) {
		t.Helper()
		plans, err := ParsePlans([]byte(base + extra))
		if err != nil {
			return nil, err
		}
		return &plans[0], nil
	}

	t.Run("entities are validated, every unknown one named", func(t *testing.T) {
		t.Parallel()
		_, err := parse(t, "redact: {entities: [email, credit_cards, social]}\n")
		require.EqualError(t, err, `agent "a": redact.entities: unknown entities "credit_cards", "social" `+
			`(known: credit_card, ssn, iban, bank_account, email, phone_number, date_of_birth)`)
		_, err = parse(t, "redact: {entities: []}\n")
		require.ErrorContains(t, err, "redact.entities: list at least one entity")
		_, err = parse(t, "redact: {entities: [ssn, ssn]}\n")
		require.ErrorContains(t, err, `redact.entities: "ssn" listed twice`)
		_, err = parse(t, "redact: {entity: [ssn]}\n")
		require.ErrorContains(t, err, `unknown field "entity"`)
	})

	t.Run("order does not make a new version, adding redaction does", func(t *testing.T) {
		t.Parallel()
		a, err := parse(t, "redact: {entities: [email, credit_card]}\n")
		require.NoError(t, err)
		b, err := parse(t, "redact: {entities: [credit_card, email]}\n")
		require.NoError(t, err)
		none, err := parse(t, "")
		require.NoError(t, err)
		require.Equal(t, []string{"credit_card", "email"}, a.Redact.Entities)
		require.Equal(t, a.Hash(), b.Hash())
		require.NotEqual(t, a.Hash(), none.Hash())
		require.NotContains(t, string(none.Canonical()), "redact", "a plan without redaction keeps its hash")
	})

	t.Run("redactor", func(t *testing.T) {
		t.Parallel()
		p, err := parse(t, "redact: {entities: [ssn]}\n")
		require.NoError(t, err)
		turns := []call.Turn{{Role: call.RoleUser, Text: "it's 123-45-6789"}}
		r, err := p.Redactor()
		require.NoError(t, err)
		out, counts := r.Transcript(turns)
		require.Equal(t, "it's [SSN]", out[0].Text)
		require.Equal(t, redact.Counts{redact.SSN: 1}, counts)
		none, err := parse(t, "")
		require.NoError(t, err)
		r, err = none.Redactor()
		require.NoError(t, err)
		out, counts = r.Transcript(turns)
		require.Equal(t, turns, out)
		require.Nil(t, counts)
	})
}

// TestParsePlansRefusesNUL: a NUL in a plan's string (YAML "\0") made
// agents apply fail with a database error (jsonb cannot hold it); it is a
// plan error naming the key.
func TestParsePlansRefusesNUL(t *testing.T) {
	t.Parallel()
	_, err := ParsePlans([]byte("id: nul\nname: \"a\\0b\"\n"))
	require.EqualError(t, err, `agent "nul": name: must not contain NUL characters`)
	_, err = ParsePlans([]byte("id: nul\nanalysis: {prompt: \"p\\0\", fields: [{name: s, type: string}]}\n"))
	require.EqualError(t, err, `agent "nul": analysis.prompt: must not contain NUL characters`)
}
