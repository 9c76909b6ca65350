package analysis_test

import (
	"bufio"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/pipeline"
)

// recordingModel answers with the demo model and keeps the requests.
type recordingModel struct {
	mu   sync.Mutex
	reqs []analysis.Request
}

func (m *recordingModel) Complete(ctx context.Context, req analysis.Request) (*analysis.Response, error) {
	m.mu.Lock()
	m.reqs = append(m.reqs, req)
	m.mu.Unlock()
	return analysis.Demo{}.Complete(ctx, req)
}

// examples loads examples/agents.yaml by id and examples/calls.jsonl by
// call_id.
func examples(t *testing.T) (map[string]*agent.Plan, map[string]*call.Record) {
	t.Helper()
	data, err := os.ReadFile("../examples/agents.yaml")
	require.NoError(t, err)
	list, err := agent.ParsePlans(data)
	require.NoError(t, err)
	plans := map[string]*agent.Plan{}
	for i := range list {
		plans[list[i].ID] = &list[i]
	}
	f, err := os.Open("../examples/calls.jsonl")
	require.NoError(t, err)
	defer f.Close()
	calls := map[string]*call.Record{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		r, err := call.ParseRecord(sc.Bytes())
		require.NoError(t, err, "examples/calls.jsonl line %d", n)
		calls[r.CallID] = r
	}
	require.NoError(t, sc.Err())
	return plans, calls
}

// want is one value the demo must read, and the turn it must read it from
// (-1: the call's facts).
type want struct {
	value any
	turn  int
}

