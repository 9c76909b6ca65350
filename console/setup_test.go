package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/access"
	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/internal/app"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/store"
)

const (
	apiToken = "console-test-api-token-0123456789"
	planYAML = `
- id: sales
  analysis:
    prompt: "You review sales calls."
    fields:
      - {name: summary, type: string}
      - {name: outcome, type: enum, values: [agreed, declined]}
      - {name: email, type: string, pii: true}
    summary_field: summary
    disposition_field: outcome
  qc:
    prompt: "Judge the agent."
    checklist:
      - {id: greeting, description: "Introduced itself"}
      - {id: consent, description: "Asked to record", fatal: true}
- id: support
- id: verify
  analysis:
    prompt: "You review sales calls."
    evidence: require
    fields:
      - {name: summary, type: string}
      - {name: outcome, type: enum, values: [agreed, declined]}
    summary_field: summary
    disposition_field: outcome
  qc:
    prompt: "Judge the agent."
    evidence: require
    checklist:
      - {id: greeting, description: "Introduced itself"}
      - {id: close, description: "Closed politely"}
`
)

// richCall has every key the call page shows: turn metrics, tool calls,
// knowledge retrievals, service errors, a failed transfer, events, carrier
// and DID. It is this test's own record, not the examples'.
const richCall = `{"call_id":"rich-1","agent_id":"sales","direction":"outbound","customer_name":"Dana Example",
"phone_number":"+15550100001","carrier":"Telnyx","did":"+15550199999","started_at":"2026-11-20T15:00:00Z",
"answered_at":"2026-11-20T15:00:06Z","ended_at":"2026-11-20T15:03:10Z","duration":135,"status":"completed",
"ended_reason":"assistant-ended-call","disconnected_by":"bot","recording_key":"recordings/rich-1.wav",
"transcript":[{"role":"agent","text":"Hi, this is Ava from ACME. May I record this call?","t_ms":0},
{"role":"user","text":"Sure. Can we book a demo next Tuesday?","t_ms":4000},
{"role":"agent","text":"Booked for Tuesday. Goodbye!","t_ms":9000}],
"tool_calls":[{"name":"book_demo","status":"ok","duration_ms":420,"t_ms":6000},{"name":"crm_lookup","status":"timeout","duration_ms":3000,"t_ms":2000}],
"knowledge_retrievals":[{"query":"demo availability","hit_count":3,"latency_ms":85,"cache":"miss","t_ms":5000}],
"turn_metrics":[{"turn":1,"stt_ms":210,"llm_ms":640,"rag_ms":0,"tool_ms":0,"tts_ms":180,"total_ms":1030,"prompt_tokens":900,"completion_tokens":40,"tts_chars":52},
{"turn":2,"stt_ms":190,"llm_ms":720,"rag_ms":85,"tool_ms":420,"tts_ms":200,"total_ms":1615,"prompt_tokens":1100,"completion_tokens":30,"tts_chars":28}],
"service_errors":[{"service":"tts","processor":"synthesis","t_ms":8000,"fatal":true,"message":"voice engine closed the stream"}],
"transfer":{"status":"failed","target":"+15550108888","reason":"busy"},
"events":[{"type":"call.started","t_ms":0},{"type":"call.ended","t_ms":135000}]}`

// evidenceCall is for the verify agent (analysis.evidence and qc.evidence
// require): evidenceModel quotes its transcript for summary and greeting
// and quotes nothing said for outcome and close. setup does not ingest it
// (the list tests count the calls); ingestEvidenceCall does.
const evidenceCall = `{"call_id":"evid-1","agent_id":"verify","direction":"outbound","customer_name":"Eve Evidence",
"phone_number":"+15550100007","ended_at":"2026-11-20T14:00:00Z","duration":60,"status":"completed",
"ended_reason":"customer-ended-call","disconnected_by":"customer",
"transcript":[{"role":"agent","text":"Hi, this is Ava from ACME.","t_ms":0},
{"role":"user","text":"Can we book a demo next Tuesday?","t_ms":4000},
{"role":"agent","text":"Booked for Tuesday.","t_ms":9000}]}`

// voicemailCall reached a voicemail: an auto disposition, nothing to show.
const voicemailCall = `{"call_id":"vm-1","agent_id":"sales","direction":"outbound","phone_number":"+15550100002",
"ended_at":"2026-11-20T15:10:00Z","duration":31,"ended_reason":"voicemail","disconnected_by":"voicemail"}`

// changingModel answers analysis and QC, differently on each request of a
// kind, so that a re-run has something to show in the diff; it reports
// cached prompt tokens so that the Post-call cache card appears. A schema
// asking for quotes (the verify agent) gets evidenceAnswer instead.
type changingModel struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *changingModel) Complete(ctx context.Context, req analysis.Request) (*analysis.Response, error) {
	if bytes.Contains(req.Schema.Definition, []byte(`"quote"`)) {
		return evidenceAnswer(req.Schema.Name)
	}
	m.mu.Lock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	kind := req.Schema.Name
	m.n[kind]++
	n := m.n[kind]
	m.mu.Unlock()
	var content any
	if kind == "postcall_qc" {
		content = map[string]any{
			"greeting": map[string]any{"evidence": "Hi, this is Ava", "passed": true},
			"consent":  map[string]any{"evidence": "May I record this call?", "passed": n == 1},
		}
	} else {
		outcome := "agreed"
		if n > 1 {
			outcome = "declined"
		}
		content = map[string]any{"summary": fmt.Sprintf("Demo booked (answer %d)", n), "outcome": outcome, "email": "dana@example.com"}
	}
	body, _ := json.Marshal(content)
	return &analysis.Response{Content: string(body), Model: "test-model", FinishReason: "stop",
		Usage: analysis.Usage{Prompt: 1200, Completion: 80, CachedRead: 1024}}, nil
}

