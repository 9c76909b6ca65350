package openaitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis/openaitest"
)

type usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

type completion struct {
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

// post sends a raw chat completion request.
func post(t *testing.T, ctx context.Context, srv *openaitest.Server, key string, body any) (*http.Response, completion) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/chat/completions", bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var c completion
	_ = json.NewDecoder(resp.Body).Decode(&c)
	return resp, c
}

func chat(key, system, user string) map[string]any {
	body := map[string]any{
		"model": "gpt-4.1-mini",
		"messages": []map[string]string{
			{"role": "system", "content": system},
			{"role": "user", "content": user},
		},
	}
	if key != "" {
		body["prompt_cache_key"] = key
	}
	return body
}

func TestWireFormatAndRecording(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	schema := json.RawMessage(`{"type":"object","properties":{"n":{"type":["integer","null"]},"s":{"type":"string","enum":["a","b"]}},"required":["n","s"],"additionalProperties":false}`)
	body := chat("k1", "sys", "hello")
	body["temperature"] = 0
	body["response_format"] = map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "x", "strict": true, "schema": schema}}

	resp, c := post(t, context.Background(), srv, srv.APIKey, body)
	require.Equal(t, 200, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("x-request-id"))
	require.Equal(t, "chat.completion", c.Object)
	require.Equal(t, "gpt-4.1-mini", c.Model)
	require.JSONEq(t, `{"n": 1, "s": "a"}`, c.Choices[0].Message.Content)
	require.Equal(t, "stop", c.Choices[0].FinishReason)

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.Equal(t, 200, r.Status)
	require.Equal(t, "k1", *r.PromptCacheKey)
	require.Nil(t, r.PromptCacheRetention)
	require.Equal(t, 0.0, *r.Temperature)
	require.JSONEq(t, string(schema), string(r.Schema()))
	require.Equal(t, openaitest.Tokens(r.PromptText()), c.Usage.PromptTokens)
}

func TestRejectsWhatOpenAIRejects(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	ctx := context.Background()

	resp, _ := post(t, ctx, srv, "sk-wrong", chat("", "s", "u"))
	require.Equal(t, 401, resp.StatusCode)

	loose := chat("", "s", "u")
	loose["response_format"] = map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "x", "strict": true,
		"schema": json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"required":["a"],"additionalProperties":false}`)}}
	resp, _ = post(t, ctx, srv, srv.APIKey, loose)
	require.Equal(t, 400, resp.StatusCode, "strict mode needs every property required")

	open := chat("", "s", "u")
	open["response_format"] = map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "x", "strict": true,
		"schema": json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`)}}
	resp, _ = post(t, ctx, srv, srv.APIKey, open)
	require.Equal(t, 400, resp.StatusCode, "strict mode needs additionalProperties false")

	require.Equal(t, 3, srv.Len(), "rejected requests are recorded too")
}

func TestCacheEmulation(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.WithCacheEmulation())
	ctx := context.Background()
	long := strings.Repeat("s", 4*1500) // 1500 tokens of static system text
	cached := func(key, system, user string) (int, int) {
		_, c := post(t, ctx, srv, srv.APIKey, chat(key, system, user))
		return c.Usage.PromptTokens, c.Usage.PromptTokensDetails.CachedTokens
	}

	_, hit := cached("k", long, "call one")
	require.Zero(t, hit, "first request: nothing cached yet")
	prompt, hit := cached("k", long, "call two")
	// Shared: "\nsystem\n" + 6000 bytes + "\nuser\ncall " = 6019 bytes = 1504
	// tokens, rounded down to 128s = 1408.
	require.Equal(t, 1408, hit)
	require.Less(t, hit, prompt)

	_, hit = cached("other", long, "call two")
	require.Zero(t, hit, "another key is another cache")

	short := strings.Repeat("s", 4*900)
	cached("k2", short, "call one")
	_, hit = cached("k2", short, "call two")
	require.Zero(t, hit, "prompts under 1024 tokens are never cached")

	// A failed request does not fill the cache.
	srv.Script(openaitest.ServerError())
	cached("k3", long, "call one")
	_, hit = cached("k3", long, "call two")
	require.Zero(t, hit)
}

func TestSlowRespectsClientCancellation(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.Slow(time.Minute, openaitest.Valid()))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	b, _ := json.Marshal(chat("", "s", "u"))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/chat/completions", bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+srv.APIKey)
	start := time.Now()
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 10*time.Second)
	// The server's handler returns too (Close in Cleanup would hang
	// otherwise).
}

func TestScriptThenDefaultConcurrently(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.ServerError(), openaitest.ServerError())
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range 10 {
		wg.Go(func() {
			resp, _ := post(t, context.Background(), srv, srv.APIKey, chat("", "s", "u"))
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, map[int]int{500: 2, 200: 8}, statuses)
	require.Equal(t, 10, srv.Len())
}