// TestDemoReadsExampleCalls runs the demo model through the Analyzer on the
// example calls with the example plans: every answer passes the plan's
// validation, and each value is the one the rules should find, read from
// the turn it is in. Fields not listed must be null.
func TestDemoReadsExampleCalls(t *testing.T) {
	t.Parallel()
	plans, calls := examples(t)

	tests := []struct {
		callID string
		fields map[string]want
		// passed lists the checklist items that pass, with the turn that
		// passes them; the others must fail with "not found".
		passed map[string]int
	}{
		{"demo-0001", map[string]want{
			"summary":     {`[demo] Dana Example said: "Yes, our team of 40 agents loses hours reviewing calls by hand. What does it cost?" Outcome: agreed to the next step.`, 3},
			"outcome":     {"agreed", 5},
			"success":     {true, 5},
			"demo_date":   {"2026-11-24", 5}, // "next Tuesday" after Friday 2026-11-20
			"email":       {"dana@example.com", 5},
			"pain_points": {"Yes, our team of 40 agents loses hours reviewing calls by hand.", 3},
			"team_size":   {int64(40), 3},
		}, map[string]int{"greeting": 0, "consent": 0, "next_step": 4, "polite_close": 8}},
		{"demo-0009", map[string]want{
			"summary": {`[demo] Riley Example said: "What is this about?" Outcome: not interested.`, 1},
			"outcome": {"not_interested", 3},
			"success": {false, 3},
		}, map[string]int{"greeting": 0, "consent": 0, "polite_close": 4}},
		{"demo-0010", map[string]want{
			"summary": {`[demo] Morgan Example said: "Can you call me back Thursday afternoon? I'm at morgan@example.com if you want to send anything." Outcome: asked to be called back.`, 3},
			"outcome": {"callback", 3},
			"success": {false, 3},
			// Thursday is said, but not for a demo: demo_date stays null.
			"email": {"morgan@example.com", 3},
		}, map[string]int{"greeting": 0, "consent": 0, "next_step": 2, "polite_close": 4}},
		{"demo-0015", map[string]want{
			"summary":   {`[demo] Taylor Example said: "Honestly we already use another tool for that, and it works fine for our team of 12 reps." Outcome: declined.`, 3},
			"outcome":   {"declined", 5},
			"success":   {false, 5},
			"team_size": {int64(12), 3},
		}, map[string]int{"greeting": 0, "consent": 0, "next_step": 4, "polite_close": 6}},
		{"demo-0006", map[string]want{
			"summary":  {`[demo] Sam Example said: "Hi, I was charged twice this month for my subscription." Outcome: resolved.`, 1},
			"category": {"billing", 1},
			"resolved": {true, 4},
		}, nil},
		{"demo-0007", map[string]want{
			"summary":  {`[demo] The customer said: "Sorry, wrong number." Outcome: no clear outcome.`, 1},
			"category": {"other", -1}, // the catch-all: the customer named no category
		}, nil},
		{"demo-0011", map[string]want{
			"summary":  {`[demo] Casey Example said: "Our dashboard has shown an error since this morning and none of our recordings load." Outcome: transferred.`, 1},
			"category": {"technical", 1},
			// A transfer says nothing about resolved.
		}, nil},
		{"demo-0012", map[string]want{
			"summary":  {`[demo] Jamie Example said: "I need to change the card we pay with, and I'd like to talk to someone in billing." Outcome: asked to be called back.`, 1},
			"category": {"billing", 1},
			"resolved": {false, 4},
		}, nil},
		{"demo-0013", map[string]want{
			"summary":  {`[demo] Alex Example said: "I can't log in to my account, and the password reset email never arrives." Outcome: transferred.`, 1},
			"category": {"account", 1},
		}, nil},
		{"demo-0014", map[string]want{
			"summary":  {`[demo] Alex Example said: "Right, but it never arrived." Outcome: resolved.`, 1},
			"category": {"account", 3},
			"resolved": {true, 4},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.callID, func(t *testing.T) {
			t.Parallel()
			r := calls[tt.callID]
			require.NotNil(t, r, "example call")
			plan := plans[r.AgentID]
			m := &recordingModel{}
			a := &analysis.Analyzer{Model: m, DefaultModel: "gpt-4.1-mini"}
			in := pipeline.InputFromRecord(r)

			res, err := a.Analyze(context.Background(), plan, 1, in)
			require.NoError(t, err, "the plan's validation accepts the demo's answer")
			require.Len(t, m.reqs, 1, "valid at once: no repair request")
			require.Equal(t, analysis.DemoModelName, res.Model)
			read, err := analysis.DemoRead(m.reqs[0])
			require.NoError(t, err)
			for _, f := range plan.Analysis.Fields {
				w, ok := tt.fields[f.Name]
				if !ok {
					require.Nil(t, res.Fields[f.Name], "field %s: nothing to read, so null", f.Name)
					continue
				}
				require.Equal(t, w.value, res.Fields[f.Name], "field %s", f.Name)
				got := read[f.Name]
				require.Equal(t, w.turn, got.Turn, "field %s: the turn it was read from", f.Name)
				if got.Turn >= 0 {
					require.Contains(t, r.Transcript[got.Turn].Text, got.Quote, "field %s: the quote is in its turn", f.Name)
				}
			}

			if plan.QC == nil {
				return
			}
			m.reqs = nil
			qc, err := a.QC(context.Background(), plan, 1, in)
			require.NoError(t, err)
			read, err = analysis.DemoRead(m.reqs[0])
			require.NoError(t, err)
			for _, it := range qc.Items {
				turn, ok := tt.passed[it.ID]
				require.Equal(t, ok, it.Passed, "item %s passed", it.ID)
				require.True(t, strings.HasPrefix(it.Evidence, "[demo] "), it.Evidence)
				if !ok {
					require.Equal(t, "[demo] not found in the transcript", it.Evidence)
					continue
				}
				require.Equal(t, turn, read[it.ID].Turn, "item %s: the turn that passed it", it.ID)
				require.Contains(t, it.Evidence, r.Transcript[turn].Text, "item %s: the evidence quotes the turn", it.ID)
			}
			require.Equal(t, analysis.Score(plan.QC.Checklist, qc.Items), qc.Score)
		})
	}
}

// TestDemoRules covers the rules one at a time, on one-line calls.
func TestDemoRules(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC) // a Friday
	plan := &agent.Plan{ID: "rules", Model: "m", Analysis: &agent.Analysis{Prompt: "p", Fields: []agent.Field{
		{Name: "outcome", Type: agent.FieldEnum, Values: []string{"agreed", "declined", "callback", "not_interested"}},
		// No catch-all value here; demo-0007 shows "other" chosen.
		{Name: "category", Type: agent.FieldEnum, Values: []string{"billing", "technical", "account"}},
		{Name: "converted", Type: agent.FieldBoolean},
		{Name: "callback_date", Type: agent.FieldDate},
		{Name: "date", Type: agent.FieldDate},
		{Name: "budget", Type: agent.FieldNumber},
		{Name: "seats", Type: agent.FieldInteger},
		{Name: "contact_email", Type: agent.FieldString},
		{Name: "phone", Type: agent.FieldString},
		{Name: "notes", Type: agent.FieldString},
	}}}

	tests := []struct {
		name   string
		noDay  bool // the call message gives no date
		turns  []string
		fields map[string]any // the others must be null
	}{
		{"longest phrase wins: not interested over interested", false,
			[]string{"agent: Are you interested?", "user: Honestly, not interested."},
			map[string]any{"outcome": "not_interested", "converted": false}},
		{"the last outcome said decides", false,
			[]string{"user: Call me back later.", "agent: Or shall I book it now?", "user: Sign me up."},
			map[string]any{"outcome": "agreed", "converted": true}},
		{"a customer phrase in an agent turn does not count", false,
			[]string{"agent: Sounds good to me!", "user: Hmm."},
			nil},
		{"enum by the value's own cue words", false,
			[]string{"user: The app shows an error and will not load."},
			map[string]any{"category": "technical"}},
		{"callback date from a weekday said with call me back", false,
			[]string{"user: Please call me back on Monday, my email is pat.doe+calls@example.com."},
			map[string]any{"outcome": "callback", "converted": false, "callback_date": "2026-11-23", "date": "2026-11-23", "contact_email": "pat.doe+calls@example.com"}},
		{"the call's own weekday means a week on", false,
			[]string{"user: Call me back Friday."},
			map[string]any{"outcome": "callback", "converted": false, "callback_date": "2026-11-27", "date": "2026-11-27"}},
		{"a named date field needs its subject; a plain date field takes any", false,
			[]string{"user: I'm off tomorrow."},
			map[string]any{"date": "2026-11-21"}},
		{"the agent's question names the field", false,
			[]string{"agent: When should we call you back?", "user: December 3rd works for me."},
			map[string]any{"outcome": "agreed", "converted": true, "callback_date": "2026-12-03", "date": "2026-12-03"}},
		{"a past month day means next year; an impossible one is no date", false,
			[]string{"user: Not the 31st of November, say the 2nd of January."},
			map[string]any{"date": "2027-01-02"}},
		{"ISO dates need no call day; weekdays do", true,
			[]string{"user: Tuesday, or 2026-12-01."},
			map[string]any{"date": "2026-12-01"}},
		{"numbers near the field name", false,
			[]string{"user: Our budget is about $5,000 and we need twelve seats."},
			map[string]any{"budget": 5000.0, "seats": int64(12)}},
		{"the only number in an answer to the agent's question", false,
			[]string{"agent: How many seats do you need?", "user: 25 I think."},
			map[string]any{"seats": int64(25)}},
		{"a fraction is no integer", false,
			[]string{"user: We need 2.5 seats and a budget of 2.5 thousand."},
			map[string]any{"budget": 2.5}},
		{"phone numbers the customer says", false,
			[]string{"agent: My number is +1 555 010 9999.", "user: Reach me at (555) 010-4242."},
			map[string]any{"phone": "(555) 010-4242"}},
		{"no words, no values", false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := analysis.Input{CallID: "rules"}
			if !tt.noDay {
				in.StartedAt = &day
			}
			for i, line := range tt.turns {
				role, text, _ := strings.Cut(line, ": ")
				in.Transcript = append(in.Transcript, analysis.Turn{Role: role, Text: text, TMs: ptr(int64(i * 1000))})
			}
			res, err := (&analysis.Analyzer{Model: analysis.Demo{}}).Analyze(context.Background(), plan, 1, in)
			require.NoError(t, err)
			for _, f := range plan.Analysis.Fields {
				require.Equal(t, tt.fields[f.Name], res.Fields[f.Name], "field %s", f.Name)
			}
		})
	}
}

