package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis/openaitest"
)

// TestWorkerServesAPIAndMetrics runs the worker command with a token and the
// fake OpenAI server, posts a call over HTTP, waits for it through the API,
// and reads the metrics the wiring in app.go and worker.go feeds.
func TestWorkerServesAPIAndMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	llm := openaitest.NewServer(t)
	const token = "worker-test-token"
	workerEnv := append(append([]string{}, b.environ...),
		"OPENAI_BASE_URL="+llm.URL, "OPENAI_API_KEY="+llm.APIKey, "POSTCALL_HTTP_ADDR=127.0.0.1:0",
		"POSTCALL_LOG_LEVEL=info", "POSTCALL_API_TOKEN="+token)
	require.Zero(t, b.run(t, ctx, "", nil, "agents", "apply", b.file(t, "a.yaml", testAgents)).code)

	w := startHTTPWorker(t, workerEnv, token)
	call := func(method, path, body string) (int, []byte) { return w.call(t, method, path, body) }

	status, body := call("POST", "/v1/calls", goodCall)
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	require.Eventually(t, func() bool {
		status, body := call("GET", "/v1/calls/c-1", "")
		require.Equal(t, http.StatusOK, status, "%s", body)
		var doc struct {
			Done bool `json:"done"`
		}
		require.NoError(t, json.Unmarshal(body, &doc))
		return doc.Done
	}, 30*time.Second, 50*time.Millisecond, "the posted call was never processed")

	var metrics string
	require.Eventually(t, func() bool {
		status, body := call("GET", "/metrics", "")
		require.Equal(t, http.StatusOK, status)
		metrics = string(body)
		// Job events arrive just after each completion is committed, so
		// either job's may come last.
		return strings.Contains(metrics, `postcall_jobs_total{kind="postcall.qc",outcome="completed",queue="qc"} 1`) &&
			strings.Contains(metrics, `postcall_jobs_total{kind="postcall.analysis",outcome="completed",queue="analysis"} 1`)
	}, 10*time.Second, 50*time.Millisecond, "no job metrics")
	for _, want := range []string{
		`postcall_llm_requests_total{code="200",model="gpt-4.1-mini"} 2`,
		`postcall_queue_jobs{queue="analysis",state="available"} 0`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		require.Contains(t, metrics, want)
	}
	status, _ = call("GET", "/healthz", "")
	require.Equal(t, http.StatusOK, status)

	// Erasure and soft delete go through the retention service.
	status, body = call("POST", "/v1/calls/c-1/purge", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	status, body = call("GET", "/v1/calls/c-1", "")
	require.Equal(t, http.StatusOK, status)
	var purged struct {
		IsPurged    bool    `json:"is_purged"`
		PhoneNumber *string `json:"phone_number"`
		Transcript  []any   `json:"transcript"`
	}
	require.NoError(t, json.Unmarshal(body, &purged))
	require.True(t, purged.IsPurged)
	require.Nil(t, purged.PhoneNumber)
	require.Nil(t, purged.Transcript)
	status, body = call("DELETE", "/v1/calls/c-1", "")
	require.Equal(t, http.StatusNoContent, status, "%s", body)
	status, body = call("GET", "/v1/calls?include_deleted=true", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), `"deleted_at":"`)

	w.shutdown(t)
	require.NotContains(t, w.stderr.String(), token, "no token in logs")
	require.NotContains(t, w.stderr.String(), "+15550100001", "no phone numbers in logs")
}
