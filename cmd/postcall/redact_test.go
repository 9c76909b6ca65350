package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis/openaitest"
)

// redactAgents redacts cards, SSNs and emails, and pushes results to a
// webhook (the receiver's URL is appended).
const redactAgents = `
- id: payments
  analysis:
    prompt: "You review payment calls."
    fields:
      - {name: summary, type: string}
      - {name: email, type: string, pii: true}
    summary_field: summary
  qc:
    prompt: "Judge the agent."
    checklist:
      - {id: greeting, description: "Introduced itself"}
  redact: {entities: [credit_card, ssn, email]}
  integrations:
    - {name: hook, type: webhook, secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", include_contact: true, fields: [summary, email], url: `

// secretCall carries a card number (with expiry and CVV), an SSN and an
// email, written and spoken, one split across two turns; CALLID is
// replaced per call.
const secretCall = `{"call_id":"CALLID","agent_id":"payments","ended_at":"2026-11-20T10:00:00Z","ended_reason":"customer-ended-call",` +
	`"phone_number":"+14158675309","duration":120,"transcript":[` +
	`{"role":"agent","text":"Thanks for calling ACME payments, can I have the card number?"},` +
	`{"role":"user","text":"sure it's 4111 1111"},{"role":"user","text":"1111 1111, expiry 12/27, code 737"},` +
	`{"role":"agent","text":"And your social security number?"},{"role":"user","text":"it's 219-09-9999"},` +
	`{"role":"agent","text":"Where should we email the receipt?"},` +
	`{"role":"user","text":"dana.smith@example.com, or spoken, dana dot smith at example dot com"}]}`

// secrets are the sensitive values of secretCall in every form they could
// be stored in.
var secrets = []string{
	"4111 1111", "1111 1111", "4111111111111111", "expiry 12/27", "code 737", "219-09-9999", "219099999",
	"dana.smith@example.com", "dana dot smith", "smith at example", "example dot com",
}