// TestDemoChecklist covers the QC rules: cue phrases chosen by the item's
// words, a closing item judged from the end, and an item no rule covers
// matched on its own words.
func TestDemoChecklist(t *testing.T) {
	t.Parallel()
	plan := &agent.Plan{ID: "qc", Model: "m", QC: &agent.QC{Prompt: "p", PassScore: 7, Checklist: []agent.ChecklistItem{
		{ID: "greeting", Description: "Introduced itself", Weight: 1},
		{ID: "consent", Description: "Asked for recording consent", Weight: 2, Fatal: true},
		{ID: "polite_close", Description: "Closed the call politely", Weight: 1},
		{ID: "pricing", Description: "Quoted the price", Weight: 1},
		{ID: "empathy", Description: "Apologised for the trouble", Weight: 1},
	}}}
	in := analysis.Input{CallID: "qc", Transcript: []analysis.Turn{
		{Role: "agent", Text: "Thanks for calling ACME, how can I help?", TMs: ptr(int64(0))},
		{Role: "user", Text: "Is this recorded? What is the price?", TMs: ptr(int64(2000))},
		{Role: "agent", Text: "The price is 49 dollars a seat.", TMs: ptr(int64(65000))},
		{Role: "agent", Text: "Thanks, bye!", TMs: ptr(int64(70000))},
	}}
	qc, err := (&analysis.Analyzer{Model: analysis.Demo{}}).QC(context.Background(), plan, 1, in)
	require.NoError(t, err)
	got := map[string]analysis.Verdict{}
	for _, it := range qc.Items {
		got[it.ID] = it
	}
	require.Equal(t, analysis.Verdict{ID: "greeting", Passed: true, Evidence: `[demo] agent at 0:00: "Thanks for calling ACME, how can I help?"`}, got["greeting"])
	require.Equal(t, analysis.Verdict{ID: "consent", Passed: false, Evidence: "[demo] not found in the transcript"}, got["consent"],
		"the customer's words do not pass an agent's item")
	require.Equal(t, analysis.Verdict{ID: "polite_close", Passed: true, Evidence: `[demo] agent at 1:10: "Thanks, bye!"`}, got["polite_close"],
		"a closing item is judged from the end")
	require.Equal(t, analysis.Verdict{ID: "pricing", Passed: true, Evidence: `[demo] agent at 1:05: "The price is 49 dollars a seat."`}, got["pricing"])
	require.False(t, got["empathy"].Passed)
	require.Equal(t, 1, qc.Score, "the fatal consent item failed")
}

