// Package openaitest is a fake OpenAI Chat Completions and Batch API server
// for tests and benchmarks. It speaks the real wire format over real HTTP (httptest),
// checks the bearer token, records every request and answers from a script
// of Responders or a default one. By default it answers with valid output
// generated from the request's JSON schema.
//
//	srv := openaitest.NewServer(t)
//	srv.Script(openaitest.RateLimited(2*time.Second), openaitest.Valid())
//	model, _ := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: srv.URL, APIKey: srv.APIKey})
//	...
//	req := srv.Requests()[0]
//
// With WithCacheEmulation the server applies OpenAI's prompt caching rule
// to the usage it reports, so that cache-hit rates can be measured. The
// Batch API (files and batches) is emulated too; ScriptBatches says how
// batches end.
package openaitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postcall/postcall/analysis/internal/schemaexample"
)

// DefaultAPIKey is the bearer token a Server accepts unless WithAPIKey says
// otherwise.
const DefaultAPIKey = "sk-openaitest"

// Server is a running fake endpoint. It is safe for concurrent use and is
// closed when the test ends.
type Server struct {
	// URL is the API root to configure as the base URL; it ends in /v1.
	URL string
	// APIKey is the bearer token the server accepts.
	APIKey string

	srv *httptest.Server

	mu       sync.Mutex
	script   []Responder
	fallback Responder
	requests []Request
	cache    *cacheEmulator // nil = off
	limits   *rateLimiter   // nil = off
	nextID   int

	// The Batch API (batch.go).
	files        map[string]*fakeFile
	batches      map[string]*fakeBatch
	batchOrder   []string
	batchScripts []BatchScript
	holdBatches  bool
}

// Option configures a Server.
type Option func(*Server)

// WithAPIKey sets the accepted bearer token. Default DefaultAPIKey.
func WithAPIKey(key string) Option { return func(s *Server) { s.APIKey = key } }

// WithDefault sets the responder used when the script is empty. Default
// Valid().
func WithDefault(r Responder) Option { return func(s *Server) { s.fallback = r } }

// WithCacheEmulation makes reported usage follow OpenAI's prompt caching
// rule: a prompt (the schema, then every message's role and content, see
// Request.PromptText) counts one token per 4 bytes; a request reads from
// the cache only when its prompt is at least 1024 tokens and it shares a
// prefix of at least 1024 tokens with an earlier successful request
// carrying the same prompt_cache_key (requests without a key share one
// pool); the cached part is that shared prefix rounded down to a multiple
// of 128 tokens. Off by default: cached_tokens is then always 0.
func WithCacheEmulation() Option { return func(s *Server) { s.cache = newCacheEmulator() } }

// NewServer starts a server and closes it when the test ends.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{APIKey: DefaultAPIKey, fallback: Valid(), files: map[string]*fakeFile{}, batches: map[string]*fakeBatch{}}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/v1"
	t.Cleanup(s.srv.Close)
	return s
}

// Script queues responders for the next requests, in order, after any
// already queued. When the queue is empty the default responder answers.
func (s *Server) Script(rs ...Responder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, rs...)
}

// SetDefault replaces the responder used when the script is empty.
func (s *Server) SetDefault(r Responder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = r
}

// Requests returns a copy of every request received so far, in arrival
// order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Len is the number of requests received so far.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Message is one chat message as received.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ResponseFormat is the request's response_format.
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema"`
}

// JSONSchema is response_format.json_schema.
type JSONSchema struct {
	Name   string          `json:"name"`
	Strict bool            `json:"strict"`
	Schema json.RawMessage `json:"schema"`
}

// Request is one received request. Pointer fields are nil when the key was
// absent from the JSON body.
type Request struct {
	// N counts requests from 0 in arrival order.
	N int `json:"-"`
	// Header is the HTTP header as received.
	Header http.Header `json:"-"`
	// Body is the raw JSON body.
	Body []byte `json:"-"`
	// Fields holds every top-level key of the body.
	Fields map[string]json.RawMessage `json:"-"`

	Model                string          `json:"model"`
	Messages             []Message       `json:"messages"`
	Temperature          *float64        `json:"temperature"`
	MaxTokens            *int            `json:"max_tokens"`
	MaxCompletionTokens  *int            `json:"max_completion_tokens"`
	ResponseFormat       *ResponseFormat `json:"response_format"`
	PromptCacheKey       *string         `json:"prompt_cache_key"`
	PromptCacheRetention *string         `json:"prompt_cache_retention"`
	ServiceTier          *string         `json:"service_tier"`

	// Status is the HTTP status the server answered with; 0 while the
	// answer is pending or when the client went away first.
	Status int `json:"-"`
	// Batch is the id of the batch whose input file held the request;
	// empty for a live request.
	Batch string `json:"-"`
}

