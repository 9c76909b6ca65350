package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/store"
)

// evidencePlanYAML is planYAML's agent with evidence (mode %[1]s) on
// analysis and QC, success opting out, a demo_day field, and a webhook
// (%[2]s) that lists every field, the pii email too.
const evidencePlanYAML = `
id: sales
analysis:
  prompt: "You review sales calls for ACME."
  evidence: %[1]s
  fields:
    - {name: summary, type: string}
    - {name: outcome, type: enum, values: [agreed, declined, callback]}
    - {name: success, type: boolean, evidence: false}
    - {name: email, type: string, pii: true}
    - {name: demo_day, type: string}
  summary_field: summary
  disposition_field: outcome
  success_field: success
qc:
  prompt: "Judge the agent."
  evidence: %[1]s
  checklist:
    - {id: greeting, description: "Introduced itself", weight: 1}
    - {id: consent, description: "Asked for recording consent", weight: 2, fatal: true}
    - {id: close, description: "Closed politely", weight: 1}
integrations:
  - {name: zapier, type: webhook, url: %[2]q, secret: %[3]q, fields: [summary, outcome, success, email, demo_day]}
`

// The model's answers for conversation(): summary quoted right (with a
// word of speech-to-text noise), outcome and email quoted from nowhere,
// demo_day a paraphrase; QC's close quoted from nowhere.
const (
	evidenceAnalysisAnswer = `{
		"summary": {"quote": "yes I want the demo next week", "value": "Customer wants a demo."},
		"outcome": {"quote": "I agree to buy it now", "value": "agreed"},
		"success": true,
		"email": {"quote": "my email is dana@example.com", "value": "dana@example.com"},
		"demo_day": {"quote": "the customer asked for a demo next week", "value": "next week"}}`
	evidenceQCAnswer = `{
		"greeting": {"quote": "Hi, this is Ava from ACME.", "passed": true},
		"consent": {"quote": "May I record?", "passed": true},
		"close": {"quote": "Thanks so much for your time", "passed": true}}`
)

