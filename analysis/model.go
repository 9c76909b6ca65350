package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Model completes one chat request with a structured JSON answer. [OpenAI]
// talks to any OpenAI-compatible endpoint; [Demo] answers offline.
type Model interface {
	Complete(ctx context.Context, req Request) (*Response, error)
}

// Message roles used in requests.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one chat message.
type Message struct {
	Role    string
	Content string
}

// Schema is a named JSON schema the answer must follow. It is sent as a
// strict response_format: {type: json_schema, json_schema: {name, strict:
// true, schema}}.
type Schema struct {
	// Name identifies the schema to the provider: 1-64 letters, digits, _
	// or -.
	Name string
	// Definition is the JSON schema itself.
	Definition json.RawMessage
}

// Request is one chat completion request.
type Request struct {
	// Model is the provider's model name. Required.
	Model string
	// Messages are sent in order. At least one is required.
	Messages []Message
	// Schema, when set, forces a strict structured answer.
	Schema *Schema
	// MaxTokens caps the answer (max_tokens, or max_completion_tokens for
	// reasoning models). 0 means the provider's default.
	MaxTokens int
	// CacheKey is sent as prompt_cache_key when not empty.
	CacheKey string
	// CacheRetention is sent as prompt_cache_retention ("24h" or
	// "in_memory") when not empty.
	CacheRetention string
	// ServiceTier is sent as service_tier when not empty: TierFlex asks for
	// OpenAI's cheaper, slower flex processing.
	ServiceTier string
}

func (r *Request) validate() error {
	if r.Model == "" {
		return errors.New("model: required")
	}
	if len(r.Messages) == 0 {
		return errors.New("messages: at least one message is required")
	}
	if r.MaxTokens < 0 {
		return fmt.Errorf("max tokens: %d must not be negative", r.MaxTokens)
	}
	if s := r.Schema; s != nil {
		if s.Name == "" {
			return errors.New("schema name: required")
		}
		if !json.Valid(s.Definition) {
			return fmt.Errorf("schema %q: definition is not valid JSON", s.Name)
		}
	}
	return nil
}

// Response is a completed request.
type Response struct {
	// Content is the answer's text: the JSON document when a schema was
	// given.
	Content string
	// Model is the model as the provider named it in its answer, e.g. a
	// dated snapshot of the requested model.
	Model string
	// FinishReason is the provider's finish_reason, e.g. "stop" or
	// "length" (the answer was cut at MaxTokens).
	FinishReason string
	// Refusal is the model's refusal message, if it refused.
	Refusal string
	// ServiceTier is the tier that served the request as the provider
	// said, else as requested; TierDefault when none was asked for.
	ServiceTier string
	// FlexFallback says the request asked for flex, the provider had no
	// flex capacity for FlexFallbackAfter, and it was served at the
	// default tier instead.
	FlexFallback bool
	// Usage is the request's token usage.
	Usage Usage
	// Latency is the time from sending the request to reading the whole
	// answer, without time spent waiting on client-side limits or retries.
	Latency time.Duration
	// RequestID is the provider's x-request-id header, if any.
	RequestID string
}

// Usage is the token usage of one request.
type Usage struct {
	// Prompt is every input token, cached or not.
	Prompt int `json:"prompt"`
	// Completion is every output token, reasoning included.
	Completion int `json:"completion"`
	// CachedRead is the part of Prompt read from the provider's prompt
	// cache (cheaper).
	CachedRead int `json:"cached_read"`
	// CacheCreated is the part of Prompt written to the provider's prompt
	// cache, where the provider reports it (OpenAI does not; it caches for
	// free).
	CacheCreated int `json:"cache_created"`
}

// FreshPrompt is the prompt tokens not read from the cache.
func (u Usage) FreshPrompt() int { return u.Prompt - u.CachedRead }

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{
		Prompt:       u.Prompt + o.Prompt,
		Completion:   u.Completion + o.Completion,
		CachedRead:   u.CachedRead + o.CachedRead,
		CacheCreated: u.CacheCreated + o.CacheCreated,
	}
}

// Token estimate constants. The estimate is deliberately simple: one token
// per 4 bytes of UTF-8 (close for English, an underestimate for most other
// scripts), plus a few tokens of framing per message.
const (
	bytesPerToken      = 4
	tokensPerMessage   = 4
	tokensPerRequest   = 3
	estimateRoundingUp = bytesPerToken - 1
)

// EstimateTokens estimates the prompt tokens of a request without a
// tokenizer: one token per 4 bytes of message content and schema, plus 4 per
// message and 3 per request. It is used to charge the tokens-per-minute
// limit and to refuse requests longer than the model's context window; it is
// not used for billing.
func EstimateTokens(req Request) int {
	n := 0
	for _, m := range req.Messages {
		n += len(m.Role) + len(m.Content)
	}
	if req.Schema != nil {
		n += len(req.Schema.Name) + len(req.Schema.Definition)
	}
	return (n+estimateRoundingUp)/bytesPerToken + tokensPerMessage*len(req.Messages) + tokensPerRequest
}