// evidenceAnswer answers evidenceCall's agent, whose schema asks for
// quotes: summary and greeting quote turn 1 and 0; outcome and close quote
// what nobody said. It answers as gpt-4o-mini, a model with a built-in
// price, so that the call has a cost (the rich call's test-model has none).
func evidenceAnswer(kind string) (*analysis.Response, error) {
	content := `{"summary": {"quote": "Can we book a demo next Tuesday?", "value": "Demo on Tuesday"},
		"outcome": {"quote": "I agree to buy it now", "value": "agreed"}}`
	if kind == "postcall_qc" {
		content = `{"greeting": {"quote": "Hi, this is Ava", "passed": true},
			"close": {"quote": "Thank you and have a lovely day", "passed": true}}`
	}
	return &analysis.Response{Content: content, Model: "gpt-4o-mini", FinishReason: "stop",
		Usage: analysis.Usage{Prompt: 1200, Completion: 80, CachedRead: 1024}}, nil
}

// evidenceCost is what evidenceCall's two requests cost at gpt-4o-mini's
// built-in price: 176 fresh, 1024 cached prompt and 80 completion tokens
// each, ((176*0.15 + 1024*0.075 + 80*0.60) / 1e6) * 2, to the microdollar.
const evidenceCost = "$0.000302"

type testBundle struct {
	app    *app.App
	url    string
	admin  string
	viewer string
	// ids of the calls by call_id.
	ids map[string]string
}

// setup runs a worker (River client working every queue, the changing
// model) on a schema of its own, serving the worker's handler, with the
// rich call, the voicemail, and calls for the list filters, all processed.
func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	cfg, err := config.Load([]string{"POSTCALL_API_TOKEN=" + apiToken})
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.New(ctx, cfg, app.Options{Work: true, Pool: pool, Schema: schema, Logger: logger,
		Model: &changingModel{}, FetchPollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(a.Close)
	plans, err := agent.ParsePlans([]byte(planYAML))
	require.NoError(t, err)
	for i := range plans {
		_, _, err = store.ApplyPlan(ctx, pool, &plans[i])
		require.NoError(t, err)
	}
	runCtx, stop := context.WithCancel(ctx)
	require.NoError(t, a.River.Start(runCtx))
	t.Cleanup(func() {
		stop()
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.River.Stop(stopCtx)
	})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)

	b := &testBundle{app: a, url: srv.URL, ids: map[string]string{}}
	b.admin, err = a.Access.CreateToken(ctx, "ops", access.RoleAdmin)
	require.NoError(t, err)
	b.viewer, err = a.Access.CreateToken(ctx, "qa", access.RoleViewer)
	require.NoError(t, err)

	records := []string{richCall, voicemailCall,
		`{"call_id":"agent-b-1","agent_id":"support","phone_number":"+15550100003","customer_name":"Sam Support","ended_at":"2026-11-21T09:00:00Z","ended_reason":"customer-did-not-answer"}`,
		`{"call_id":"old-1","agent_id":"sales","phone_number":"+15550100004","customer_name":"Olga Old","ended_at":"2026-10-01T09:00:00Z","ended_reason":"customer-busy"}`,
		`{"call_id":"purge-me","agent_id":"sales","phone_number":"+15550100005","customer_name":"Pat Purge","ended_at":"2026-11-20T12:00:00Z","ended_reason":"customer-busy"}`,
		`{"call_id":"deleted-1","agent_id":"sales","phone_number":"+15550100006","customer_name":"Del Deleted","ended_at":"2026-11-20T11:00:00Z","ended_reason":"customer-busy"}`,
	}
	for _, line := range records {
		rec, err := call.ParseRecord([]byte(line))
		require.NoError(t, err)
		res, err := a.Calls.Ingest(ctx, rec)
		require.NoError(t, err)
		b.ids[rec.CallID] = res.ID.String()
	}
	// created_at is ingest time; spread it so that from/to filters have
	// something to tell apart: old-1 is from October.
	_, err = pool.Exec(ctx, `UPDATE calls SET created_at = ended_at`)
	require.NoError(t, err)
	b.waitDone(t, "rich-1")
	require.NoError(t, a.Calls.Erase(ctx, b.ids["purge-me"]))
	require.NoError(t, a.Calls.SoftDelete(ctx, b.ids["deleted-1"]))
	return b
}

// ingestEvidenceCall ingests evidenceCall and waits for its processing.
func (b *testBundle) ingestEvidenceCall(t *testing.T) {
	t.Helper()
	rec, err := call.ParseRecord([]byte(evidenceCall))
	require.NoError(t, err)
	res, err := b.app.Calls.Ingest(context.Background(), rec)
	require.NoError(t, err)
	b.ids[rec.CallID] = res.ID.String()
	b.waitDone(t, rec.CallID)
}

// waitDone waits until the call's post-call processing has finished.
func (b *testBundle) waitDone(t *testing.T, callID string) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := b.app.Calls.Find(context.Background(), callID)
		return err == nil && c.Done
	}, 30*time.Second, 50*time.Millisecond, "call %s never finished", callID)
}