// TestEvidenceEndToEnd ingests a call for an agent with evidence check and
// require, against a model quoting right, paraphrasing and fabricating, and
// checks the call, its document and the webhook body.
func TestEvidenceEndToEnd(t *testing.T) {
	t.Parallel()
	for _, mode := range []agent.EvidenceMode{agent.EvidenceCheck, agent.EvidenceRequire} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t, true)
			b.llm.SetDefault(func(req *openaitest.Request) openaitest.Reply {
				if containsQC(req) {
					return openaitest.Reply{Content: evidenceQCAnswer}
				}
				return openaitest.Reply{Content: evidenceAnalysisAnswer}
			})
			bodies := webhookReceiver(t)
			plans, err := agent.ParsePlans([]byte(fmt.Sprintf(evidencePlanYAML, mode, bodies.url, webhookTestSecret)))
			require.NoError(t, err)
			_, _, err = store.ApplyPlan(ctx, b.pool, &plans[0])
			require.NoError(t, err)

			res, err := b.enqueuer.Ingest(ctx, conversation())
			require.NoError(t, err)
			c := b.waitDone(t, res.ID)

			require.Equal(t, "Customer wants a demo.", *c.CallSummary, "a verified summary is the call's")
			require.True(t, *c.GeneralSuccess, "success opts out of evidence")
			doc := documentOf(t, b, c)
			a := doc["analysis"].(map[string]any)
			fields, evidence := a["fields"].(map[string]any), a["evidence"].(map[string]any)
			require.Equal(t, []any{"outcome", "email", "demo_day"}, a["unverified"])
			summary := evidence["summary"].(map[string]any)
			require.Equal(t, true, summary["verified"])
			require.Equal(t, float64(1), summary["turn"], "the customer's turn")
			require.Equal(t, false, evidence["email"].(map[string]any)["verified"])
			require.NotContains(t, evidence, "success")
			qc := doc["qc"].(map[string]any)
			items := qc["items"].([]any)
			require.Equal(t, true, items[0].(map[string]any)["verified"])
			require.Equal(t, float64(0), items[0].(map[string]any)["turn"])
			require.Equal(t, false, items[2].(map[string]any)["verified"])
			require.Equal(t, []any{"close"}, qc["unverified"])

			body := bodies.next(t)
			data := body["data"].(map[string]any)
			sent := data["analysis"].(map[string]any)
			sentFields, sentEvidence := sent["fields"].(map[string]any), sent["evidence"].(map[string]any)
			require.Equal(t, []any{"outcome", "email", "demo_day"}, sent["unverified"])
			require.Equal(t, true, sentEvidence["summary"].(map[string]any)["verified"])

			switch mode {
			case agent.EvidenceCheck:
				// Kept and flagged.
				require.Equal(t, "agreed", *c.Disposition)
				require.Equal(t, 10, *c.FinalScore, "check scores the verdicts as given")
				require.Equal(t, "dana@example.com", fields["email"])
				require.NotContains(t, evidence["email"], "withheld")
				require.Equal(t, "agreed", data["disposition"])
				require.Equal(t, "dana@example.com", sentFields["email"])
				require.Equal(t, false, sentEvidence["email"].(map[string]any)["verified"])
			case agent.EvidenceRequire:
				// Withheld: null in the fields, kept on the run for review,
				// never pushed.
				require.Nil(t, c.Disposition, "an unverified disposition field sets no disposition")
				require.Equal(t, 8, *c.FinalScore, "the unverified pass of close earns nothing: round(1 + 9*3/4)")
				for _, name := range []string{"outcome", "email", "demo_day"} {
					require.Contains(t, fields, name)
					require.Nil(t, fields[name], name)
					require.Nil(t, sentFields[name], name)
					require.NotContains(t, sentEvidence, name, "no quote of an unverified value is sent")
				}
				require.Equal(t, "dana@example.com", evidence["email"].(map[string]any)["withheld"])
				require.Equal(t, "Customer wants a demo.", fields["summary"])
				require.Nil(t, data["disposition"])
				raw, err := json.Marshal(body)
				require.NoError(t, err)
				require.NotContains(t, string(raw), "dana@example.com")
				require.NotContains(t, string(raw), "I agree to buy it now")
			}
		})
	}
}

const webhookTestSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// webhookBodies is a verified webhook receiver's URL and what it received.
type webhookBodies struct {
	url    string
	bodies chan map[string]any
}

func webhookReceiver(t *testing.T) *webhookBodies {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(webhookTestSecret)
	require.NoError(t, err)
	w := &webhookBodies{bodies: make(chan map[string]any, 10)}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("verify webhook: %v", err)
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		w.bodies <- m
	}))
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

func (w *webhookBodies) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m := <-w.bodies:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("webhook never delivered")
		return nil
	}
}

// documentOf is the call document of c as JSON decodes it.
func documentOf(t *testing.T, b *testBundle, c *store.Call) map[string]any {
	t.Helper()
	doc, err := calldoc.Build(context.Background(), b.pool, c, calldoc.Options{})
	require.NoError(t, err)
	js, err := json.Marshal(doc)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(js, &m))
	return m
}

// TestEvidenceOffByDefault checks the default: no quote is asked for and
// the document's evidence keys are null.
func TestEvidenceOffByDefault(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	res, err := b.enqueuer.Ingest(context.Background(), conversation())
	require.NoError(t, err)
	c := b.waitDone(t, res.ID)
	for _, req := range b.llm.Requests() {
		require.NotContains(t, string(req.Schema()), `"quote"`)
	}
	doc := documentOf(t, b, c)
	a, qc := doc["analysis"].(map[string]any), doc["qc"].(map[string]any)
	require.Contains(t, a, "evidence")
	require.Nil(t, a["evidence"])
	require.Nil(t, a["unverified"])
	require.Nil(t, qc["unverified"])
	for _, it := range qc["items"].([]any) {
		require.NotContains(t, it, "verified")
		require.NotContains(t, it, "turn")
	}
}
