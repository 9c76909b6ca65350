package analysis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
)

// TestBatchLineBodyIsTheLiveBody: a batch input line carries byte for byte
// the body a live request sends, prompt_cache_key, retention and
// temperature included.
func TestBatchLineBodyIsTheLiveBody(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	a, _ := newAnalyzer(t, srv)
	ctx := context.Background()
	plan, in := testPlan(), testInput("Dana", "Yes")

	for _, kind := range []string{analysis.KindAnalysis, analysis.KindQC} {
		req, err := a.FirstRequest(plan, 3, kind, in)
		require.NoError(t, err)
		line, err := analysis.BatchLine("42", req)
		require.NoError(t, err)
		require.NotContains(t, string(line), "\n")
		var got struct {
			CustomID string          `json:"custom_id"`
			Method   string          `json:"method"`
			URL      string          `json:"url"`
			Body     json.RawMessage `json:"body"`
		}
		require.NoError(t, json.Unmarshal(line, &got))
		require.Equal(t, "42", got.CustomID)
		require.Equal(t, http.MethodPost, got.Method)
		require.Equal(t, "/v1/chat/completions", got.URL)

		if kind == analysis.KindAnalysis {
			_, err = a.Analyze(ctx, plan, 3, in)
		} else {
			_, err = a.QC(ctx, plan, 3, in)
		}
		require.NoError(t, err)
		reqs := srv.Requests()
		live := reqs[len(reqs)-1]
		var compact bytes.Buffer
		require.NoError(t, json.Compact(&compact, live.Body))
		require.Equal(t, compact.String(), string(got.Body), kind)
		require.Contains(t, string(got.Body), `"prompt_cache_key":"postcall-`)
		require.Contains(t, string(got.Body), `"prompt_cache_retention":"24h"`)
		require.Contains(t, string(got.Body), `"temperature":0`)
	}
}

// batchOf uploads lines and creates a batch over them.
func batchOf(t *testing.T, api analysis.BatchAPI, lines ...[]byte) *analysis.Batch {
	t.Helper()
	ctx := context.Background()
	fileID, err := api.UploadBatchFile(ctx, "test.jsonl", append(bytes.Join(lines, []byte("\n")), '\n'))
	require.NoError(t, err)
	b, err := api.CreateBatch(ctx, fileID, map[string]string{"postcall_batch": "1"})
	require.NoError(t, err)
	require.Equal(t, analysis.BatchValidating, b.Status)
	require.Equal(t, fileID, b.InputFileID)
	return b
}

// results reads a file's results.
func results(t *testing.T, api analysis.BatchAPI, fileID string) map[string]analysis.BatchResult {
	t.Helper()
	require.NotEmpty(t, fileID)
	body, err := api.FileContent(context.Background(), fileID)
	require.NoError(t, err)
	defer body.Close()
	out := map[string]analysis.BatchResult{}
	require.NoError(t, analysis.ReadBatchResults(body, func(r analysis.BatchResult) error {
		out[r.CustomID] = r
		return nil
	}))
	return out
}

func TestBatchAPIAgainstTheWireFormat(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	c, _ := newClient(t, srv, analysis.OpenAIConfig{})
	a := &analysis.Analyzer{Model: c, DefaultModel: "gpt-4.1-mini"}
	ctx := context.Background()
	req, err := a.FirstRequest(testPlan(), 1, analysis.KindAnalysis, testInput("Dana", "Yes"))
	require.NoError(t, err)
	line := func(id string) []byte {
		l, err := analysis.BatchLine(id, req)
		require.NoError(t, err)
		return l
	}

	t.Run("completed with an error line", func(t *testing.T) {
		srv.ScriptBatches(openaitest.BatchScript{Polls: 1, Errors: map[int]openaitest.Responder{1: openaitest.ServerError()}})
		b := batchOf(t, c, line("1"), line("2"), line("3"))
		got, err := c.RetrieveBatch(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, analysis.BatchInProgress, got.Status)
		require.False(t, got.Status.Ended())
		got, err = c.RetrieveBatch(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, analysis.BatchCompleted, got.Status)
		require.True(t, got.Status.Ended())
		require.Equal(t, 3, got.Total)
		require.Equal(t, 2, got.Completed)
		require.Equal(t, 1, got.Failed)

		out := results(t, c, got.OutputFileID)
		require.Len(t, out, 2)
		r := out["1"]
		require.Nil(t, r.Err)
		require.Equal(t, analysis.TierBatch, r.Response.ServiceTier)
		require.Equal(t, "stop", r.Response.FinishReason)
		require.Positive(t, r.Response.Usage.Prompt)
		require.Positive(t, r.Response.Usage.Completion)
		require.NotEmpty(t, r.Response.RequestID)
		require.Contains(t, r.Response.Content, `"summary"`)

		errs := results(t, c, got.ErrorFileID)
		require.Len(t, errs, 1)
		require.Nil(t, errs["2"].Response)
		require.Equal(t, 500, errs["2"].Err.StatusCode)
		require.Equal(t, "server_error", errs["2"].Err.Code)
		require.True(t, errs["2"].Err.Transient)
		require.False(t, errs["2"].Unsent())

		found, err := c.FindBatch(ctx, b.InputFileID)
		require.NoError(t, err)
		require.Equal(t, b.ID, found.ID)
		none, err := c.FindBatch(ctx, "file-nobody")
		require.NoError(t, err)
		require.Nil(t, none)
	})

	t.Run("expired with partial output", func(t *testing.T) {
		srv.ScriptBatches(openaitest.BatchScript{Status: "expired", Answered: 1})
		b := batchOf(t, c, line("1"), line("2"))
		got, err := c.RetrieveBatch(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, analysis.BatchExpired, got.Status)
		require.Len(t, results(t, c, got.OutputFileID), 1)
		errs := results(t, c, got.ErrorFileID)
		require.Equal(t, "batch_expired", errs["2"].Err.Code)
		require.True(t, errs["2"].Unsent())
	})

	t.Run("failed", func(t *testing.T) {
		srv.ScriptBatches(openaitest.BatchScript{Status: "failed", FailReason: "model not available for batch"})
		b := batchOf(t, c, line("1"))
		got, err := c.RetrieveBatch(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, analysis.BatchFailed, got.Status)
		require.Empty(t, got.OutputFileID)
		require.Empty(t, got.ErrorFileID)
		require.Equal(t, []string{"invalid_request: model not available for batch"}, got.Errors)
	})

	t.Run("an invalid input file fails the batch", func(t *testing.T) {
		b := batchOf(t, c, line("1"), line("1"))
		got, err := c.RetrieveBatch(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, analysis.BatchFailed, got.Status)
		require.Contains(t, got.Errors[0], "duplicate_custom_id")
	})
}

