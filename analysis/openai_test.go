package analysis_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
)

func simpleRequest(model string) analysis.Request {
	return analysis.Request{
		Model:    model,
		Messages: []analysis.Message{{Role: analysis.RoleUser, Content: "Say ok."}},
	}
}

func TestRetryAfterHeaderHonoured(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		wait time.Duration
	}{
		{"retry-after seconds", 3 * time.Second},
		{"retry-after-ms", 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t)
			srv.Script(openaitest.RateLimited(tc.wait), openaitest.Valid())
			c, clock := newClient(t, srv, analysis.OpenAIConfig{})

			resp, err := c.Complete(context.Background(), simpleRequest("gpt-4.1-mini"))
			require.NoError(t, err)
			require.Equal(t, "ok", resp.Content)
			require.Equal(t, 2, srv.Len())
			require.Equal(t, []time.Duration{tc.wait}, clock.Sleeps())
		})
	}
}

func TestInsufficientQuotaIsNotRetried(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.SetDefault(openaitest.InsufficientQuota())
	c, clock := newClient(t, srv, analysis.OpenAIConfig{})

	_, err := c.Complete(context.Background(), simpleRequest("gpt-4.1-mini"))
	var apiErr *analysis.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 429, apiErr.StatusCode)
	require.Equal(t, "insufficient_quota", apiErr.Code)
	require.Equal(t, 1, apiErr.Attempts)
	require.True(t, analysis.IsPermanent(err))
	_, transient := analysis.RetryAfter(err)
	require.False(t, transient)
	require.Equal(t, 1, srv.Len())
	require.Empty(t, clock.Sleeps())
	require.NotContains(t, err.Error(), srv.APIKey)
	require.NotContains(t, err.Error(), "Say ok.")
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		client func(*openaitest.Server) analysis.OpenAIConfig
		script openaitest.Responder
		status int
	}{
		{"wrong key", func(*openaitest.Server) analysis.OpenAIConfig { return analysis.OpenAIConfig{APIKey: "sk-wrong"} }, nil, 401},
		{"bad request", func(*openaitest.Server) analysis.OpenAIConfig { return analysis.OpenAIConfig{} },
			openaitest.Status(400, "invalid_request_error", "context_length_exceeded", "too long"), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t)
			if tc.script != nil {
				srv.Script(tc.script)
			}
			c, _ := newClient(t, srv, tc.client(srv))
			_, err := c.Complete(context.Background(), simpleRequest("gpt-4.1-mini"))
			var apiErr *analysis.APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, tc.status, apiErr.StatusCode)
			require.True(t, analysis.IsPermanent(err))
			require.Equal(t, 1, srv.Len())
			require.NotContains(t, err.Error(), "sk-wrong")
		})
	}
}

func TestServerErrorRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.ServerError(), openaitest.ServerError(), openaitest.Valid())
	var obs observations
	c, clock := newClient(t, srv, analysis.OpenAIConfig{Observer: obs.observe})

	resp, err := c.Complete(context.Background(), simpleRequest("gpt-4.1-mini"))
	require.NoError(t, err)
	require.Equal(t, "ok", resp.Content)
	require.Equal(t, 3, srv.Len())

	sleeps := clock.Sleeps()
	require.Len(t, sleeps, 2)
	// Exponential from 1 s with jitter between half and all of it.
	require.GreaterOrEqual(t, sleeps[0], 500*time.Millisecond)
	require.LessOrEqual(t, sleeps[0], time.Second)
	require.GreaterOrEqual(t, sleeps[1], time.Second)
	require.LessOrEqual(t, sleeps[1], 2*time.Second)

	seen := obs.all()
	require.Len(t, seen, 3)
	require.Equal(t, []int{500, 500, 200}, []int{seen[0].StatusCode, seen[1].StatusCode, seen[2].StatusCode})
	require.Equal(t, []bool{true, true, false}, []bool{seen[0].Retrying, seen[1].Retrying, seen[2].Retrying})
	require.Equal(t, "server_error", seen[0].ErrorCode)
	require.Equal(t, 3, seen[2].Attempt)
	require.Positive(t, seen[2].Usage.Prompt)
}

// flakyDoer fails the first n requests with a network error.
type flakyDoer struct {
	fails atomic.Int32
}

func (d *flakyDoer) Do(req *http.Request) (*http.Response, error) {
	if d.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	return http.DefaultClient.Do(req)
}

func TestNetworkErrorRetried(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	doer := &flakyDoer{}
	doer.fails.Store(1)
	c, clock := newClient(t, srv, analysis.OpenAIConfig{HTTPClient: doer})

	resp, err := c.Complete(context.Background(), simpleRequest("gpt-4.1-mini"))
	require.NoError(t, err)
	require.Equal(t, "ok", resp.Content)
	require.Equal(t, 1, srv.Len())
	require.Len(t, clock.Sleeps(), 1)
}