// TestDemoReadsTheCallMessage checks that the demo reads back exactly the
// transcript callMessage writes, so that the two formats cannot drift.
func TestDemoReadsTheCallMessage(t *testing.T) {
	t.Parallel()
	in := testInput("Dana", "Yes: sure, [9:99] go ahead.\nok")
	in.Transcript = append(in.Transcript,
		analysis.Turn{Role: "tool", Text: ""},
		analysis.Turn{Role: "user", Text: "  spaced   out\n\ttext ", TMs: ptr(int64(3_725_000))})
	got := analysis.CallMessageTurns(in)
	require.Len(t, got, len(in.Transcript))
	for i, want := range in.Transcript {
		require.Equal(t, want.Role, got[i].Role, "turn %d", i)
		require.Equal(t, strings.Join(strings.Fields(want.Text), " "), got[i].Text, "turn %d: text folded to one line", i)
		if want.TMs == nil {
			require.Nil(t, got[i].TMs, "turn %d", i)
			continue
		}
		require.Equal(t, *want.TMs/1000*1000, *got[i].TMs, "turn %d: clock to the second", i)
	}
}

func TestDemoModel(t *testing.T) {
	t.Parallel()
	a := &analysis.Analyzer{Model: analysis.Demo{}}
	ctx := context.Background()
	plan := testPlan()

	res, err := a.Analyze(ctx, plan, 1, testInput("Dana", "Yes, sounds good, send it to dana@example.com."))
	require.NoError(t, err, "demo output passes the same validation as a real model's")
	require.Equal(t, analysis.DemoModelName, res.Model)
	require.Len(t, res.Fields, len(plan.Analysis.Fields))
	require.Equal(t, `[demo] Dana said: "Yes, sounds good, send it to dana@example.com." Outcome: agreed to the next step.`, res.Fields["summary"])
	require.Equal(t, "agreed", res.Fields["outcome"])
	require.Equal(t, true, res.Fields["success"])
	require.Equal(t, "dana@example.com", res.Fields["email"])
	require.Nil(t, res.Fields["callback_date"], "the demo invents no facts")
	require.Nil(t, res.Fields["seats"], "contact data is not what the customer said")

	again, err := a.Analyze(ctx, plan, 1, testInput("Dana", "Yes, sounds good, send it to dana@example.com."))
	require.NoError(t, err)
	require.Equal(t, res.Fields, again.Fields, "deterministic")

	qc, err := a.QC(ctx, plan, 1, testInput("Dana", "Yes"))
	require.NoError(t, err)
	require.Equal(t, analysis.DemoModelName, qc.Model)
	require.Len(t, qc.Items, 2)
	for _, it := range qc.Items {
		require.True(t, it.Passed, it.ID)
		require.Equal(t, `[demo] agent at 0:00: "Hi, this is Ava from ACME. May I record this call?"`, it.Evidence)
	}
	require.Equal(t, analysis.Score(plan.QC.Checklist, qc.Items), qc.Score)
	require.Zero(t, analysis.TotalUsage(qc.Requests))

	// A request the demo does not know the schema of still gets a valid,
	// labelled answer.
	resp, err := analysis.Demo{}.Complete(ctx, analysis.Request{Model: "m", Messages: []analysis.Message{{Role: analysis.RoleUser, Content: "hi"}},
		Schema: &analysis.Schema{Name: "other", Definition: []byte(`{"type":"object","properties":{"note":{"type":"string"},"n":{"type":["integer","null"]}},"required":["note","n"],"additionalProperties":false}`)}})
	require.NoError(t, err)
	require.JSONEq(t, `{"note":"[demo] note (generated without a model)","n":null}`, resp.Content)
}