func TestReadBatchResultsRejectsBadLines(t *testing.T) {
	t.Parallel()
	err := analysis.ReadBatchResults(strings.NewReader(`{"custom_id": "1", "response": null, "error": null}`+"\n"+`{"no": "id"}`),
		func(analysis.BatchResult) error { return nil })
	require.ErrorContains(t, err, "line 2: no custom_id")
	err = analysis.ReadBatchResults(strings.NewReader(`{"custom_id": "1"`), func(analysis.BatchResult) error { return nil })
	require.ErrorContains(t, err, "line 1")
	var seen []analysis.BatchResult
	require.NoError(t, analysis.ReadBatchResults(io.LimitReader(strings.NewReader(""), 0), func(r analysis.BatchResult) error {
		seen = append(seen, r)
		return nil
	}))
	require.Empty(t, seen)
}

// TestRunStartsFromABatchAnswer: a run given its first answer sends
// nothing when the answer is valid, and only the repair, live, when it is
// not; the first record is the batch request.
func TestRunStartsFromABatchAnswer(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	a, _ := newAnalyzer(t, srv)
	ctx := context.Background()
	plan := testPlan()
	answer := func(content string) *analysis.Answered {
		return &analysis.Answered{MaxTokens: 321, Response: &analysis.Response{
			Content: content, Model: "gpt-4.1-mini-2025-04-14", FinishReason: "stop", ServiceTier: analysis.TierBatch,
			Usage: analysis.Usage{Prompt: 900, Completion: 60}, RequestID: "req_batch1",
		}}
	}
	valid := `{"summary": "s", "outcome": "agreed", "success": true, "callback_date": null, "budget": null, "seats": null, "email": null}`

	in := testInput("Dana", "Yes")
	in.Answered = answer(valid)
	res, err := a.Analyze(ctx, plan, 1, in)
	require.NoError(t, err)
	require.Equal(t, 0, srv.Len(), "a valid batch answer sends nothing")
	require.Equal(t, "s", res.Fields["summary"])
	require.Len(t, res.Requests, 1)
	require.Equal(t, analysis.RequestRecord{Purpose: analysis.PurposeInitial, Model: "gpt-4.1-mini-2025-04-14", MaxTokens: 321,
		FinishReason: "stop", ServiceTier: analysis.TierBatch, Usage: analysis.Usage{Prompt: 900, Completion: 60},
		RequestID: "req_batch1"}, res.Requests[0])

	in.Answered = answer(`{"summary": "s"}`)
	res, err = a.Analyze(ctx, plan, 1, in)
	require.NoError(t, err)
	require.Equal(t, 1, srv.Len(), "an invalid batch answer is repaired live")
	repair := srv.Requests()[0]
	require.Empty(t, repair.Batch)
	require.Len(t, repair.Messages, 4)
	require.Equal(t, `{"summary": "s"}`, repair.Messages[2].Content)
	require.Len(t, res.Requests, 2)
	require.Equal(t, analysis.TierBatch, res.Requests[0].ServiceTier)
	require.Equal(t, analysis.PurposeRepair, res.Requests[1].Purpose)
	require.Equal(t, analysis.TierDefault, res.Requests[1].ServiceTier)
}