func TestAttemptsExhaustedIsTransient(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.SetDefault(openaitest.RateLimited(7 * time.Second))
	c, clock := newClient(t, srv, analysis.OpenAIConfig{MaxAttempts: 3})
	a := &analysis.Analyzer{Model: c}

	res, err := a.Analyze(context.Background(), testPlan(), 1, testInput("Dana", "Yes"))
	wait, transient := analysis.RetryAfter(err)
	require.True(t, transient)
	require.Equal(t, 7*time.Second, wait)
	require.False(t, analysis.IsPermanent(err))
	var apiErr *analysis.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 3, apiErr.Attempts)
	require.Equal(t, "rate_limit_exceeded", apiErr.Code)
	require.Equal(t, 3, srv.Len())
	require.Equal(t, []time.Duration{7 * time.Second, 7 * time.Second}, clock.Sleeps())
	require.Len(t, res.Requests, 1)
	require.Contains(t, res.Requests[0].Err, "status 429")
}

func TestLongRetryAfterEndsTheCall(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.SetDefault(openaitest.RateLimited(2 * time.Minute))
	c, clock := newClient(t, srv, analysis.OpenAIConfig{})

	_, err := c.Complete(context.Background(), simpleRequest("gpt-4.1-mini"))
	wait, transient := analysis.RetryAfter(err)
	require.True(t, transient)
	require.Equal(t, 2*time.Minute, wait, "the caller snoozes instead of holding a worker")
	require.Equal(t, 1, srv.Len())
	require.Empty(t, clock.Sleeps())
}

func TestContextCancellationOnSlowAnswer(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.SetDefault(openaitest.Slow(30*time.Second, openaitest.Valid()))
	c, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: srv.URL, APIKey: srv.APIKey})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Complete(ctx, simpleRequest("gpt-4.1-mini"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, 1, srv.Len(), "a cancelled request is not retried")
	_, transient := analysis.RetryAfter(err)
	require.False(t, transient)
	require.False(t, analysis.IsPermanent(err))
}

func TestUsageParsing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		usage string
		want  analysis.Usage
	}{
		{"openai cached tokens", `{"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
			"prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0}}`,
			analysis.Usage{Prompt: 2006, Completion: 300, CachedRead: 1920}},
		{"no details", `{"prompt_tokens": 10, "completion_tokens": 5}`, analysis.Usage{Prompt: 10, Completion: 5}},
		{"cache write tokens (OpenRouter)", `{"prompt_tokens": 3000, "completion_tokens": 20,
			"prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 2900}}`,
			analysis.Usage{Prompt: 3000, Completion: 20, CacheCreated: 2900}},
		{"anthropic style", `{"prompt_tokens": 3000, "completion_tokens": 20,
			"cache_creation_input_tokens": 100, "cache_read_input_tokens": 2800}`,
			analysis.Usage{Prompt: 3000, Completion: 20, CachedRead: 2800, CacheCreated: 100}},
		{"deepseek style", `{"prompt_tokens": 1500, "completion_tokens": 40,
			"prompt_cache_hit_tokens": 1280, "prompt_cache_miss_tokens": 220}`,
			analysis.Usage{Prompt: 1500, Completion: 40, CachedRead: 1280}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t)
			srv.Script(func(*openaitest.Request) openaitest.Reply {
				return openaitest.Reply{Content: "ok", Usage: json.RawMessage(tc.usage), Model: "gpt-4.1-mini-2025-04-14",
					Header: http.Header{"X-Request-Id": {"req_abc"}}}
			})
			c, _ := newClient(t, srv, analysis.OpenAIConfig{})
			resp, err := c.Complete(context.Background(), simpleRequest("gpt-4.1-mini"))
			require.NoError(t, err)
			require.Equal(t, tc.want, resp.Usage)
			require.Equal(t, tc.want.Prompt-tc.want.CachedRead, resp.Usage.FreshPrompt())
			require.Equal(t, "gpt-4.1-mini-2025-04-14", resp.Model, "the model as answered")
			require.Equal(t, "req_abc", resp.RequestID)
		})
	}
}

// TestCachedTokensFromEmulatedCache measures what the static-prefix rule
// buys: with a plan whose static part passes OpenAI's 1024-token minimum,
// the second call of the same plan reads the prefix from the cache.
func TestCachedTokensFromEmulatedCache(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t, openaitest.WithCacheEmulation())
	a, _ := newAnalyzer(t, srv)
	plan := testPlan()
	plan.Analysis.Prompt = strings.Repeat("Judge the call carefully and consistently. ", 120) // ~5 KB of instructions

	first, err := a.Analyze(context.Background(), plan, 1, testInput("Dana", "Yes"))
	require.NoError(t, err)
	second, err := a.Analyze(context.Background(), plan, 1, testInput("Eli", "No, thank you."))
	require.NoError(t, err)

	require.Zero(t, first.Requests[0].Usage.CachedRead, "nothing is cached before the first request")
	u := second.Requests[0].Usage
	require.GreaterOrEqual(t, u.CachedRead, 1024)
	require.Zero(t, u.CachedRead%128)
	require.Less(t, u.CachedRead, u.Prompt, "the per-call part is not cached")
	t.Logf("second call: %d prompt tokens, %d cached (%.0f%%)", u.Prompt, u.CachedRead, 100*float64(u.CachedRead)/float64(u.Prompt))

	// Another plan version has another cache key: no hit.
	third, err := a.Analyze(context.Background(), plan, 2, testInput("Eli", "No, thank you."))
	require.NoError(t, err)
	require.Zero(t, third.Requests[0].Usage.CachedRead)
}