// Schema is the request's JSON schema, or nil.
func (r *Request) Schema() json.RawMessage {
	if r.ResponseFormat == nil || r.ResponseFormat.JSONSchema == nil {
		return nil
	}
	return r.ResponseFormat.JSONSchema.Schema
}

// PromptText is the text prompt tokens are counted on: the schema, then
// for each message a newline, its role, a newline and its content; the
// order providers build (and cache) their prompt in.
func (r *Request) PromptText() string {
	var b strings.Builder
	b.Write(r.Schema())
	for _, m := range r.Messages {
		b.WriteString("\n")
		b.WriteString(m.Role)
		b.WriteString("\n")
		b.WriteString(m.Content)
	}
	return b.String()
}

// Tokens counts tokens the way the server does: one per 4 bytes, rounded
// up.
func Tokens(s string) int { return (len(s) + 3) / 4 }

// Responder decides the reply to one request. It runs on the server's
// handler goroutine and may block.
type Responder func(req *Request) Reply

// Reply is the server's answer.
type Reply struct {
	// Status is the HTTP status. Default 200.
	Status int
	// Header is added to the response.
	Header http.Header
	// Content is choices[0].message.content of a 200 reply.
	Content string
	// Refusal is choices[0].message.refusal of a 200 reply.
	Refusal string
	// FinishReason defaults to "stop".
	FinishReason string
	// Model is the answer's model. Default the requested one.
	Model string
	// Error is the error object of a non-200 reply.
	Error *ErrorBody
	// Usage replaces the computed usage object when set (raw JSON), e.g.
	// to imitate another provider's usage fields.
	Usage json.RawMessage
	// Body replaces the whole response body when set.
	Body []byte
	// Delay holds the reply back; it ends early when the client goes away.
	Delay time.Duration
}

// ErrorBody is OpenAI's {"error": {...}} object.
type ErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// Valid answers with output generated from the request's schema: strings
// "example", enums their first value, booleans true, numbers 1.5, integers
// 1, dates 2024-01-15. Without a schema it answers "ok".
func Valid() Responder {
	// Generate is deterministic, so each schema's answer is made once: a
	// benchmark sends thousands of requests with a few schemas, and the
	// fake shares the CPUs with the worker it measures.
	var mu sync.Mutex
	answers := map[string]string{}
	return func(req *Request) Reply {
		schema := req.Schema()
		if schema == nil {
			return Reply{Content: "ok"}
		}
		mu.Lock()
		answer, ok := answers[string(schema)]
		mu.Unlock()
		if ok {
			return Reply{Content: answer}
		}
		v, err := schemaexample.Generate(schema, schemaexample.Choices{})
		if err != nil {
			return errorReply(http.StatusBadRequest, "invalid_request_error", "invalid_schema", err.Error())
		}
		mu.Lock()
		answers[string(schema)] = string(v)
		mu.Unlock()
		return Reply{Content: string(v)}
	}
}

// Content answers with the given text.
func Content(s string) Responder {
	return func(*Request) Reply { return Reply{Content: s} }
}

// SchemaViolation answers with valid JSON that breaks the request's schema:
// the first required property is missing and "unexpected_field" is added.
func SchemaViolation() Responder {
	return func(req *Request) Reply {
		rep := Valid()(req)
		var obj map[string]any
		if err := json.Unmarshal([]byte(rep.Content), &obj); err != nil || obj == nil {
			return Reply{Content: `{"unexpected_field": true}`}
		}
		var top struct {
			Required []string `json:"required"`
		}
		_ = json.Unmarshal(req.Schema(), &top)
		if len(top.Required) > 0 {
			delete(obj, top.Required[0])
		}
		obj["unexpected_field"] = "not in the schema"
		b, _ := json.Marshal(obj)
		return Reply{Content: string(b)}
	}
}

// InvalidJSON answers with text that is not JSON.
func InvalidJSON() Responder {
	return Content(`Sure! Here is the analysis: {"summary": "cut`)
}