// TestRedactionEndToEnd ingests a call holding a card number, an SSN and an
// email, through the API and through `postcall ingest`, for an agent that
// redacts them, lets the worker analyse it with the fake model and deliver
// it to a webhook, and then checks that none of the values is in the model's
// requests, in any table of the database (River's included), in the logs or
// in the webhook bodies; the caller's phone_number is kept.
func TestRedactionEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	llm := openaitest.NewServer(t)

	var hookMu sync.Mutex
	var hookBodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		hookBodies = append(hookBodies, string(body))
		hookMu.Unlock()
	}))
	t.Cleanup(hook.Close)

	const token = "redact-test-token"
	// Debug logging (not the default) so that every log line the code has
	// is written and checked; private targets so the local receiver is
	// reachable.
	workerEnv := append(append([]string{}, b.environ...),
		"OPENAI_BASE_URL="+llm.URL, "OPENAI_API_KEY="+llm.APIKey, "POSTCALL_HTTP_ADDR=127.0.0.1:0",
		"POSTCALL_LOG_LEVEL=debug", "POSTCALL_API_TOKEN="+token, "POSTCALL_ALLOW_PRIVATE_TARGETS=1")
	res := b.run(t, ctx, "", nil, "agents", "apply", b.file(t, "a.yaml", redactAgents+hook.URL+"}\n"))
	require.Zero(t, res.code, res.stderr)

	var logs strings.Builder
	// An invalid line holding the secrets, wrong in the very turns that
	// hold them: the rejection must not echo them.
	bad := strings.NewReplacer("CALLID", "cli-bad", `"2026-11-20T10:00:00Z"`, `"yesterday"`,
		`{"role":"user","text":"sure`, `{"role":"narrator","text":"sure`, `"role":"user","text":"it's 219`, `"role":"user","text":["it's 219`,
		`9999"}`, `9999"]}`).Replace(secretCall)
	res = b.run(t, ctx, strings.Replace(secretCall, "CALLID", "cli-1", 1)+"\n"+bad+"\n", []string{"POSTCALL_LOG_LEVEL=debug"}, "ingest")
	require.Equal(t, 1, res.code, "the bad line is rejected")
	require.Contains(t, res.stderr, "line 2: rejected")
	require.Contains(t, res.stderr, `transcript[1].role: "narrator" must be`)
	require.Contains(t, res.stderr, "transcript[4].text: must be a string, got an array")
	logs.WriteString(res.stdout + res.stderr)

	w := startHTTPWorker(t, workerEnv, token)
	call := func(method, path, body string) (int, string) {
		status, data := w.call(t, method, path, body)
		return status, string(data)
	}
	status, body := call("POST", "/v1/calls", strings.Replace(secretCall, "CALLID", "api-1", 1))
	require.Equal(t, http.StatusAccepted, status, body)
	status, body = call("POST", "/v1/calls", bad)
	require.Equal(t, http.StatusBadRequest, status, body)
	logs.WriteString(body)

	for _, id := range []string{"api-1", "cli-1"} {
		var doc struct {
			Done         bool                      `json:"done"`
			PhoneNumber  string                    `json:"phone_number"`
			Redaction    map[string]int            `json:"redaction"`
			Transcript   []struct{ Text string }   `json:"transcript"`
			Integrations []struct{ Status string } `json:"integrations"`
		}
		require.Eventually(t, func() bool {
			status, body := call("GET", "/v1/calls/"+id, "")
			require.Equal(t, http.StatusOK, status, body)
			require.NoError(t, json.Unmarshal([]byte(body), &doc))
			return doc.Done && len(doc.Integrations) == 1 && doc.Integrations[0].Status == "delivered"
		}, 30*time.Second, 50*time.Millisecond, "call %s was never processed and delivered", id)
		require.Equal(t, map[string]int{"credit_card": 1, "ssn": 1, "email": 2}, doc.Redaction, id)
		require.Equal(t, "+14158675309", doc.PhoneNumber, "the caller's number is the purge's business")
		require.Equal(t, "sure it's [CREDIT_CARD]", doc.Transcript[1].Text)
		require.Equal(t, "[CREDIT_CARD], expiry [CREDIT_CARD], code [CREDIT_CARD]", doc.Transcript[2].Text)
		require.Equal(t, "it's [SSN]", doc.Transcript[4].Text)
		require.Equal(t, "[EMAIL], or spoken, [EMAIL]", doc.Transcript[6].Text)
	}

	w.shutdown(t)
	logs.WriteString(w.stdout.String() + w.stderr.String())

	requests := llm.Requests()
	require.Len(t, requests, 4, "analysis and QC of two calls")
	places := map[string]string{"logs": logs.String()}
	for i, r := range requests {
		require.Contains(t, string(r.Body), "[CREDIT_CARD]", "the model sees the placeholders")
		places["model request "+string(rune('0'+i))] = string(r.Body)
	}
	hookMu.Lock()
	require.Len(t, hookBodies, 2)
	for i, body := range hookBodies {
		places["webhook body "+string(rune('0'+i))] = body
	}
	hookMu.Unlock()

	// Every row of every table of the test schema, River's job rows
	// included, as JSON text.
	var schema string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema))
	rows, err := b.pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'`, schema)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	require.Contains(t, tables, "river_job")
	require.Contains(t, tables, "call_redactions")
	for _, table := range tables {
		var dump string
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT coalesce(string_agg(row_to_json(t)::text, E'\n'), '') FROM `+table+` t`).Scan(&dump))
		places["table "+table] = dump
	}
	require.Contains(t, places["table calls"], "[SSN]")
	require.Contains(t, places["table river_job"], "postcall.deliver", "River's rows were dumped")

	for where, text := range places {
		for _, s := range secrets {
			require.NotContains(t, text, s, "%s holds %q", where, s)
		}
	}
}
