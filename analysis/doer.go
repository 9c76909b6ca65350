package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// maxResponseBytes bounds how much of an answer the doer buffers. A
// structured answer of a few thousand tokens is a few tens of KB.
const maxResponseBytes = 16 << 20

// exchange carries one HTTP attempt's extra request fields to the doer and
// the raw answer back. go-openai v1.43 has no prompt_cache_key or
// prompt_cache_retention, drops temperature 0 (omitempty) and hides response
// headers of failed requests, so the doer fills those gaps.
type exchange struct {
	// In: fields added to the JSON body.
	temperatureZero bool
	cacheKey        string
	cacheRetention  string

	// Out: whether the request left, and the answer as received.
	sent       bool
	statusCode int
	header     http.Header
	body       []byte
}

type exchangeKey struct{}

func withExchange(ctx context.Context, ex *exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, ex)
}

// bodyRewriter is the openai.HTTPDoer given to go-openai. It adds our fields
// to the request body and records the raw answer in the request's exchange.
// Requests without an exchange pass through untouched.
type bodyRewriter struct {
	next openai.HTTPDoer
}

// Do rewrites the body, sends the request and buffers the answer.
func (d bodyRewriter) Do(req *http.Request) (*http.Response, error) {
	ex, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil {
		return d.next.Do(req)
	}
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		body, err = ex.rewrite(body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	ex.sent = true
	resp, err := d.next.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("read response body: %w", err)
	}
	ex.statusCode = resp.StatusCode
	ex.header = resp.Header.Clone()
	ex.body = body
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// rewrite adds the exchange's fields to a JSON request body by splicing
// them in after its opening brace, which leaves go-openai's encoding as it
// is (deterministic, in its struct's field order) instead of decoding and
// re-encoding a body that is mostly transcript. None of the added keys can
// already be there: go-openai has no cache fields and omits a zero
// temperature, the only one added.
func (ex *exchange) rewrite(body []byte) ([]byte, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("rewrite request body: not a JSON object")
	}
	rest := bytes.TrimLeft(trimmed[1:], " \t\r\n")
	var added bytes.Buffer
	add := func(key string, value []byte) {
		added.WriteByte('"')
		added.WriteString(key)
		added.WriteString(`":`)
		added.Write(value)
		added.WriteByte(',')
	}
	if ex.temperatureZero {
		add("temperature", []byte("0"))
	}
	if ex.cacheKey != "" {
		add("prompt_cache_key", mustMarshal(ex.cacheKey))
	}
	if ex.cacheRetention != "" {
		add("prompt_cache_retention", mustMarshal(ex.cacheRetention))
	}
	if added.Len() == 0 {
		return body, nil
	}
	if len(rest) > 0 && rest[0] == '}' {
		added.Truncate(added.Len() - 1) // an empty object: no comma before its end
	}
	out := make([]byte, 0, 1+added.Len()+len(rest))
	out = append(out, '{')
	out = append(out, added.Bytes()...)
	return append(out, rest...), nil
}

func mustMarshal(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// retryAfter reads the provider's suggested wait: retry-after-ms (OpenAI,
// milliseconds), then retry-after (seconds or an HTTP date).
func (ex *exchange) retryAfter(now time.Time) (time.Duration, bool) {
	if ex.header == nil {
		return 0, false
	}
	if v := strings.TrimSpace(ex.header.Get("retry-after-ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			return time.Duration(ms * float64(time.Millisecond)), true
		}
	}
	v := strings.TrimSpace(ex.header.Get("retry-after"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// rawUsage is the union of the usage shapes OpenAI-compatible providers
// send. OpenAI reports cache reads in prompt_tokens_details.cached_tokens;
// others add cache writes or use their own names.
type rawUsage struct {
	Usage *struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails *struct {
			CachedTokens        int `json:"cached_tokens"`
			CacheWriteTokens    int `json:"cache_write_tokens"`
			CacheCreationTokens int `json:"cache_creation_tokens"`
		} `json:"prompt_tokens_details"`
		// Anthropic-style fields.
		CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int `json:"cache_read_input_tokens"`
		// DeepSeek-style field.
		PromptCacheHitTokens int `json:"prompt_cache_hit_tokens"`
	} `json:"usage"`
}

// parseUsage reads token usage from a raw answer body.
func parseUsage(body []byte) Usage {
	var raw rawUsage
	if err := json.Unmarshal(body, &raw); err != nil || raw.Usage == nil {
		return Usage{}
	}
	u := raw.Usage
	out := Usage{Prompt: u.PromptTokens, Completion: u.CompletionTokens}
	if d := u.PromptTokensDetails; d != nil {
		out.CachedRead = d.CachedTokens
		out.CacheCreated = max(d.CacheWriteTokens, d.CacheCreationTokens)
	}
	out.CachedRead = max(out.CachedRead, u.CacheReadInputTokens, u.PromptCacheHitTokens)
	out.CacheCreated = max(out.CacheCreated, u.CacheCreationInputTokens)
	return out
}