func TestRPMLimiterWaits(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	var mu sync.Mutex
	var waits []time.Duration
	c, clock := newClient(t, srv, analysis.OpenAIConfig{RPM: 60, Observer: func(o analysis.Observation) {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, o.LimitWait)
	}})

	for range 3 {
		_, err := c.Complete(context.Background(), simpleRequest("gpt-4.1-mini"))
		require.NoError(t, err)
	}
	// 60 RPM = one request per second, burst one: the second and third
	// wait a second each on the fake clock.
	require.Equal(t, []time.Duration{time.Second, time.Second}, clock.Sleeps())
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []time.Duration{0, time.Second, time.Second}, waits)
}

func TestTPMLimiterChargesPromptAndMaxTokens(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	// 6000 TPM = 100 tokens per second, bucket of 6000.
	c, clock := newClient(t, srv, analysis.OpenAIConfig{TPM: 6000})
	req := simpleRequest("gpt-4.1-mini")
	req.MaxTokens = 4000
	charge := analysis.EstimateTokens(req) + req.MaxTokens

	_, err := c.Complete(context.Background(), req)
	require.NoError(t, err)
	require.Empty(t, clock.Sleeps(), "the first request fits the full bucket")
	_, err = c.Complete(context.Background(), req)
	require.NoError(t, err)
	// The bucket holds 6000-charge; the second needs charge: it waits for
	// the missing tokens at 100 per second.
	missing := charge - (6000 - charge)
	require.Equal(t, []time.Duration{time.Duration(missing) * 10 * time.Millisecond}, clock.Sleeps())
}

func TestConcurrencyCap(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	var inFlight, most atomic.Int32
	srv.SetDefault(func(req *openaitest.Request) openaitest.Reply {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		return openaitest.Valid()(req)
	})
	c, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: srv.URL, APIKey: srv.APIKey, Concurrency: 2, RPM: -1, TPM: -1})
	require.NoError(t, err)

	completeAtOnce(t, c, 6)
	require.Equal(t, 6, srv.Len())
	require.Equal(t, int32(2), most.Load())
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg   analysis.OpenAIConfig
		field string
	}{
		{analysis.OpenAIConfig{}, "APIKey"},
		{analysis.OpenAIConfig{BaseURL: "localhost:11434"}, "BaseURL"},
		{analysis.OpenAIConfig{APIKey: "k", RPM: -5}, "RPM"},
		{analysis.OpenAIConfig{APIKey: "k", TPM: -2}, "TPM"},
		{analysis.OpenAIConfig{APIKey: "k", Concurrency: -3}, "Concurrency"},
		{analysis.OpenAIConfig{APIKey: "k", MaxAttempts: -1}, "MaxAttempts"},
		{analysis.OpenAIConfig{APIKey: "k", MaxRetryWait: -time.Second}, "MaxRetryWait"},
	} {
		_, err := analysis.NewOpenAI(tc.cfg)
		require.ErrorContains(t, err, tc.field+":")
	}
	// A local endpoint needs no key.
	_, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: "http://127.0.0.1:11434/v1"})
	require.NoError(t, err)
}

func TestRequestValidation(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	c, _ := newClient(t, srv, analysis.OpenAIConfig{})
	_, err := c.Complete(context.Background(), analysis.Request{Model: "m"})
	require.ErrorContains(t, err, "messages")
	_, err = c.Complete(context.Background(), analysis.Request{Messages: []analysis.Message{{Role: "user", Content: "x"}}})
	require.ErrorContains(t, err, "model")
	require.Zero(t, srv.Len())
}

func TestRequestRefusedByClientLibraryIsPermanent(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	c, clock := newClient(t, srv, analysis.OpenAIConfig{})
	// go-openai rejects gpt-6 models before sending when max_tokens or a
	// temperature is set; they go out with max_completion_tokens only.
	req := simpleRequest("gpt-6-sol")
	req.MaxTokens = 100
	_, err := c.Complete(context.Background(), req)
	require.NoError(t, err)
	got := srv.Requests()[0]
	require.NotContains(t, got.Fields, "temperature")
	require.Equal(t, 100, *got.MaxCompletionTokens)

	// A legacy completions model is refused by go-openai before sending;
	// it must not be retried as if it were a network error.
	_, err = c.Complete(context.Background(), simpleRequest("text-davinci-003"))
	require.Error(t, err)
	require.True(t, analysis.IsPermanent(err), "%v", err)
	require.Empty(t, clock.Sleeps())
	require.Equal(t, 1, srv.Len())
}