// RateLimited answers 429 rate_limit_exceeded with retry-after in whole
// seconds (rounded up), plus retry-after-ms when wait is not whole seconds.
func RateLimited(wait time.Duration) Responder {
	return func(*Request) Reply {
		r := errorReply(http.StatusTooManyRequests, "requests", "rate_limit_exceeded", "Rate limit reached for requests.")
		secs := (wait + time.Second - 1) / time.Second
		r.Header.Set("retry-after", strconv.Itoa(int(secs)))
		if wait%time.Second != 0 {
			r.Header.Set("retry-after-ms", strconv.FormatInt(wait.Milliseconds(), 10))
		}
		return r
	}
}

// FlexUnavailable answers what OpenAI answers a flex request it has no
// capacity for: 429 "Resource Unavailable", which is not charged.
func FlexUnavailable() Responder {
	return Status(http.StatusTooManyRequests, "server_error", "resource_unavailable",
		"Resource unavailable. Please try again later or use the default service tier.")
}

// InsufficientQuota answers 429 insufficient_quota, which must not be
// retried.
func InsufficientQuota() Responder {
	return Status(http.StatusTooManyRequests, "insufficient_quota", "insufficient_quota",
		"You exceeded your current quota, please check your plan and billing details.")
}

// ServerError answers 500.
func ServerError() Responder {
	return Status(http.StatusInternalServerError, "server_error", "server_error",
		"The server had an error while processing your request.")
}

// Status answers the given HTTP status with an OpenAI error body.
func Status(code int, errType, errCode, message string) Responder {
	return func(*Request) Reply { return errorReply(code, errType, errCode, message) }
}

// Slow delays the next responder's reply by d, or until the client goes
// away.
func Slow(d time.Duration, next Responder) Responder {
	return func(req *Request) Reply {
		r := next(req)
		r.Delay = d
		return r
	}
}

func errorReply(status int, errType, code, message string) Reply {
	return Reply{Status: status, Header: http.Header{}, Error: &ErrorBody{Message: message, Type: errType, Code: &code}}
}

// serve handles one HTTP request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.serveBatchAPI(w, r) {
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		writeReply(w, errorReply(http.StatusNotFound, "invalid_request_error", "unknown_url", "Unknown request URL: "+r.Method+" "+r.URL.Path))
		return
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(r.Body); err != nil {
		return
	}
	req := Request{Header: r.Header.Clone(), Body: body.Bytes()}
	decodeErr := json.Unmarshal(req.Body, &req)
	_ = json.Unmarshal(req.Body, &req.Fields)

	s.mu.Lock()
	req.N = len(s.requests)
	s.requests = append(s.requests, req)
	responder := s.fallback
	if len(s.script) > 0 {
		responder = s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()

	reply := s.reply(r.Context(), &req, decodeErr, responder)
	if reply == nil {
		return // the client went away
	}
	status := writeReply(w, *reply)
	s.mu.Lock()
	s.requests[req.N].Status = status
	s.mu.Unlock()
}

// reply checks and answers one request; nil means the client went away
// during the delay.
func (s *Server) reply(ctx context.Context, req *Request, decodeErr error, responder Responder) *Reply {
	var rep Reply
	switch {
	case req.Header.Get("Authorization") != "Bearer "+s.APIKey:
		rep = errorReply(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
	case decodeErr != nil:
		rep = errorReply(http.StatusBadRequest, "invalid_request_error", "invalid_json", "We could not parse the JSON body of your request.")
	default:
		if problem := checkRequest(req); problem != "" {
			rep = errorReply(http.StatusBadRequest, "invalid_request_error", "invalid_request", problem)
			break
		}
		if s.limits != nil && req.Batch == "" { // batches have limits of their own
			limited, header := s.limits.admit(req)
			if limited != nil {
				rep = *limited
				break
			}
			rep = responder(req)
			if rep.Header == nil {
				rep.Header = http.Header{}
			}
			for k, v := range header {
				rep.Header[k] = v
			}
			break
		}
		rep = responder(req)
	}
	if rep.Delay > 0 {
		t := time.NewTimer(rep.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
	if rep.Status == 0 {
		rep.Status = http.StatusOK
	}
	if rep.Status == http.StatusOK && rep.Body == nil {
		rep.Body = s.completion(req, rep)
	}
	return &rep
}

// checkRequest rejects what OpenAI rejects: no model, no messages, a strict
// schema that is not strict-compatible.
func checkRequest(req *Request) string {
	if req.Model == "" {
		return "you must provide a model parameter"
	}
	if len(req.Messages) == 0 {
		return "'messages' must contain at least one message"
	}
	if rf := req.ResponseFormat; rf != nil && rf.Type == "json_schema" {
		if rf.JSONSchema == nil || rf.JSONSchema.Name == "" {
			return "response_format.json_schema.name is required"
		}
		if rf.JSONSchema.Strict {
			if problem := checkStrict(rf.JSONSchema.Schema, "schema"); problem != "" {
				return "Invalid schema for response_format '" + rf.JSONSchema.Name + "': " + problem
			}
		}
	}
	return ""
}

// checkStrict applies strict mode's object rules recursively: every object
// has additionalProperties false and lists every property in required.
func checkStrict(schema json.RawMessage, path string) string {
	var n struct {
		Type                 json.RawMessage            `json:"type"`
		Properties           map[string]json.RawMessage `json:"properties"`
		Required             []string                   `json:"required"`
		AdditionalProperties *bool                      `json:"additionalProperties"`
		Items                json.RawMessage            `json:"items"`
	}
	if err := json.Unmarshal(schema, &n); err != nil {
		return path + " is not a JSON object"
	}
	if bytes.Contains(n.Type, []byte(`"object"`)) || n.Properties != nil {
		if n.AdditionalProperties == nil || *n.AdditionalProperties {
			return "In context=" + path + ", 'additionalProperties' is required to be supplied and to be false."
		}
		names := make([]string, 0, len(n.Properties))
		for name := range n.Properties {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if !slices.Contains(n.Required, name) {
				return "In context=" + path + ", 'required' is required to be supplied and to be an array including every key in properties. Missing '" + name + "'."
			}
		}
		for _, name := range names {
			if p := checkStrict(n.Properties[name], path+".properties."+name); p != "" {
				return p
			}
		}
	}
	if len(n.Items) > 0 {
		return checkStrict(n.Items, path+".items")
	}
	return ""
}

// completion builds a chat.completion body with usage.
func (s *Server) completion(req *Request, rep Reply) []byte {
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.mu.Unlock()

	usage := rep.Usage
	if usage == nil {
		prompt := req.PromptText()
		promptTokens := Tokens(prompt)
		cached := 0
		if s.cache != nil {
			key := ""
			if req.PromptCacheKey != nil {
				key = *req.PromptCacheKey
			}
			cached = s.cache.lookupAndStore(key, prompt, promptTokens)
		}
		completion := Tokens(rep.Content)
		usage, _ = json.Marshal(map[string]any{
			"prompt_tokens":             promptTokens,
			"completion_tokens":         completion,
			"total_tokens":              promptTokens + completion,
			"prompt_tokens_details":     map[string]int{"cached_tokens": cached, "audio_tokens": 0},
			"completion_tokens_details": map[string]int{"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
		})
	}
	var refusal any
	if rep.Refusal != "" {
		refusal = rep.Refusal
	}
	answer := map[string]any{
		"id":      fmt.Sprintf("chatcmpl-openaitest%d", id),
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   orDefault(rep.Model, req.Model),
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": rep.Content, "refusal": refusal},
			"logprobs":      nil,
			"finish_reason": orDefault(rep.FinishReason, "stop"),
		}},
		"usage":              usage,
		"system_fingerprint": "fp_openaitest",
	}
	// OpenAI says which tier served the request.
	answer["service_tier"] = "default"
	if req.ServiceTier != nil && *req.ServiceTier == "flex" {
		answer["service_tier"] = "flex"
	}
	body, _ := json.Marshal(answer)
	return body
}

// writeReply writes the reply and returns its status.
func writeReply(w http.ResponseWriter, rep Reply) int {
	for k, vs := range rep.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	status := rep.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := rep.Body
	if body == nil && rep.Error != nil {
		body, _ = json.Marshal(map[string]any{"error": rep.Error})
	}
	w.Header().Set("Content-Type", "application/json")
	if w.Header().Get("x-request-id") == "" {
		w.Header().Set("x-request-id", "req_"+strconv.FormatInt(time.Now().UnixNano(), 36))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
