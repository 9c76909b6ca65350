package analysis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/postcall/postcall/internal/wait"
)

// Defaults of [OpenAIConfig].
const (
	DefaultBaseURL = "https://api.openai.com/v1"
	// DefaultRPM and DefaultTPM are OpenAI's tier 1 limits for
	// gpt-4.1-mini.
	DefaultRPM          = 500
	DefaultTPM          = 200_000
	DefaultConcurrency  = 16
	DefaultMaxAttempts  = 4
	DefaultMaxRetryWait = 30 * time.Second
	DefaultHTTPTimeout  = 2 * time.Minute
	// DefaultFlexTimeout is OpenAI's advice for flex requests, which queue
	// behind the default tier's.
	DefaultFlexTimeout       = 15 * time.Minute
	DefaultFlexFallbackAfter = 5 * time.Minute
)

// Service tiers of a request (OpenAI's service_tier). TierDefault is what a
// request without one gets.
const (
	TierDefault = "default"
	TierFlex    = "flex"
)

// Backoff between attempts when the provider suggests no wait: exponential
// from backoffBase, capped at backoffCap, with jitter between half and all
// of it so that workers hit by the same outage do not retry in lockstep.
const (
	backoffBase = time.Second
	backoffCap  = 30 * time.Second
)

// HTTPDoer sends HTTP requests; *http.Client is one.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// OpenAIConfig configures an [OpenAI] client. The zero value of every field
// but APIKey is a working default.
type OpenAIConfig struct {
	// BaseURL is the API root, up to and including /v1. Default
	// DefaultBaseURL (OpenAI's public API).
	BaseURL string
	// APIKey is sent as a bearer token. Required for OpenAI's public API;
	// optional for other endpoints (e.g. a local server without auth).
	APIKey string
	// RPM is the client-side requests-per-minute limit. 0 means DefaultRPM;
	// -1 means no limit.
	RPM int
	// TPM is the client-side tokens-per-minute limit. Each attempt is
	// charged its estimated prompt tokens (see EstimateTokens) plus its
	// MaxTokens before it is sent. 0 means DefaultTPM; -1 means no limit.
	TPM int
	// Concurrency caps requests in flight. 0 means DefaultConcurrency; -1
	// means no cap.
	Concurrency int
	// MaxAttempts is the most HTTP requests one Complete call makes on
	// transient failures (429, 5xx, network). Default DefaultMaxAttempts.
	MaxAttempts int
	// MaxRetryWait is the longest wait Complete sleeps through before a
	// retry. A longer suggested wait ends the call at once with a transient
	// error carrying the wait, so that the caller can snooze instead of
	// holding a worker. Default DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// HTTPClient sends the requests. Default an *http.Client keeping a
	// connection per request in flight. Whatever the client, each attempt
	// has a deadline: DefaultHTTPTimeout, or FlexTimeout at the flex tier.
	HTTPClient HTTPDoer
	// FlexTimeout is the deadline of one attempt at the flex tier. Default
	// DefaultFlexTimeout.
	FlexTimeout time.Duration
	// FlexFallbackAfter is how long a flex request keeps retrying while the
	// provider answers that flex has no capacity (429 resource unavailable)
	// before it is sent at the default tier. 0 means
	// DefaultFlexFallbackAfter; a negative value falls back at the first
	// such answer.
	FlexFallbackAfter time.Duration
	// Now reads the clock for latency, limit and retry-after computations.
	// Default time.Now. Tests set a fake clock.
	Now func() time.Time
	// Sleep waits for d or until ctx is done, returning ctx's error then.
	// It is used for limit waits and retry backoff. Default a timer.
	// Tests set a fake one that advances their clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Observer, when set, is called once per HTTP attempt, e.g. to record
	// metrics. It must be safe for concurrent use and must not block.
	// Default none.
	Observer func(Observation)
}

// Observation describes one HTTP attempt to an [Observer]. It holds no
// prompt text.
type Observation struct {
	// Model is the requested model.
	Model string
	// Attempt counts from 1 within one Complete call.
	Attempt int
	// StatusCode is the HTTP status; 0 when no response arrived or the
	// attempt never left (limit wait cancelled).
	StatusCode int
	// ErrorCode is the provider's error code, "network" or
	// "context_canceled"; empty on success.
	ErrorCode string
	// Latency is the HTTP round trip.
	Latency time.Duration
	// LimitWait is the time spent waiting on the RPM, TPM and concurrency
	// limits before sending.
	LimitWait time.Duration
	// Usage is the attempt's token usage (zero on failure).
	Usage Usage
	// Retrying says another attempt follows.
	Retrying bool
}

func (c *OpenAIConfig) validate() error {
	if c.BaseURL != "" && !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		return errors.New("BaseURL: must start with http:// or https://")
	}
	if c.APIKey == "" && (c.BaseURL == "" || strings.TrimRight(c.BaseURL, "/") == DefaultBaseURL) {
		return errors.New("APIKey: required for OpenAI's public API")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"RPM", c.RPM}, {"TPM", c.TPM}, {"Concurrency", c.Concurrency}} {
		if f.v < -1 {
			return fmt.Errorf("%s: %d must be positive, 0 (default) or -1 (no limit)", f.name, f.v)
		}
	}
	if c.MaxAttempts < 0 {
		return fmt.Errorf("MaxAttempts: %d must not be negative", c.MaxAttempts)
	}
	if c.MaxRetryWait < 0 {
		return fmt.Errorf("MaxRetryWait: %s must not be negative", c.MaxRetryWait)
	}
	if c.FlexTimeout < 0 {
		return fmt.Errorf("FlexTimeout: %s must not be negative", c.FlexTimeout)
	}
	return nil
}

// OpenAI is a [Model] speaking the Chat Completions API of OpenAI or any
// compatible provider, with client-side limits and retries. It is safe for
// concurrent use; share one per endpoint so that the limits are shared.
type OpenAI struct {
	client            *openai.Client
	limits            *limits
	maxAttempts       int
	maxRetryWait      time.Duration
	flexTimeout       time.Duration
	flexFallbackAfter time.Duration
	now               func() time.Time
	sleep             func(context.Context, time.Duration) error
	observe           func(Observation)
}

// NewOpenAI builds a client; it sends nothing.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("openai config: %w", err)
	}
	limit := func(v, def int) int {
		switch v {
		case 0:
			return def
		case -1:
			return 0
		}
		return v
	}
	o := &OpenAI{
		maxAttempts:  orDefault(cfg.MaxAttempts, DefaultMaxAttempts),
		maxRetryWait: orDefault(cfg.MaxRetryWait, DefaultMaxRetryWait),
		flexTimeout:  orDefault(cfg.FlexTimeout, DefaultFlexTimeout),
		now:          cfg.Now,
		sleep:        cfg.Sleep,
		observe:      cfg.Observer,
	}
	switch {
	case cfg.FlexFallbackAfter == 0:
		o.flexFallbackAfter = DefaultFlexFallbackAfter
	case cfg.FlexFallbackAfter > 0:
		o.flexFallbackAfter = cfg.FlexFallbackAfter
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.sleep == nil {
		o.sleep = wait.Sleep
	}
	if o.observe == nil {
		o.observe = func(Observation) {}
	}
	o.limits = newLimits(limit(cfg.RPM, DefaultRPM), limit(cfg.TPM, DefaultTPM), limit(cfg.Concurrency, DefaultConcurrency), o.now, o.sleep)

	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = newHTTPClient(o.limits.concurrency())
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = orDefault(strings.TrimRight(cfg.BaseURL, "/"), DefaultBaseURL)
	oc.HTTPClient = bodyRewriter{next: httpClient}
	o.client = openai.NewClientWithConfig(oc)
	return o, nil
}

// newHTTPClient is the default HTTP client: every request goes to one host,
// so it keeps as many idle connections to it as requests may be in flight
// (net/http keeps 2 per host by default, and each further request would pay
// for a new TCP and TLS handshake). inFlight 0 means no cap. It has no
// timeout of its own: each attempt's context has its tier's deadline.
func newHTTPClient(inFlight int) *http.Client {
	if inFlight <= 0 {
		inFlight = 100
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = inFlight
	tr.MaxIdleConnsPerHost = inFlight
	return &http.Client{Transport: tr}
}

// orDefault returns v, or def when v is the zero value.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Complete sends the request, waiting on the client-side limits and retrying
// transient failures. A flex request the provider has no capacity for is
// retried with backoff for FlexFallbackAfter, then sent at the default tier
// (Response.FlexFallback). Failures are *APIError (see RetryAfter and
// IsPermanent) or the context's error.
func (o *OpenAI) Complete(ctx context.Context, req Request) (*Response, error) {
	if err := req.validate(); err != nil {
		return nil, fmt.Errorf("chat completion request: %w", err)
	}
	charge := EstimateTokens(req) + req.MaxTokens
	ccr := chatRequest(req)
	var (
		failures  int       // transient failures counted against MaxAttempts
		flexSince time.Time // first flex unavailability
		fellBack  bool
	)
	for attempt := 1; ; attempt++ {
		resp, failure, err := o.attempt(ctx, req, ccr, charge, attempt, failures)
		if err != nil {
			return nil, err
		}
		if failure == nil {
			resp.FlexFallback = fellBack
			return resp, nil
		}
		failure.Attempts = attempt
		if flexUnavailable(ccr, failure) {
			now := o.now()
			if flexSince.IsZero() {
				flexSince = now
			}
			left := o.flexFallbackAfter - now.Sub(flexSince)
			if left <= 0 {
				// Sent again at once, at the tier a request without
				// service_tier gets.
				ccr.ServiceTier = ""
				fellBack = true
				continue
			}
			// classify's backoff grows with the attempt; a retry-after is
			// honoured up to the fallback.
			wait := min(failure.Wait, o.maxRetryWait, left)
			if err := o.sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("wait %s to retry flex chat completion: %w", wait, err)
			}
			continue
		}
		failures++
		if !o.retried(failure, failures) {
			return nil, failure
		}
		if err := o.sleep(ctx, failure.Wait); err != nil {
			return nil, fmt.Errorf("wait %s to retry chat completion: %w", failure.Wait, err)
		}
	}
}

// retried says whether Complete sends a request again after its failures-th
// transient failure (flex without capacity aside, which is retried until
// the fallback).
func (o *OpenAI) retried(f *APIError, failures int) bool {
	return f.Transient && failures < o.maxAttempts && f.Wait <= o.maxRetryWait
}

// A 429 is one of three answers: a rate limit, which holds the client's
// buckets until its reset; a quota, which is not retried; or, at the flex
// tier, the provider's lack of flex capacity (OpenAI: "429 Resource
// Unavailable", not charged), which is neither of the others.

// insufficientQuota reports a failure about the account's quota.
func insufficientQuota(f *APIError) bool {
	return f.Code == "insufficient_quota" || f.Type == "insufficient_quota"
}

// flexUnavailable reports the provider's answer to a flex request that the
// flex tier has no capacity for now.
func flexUnavailable(ccr openai.ChatCompletionRequest, f *APIError) bool {
	return ccr.ServiceTier == openai.ServiceTierFlex && f.StatusCode == http.StatusTooManyRequests &&
		f.Code != "rate_limit_exceeded" && !insufficientQuota(f)
}

// rateLimited reports a 429 that is a rate limit.
func rateLimited(ccr openai.ChatCompletionRequest, f *APIError) bool {
	return f.StatusCode == http.StatusTooManyRequests && !insufficientQuota(f) && !flexUnavailable(ccr, f)
}

// attempt makes one HTTP request; failures is the number of transient
// failures before it. It returns the response, or the provider failure, or
// the context's error.
func (o *OpenAI) attempt(ctx context.Context, req Request, ccr openai.ChatCompletionRequest, charge, attempt, failures int) (*Response, *APIError, error) {
	model := req.Model
	obs := Observation{Model: model, Attempt: attempt}
	t, waited, err := o.limits.acquire(ctx, charge)
	obs.LimitWait = waited
	if err != nil {
		obs.ErrorCode = "context_canceled"
		o.observe(obs)
		return nil, nil, fmt.Errorf("wait for LLM rate limits: %w", err)
	}
	ex := exchangeFor(req)
	timeout := DefaultHTTPTimeout
	if ccr.ServiceTier == openai.ServiceTierFlex {
		timeout = o.flexTimeout
	}
	attemptCtx, cancel := context.WithTimeout(withExchange(ctx, ex), timeout)
	start := o.now()
	out, err := o.client.CreateChatCompletion(attemptCtx, ccr)
	cancel()
	obs.Latency = o.now().Sub(start)
	obs.StatusCode = ex.statusCode
	var failure *APIError
	if err != nil {
		failure = o.classify(err, ex, attempt)
	}
	if ex.statusCode != 0 {
		wait, ok := ex.retryAfter(o.now())
		o.limits.observe(t, ex.header, ex.statusCode, failure != nil && rateLimited(ccr, failure), wait, ok)
	} else {
		o.limits.unanswered(t)
	}
	t.release()

	if err != nil {
		if ctx.Err() != nil {
			obs.ErrorCode = "context_canceled"
			o.observe(obs)
			return nil, nil, fmt.Errorf("chat completion: %w", ctx.Err())
		}
		obs.StatusCode = failure.StatusCode
		obs.ErrorCode = orDefault(failure.Code, "error")
		// Retried, or at flex sent again (at the default tier after the
		// fallback wait).
		obs.Retrying = flexUnavailable(ccr, failure) || o.retried(failure, failures+1)
		o.observe(obs)
		return nil, failure, nil
	}
	if len(out.Choices) == 0 {
		// Seen from overloaded compatible servers; the next attempt usually
		// answers.
		failure := &APIError{StatusCode: ex.statusCode, Code: "empty_answer", Message: "the answer has no choices",
			Transient: true, Wait: o.backoff(attempt)}
		obs.ErrorCode = failure.Code
		obs.Retrying = o.retried(failure, failures+1)
		o.observe(obs)
		return nil, failure, nil
	}
	resp := responseOf(out, ex.body, model, answeredTier(ccr.ServiceTier, out.ServiceTier))
	resp.Latency, resp.RequestID = obs.Latency, ex.header.Get("x-request-id")
	obs.Usage = resp.Usage
	o.observe(obs)
	return resp, nil, nil
}

// answeredTier is the tier the provider says it served the request at, or
// the one requested when it does not say.
func answeredTier(requested, answered openai.ServiceTier) string {
	return string(orDefault(answered, orDefault(requested, TierDefault)))
}

// classify turns a go-openai error into an APIError and decides whether it
// is worth retrying and after how long.
func (o *OpenAI) classify(err error, ex *exchange, attempt int) *APIError {
	f := &APIError{StatusCode: ex.statusCode}
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case errors.As(err, &apiErr):
		f.StatusCode = apiErr.HTTPStatusCode
		if apiErr.Code != nil {
			f.Code = fmt.Sprint(apiErr.Code)
		}
		f.Type = apiErr.Type
		f.Message = shorten(apiErr.Message, 300)
	case errors.As(err, &reqErr):
		// A non-JSON error body (e.g. a proxy's HTML page): keep the status
		// only.
		f.StatusCode = reqErr.HTTPStatusCode
		f.Message = http.StatusText(reqErr.HTTPStatusCode)
	case !ex.sent:
		// go-openai refused the request before sending it (e.g. a model it
		// reserves for another endpoint); sending it again cannot help.
		f.Code = "client_rejected"
		f.Message = shorten(err.Error(), 300)
	case ex.statusCode >= 200 && ex.statusCode < 300:
		// The answer arrived but did not decode.
		f.Code = "bad_answer"
		f.Message = shorten(err.Error(), 300)
	default:
		f.StatusCode = 0
		f.Code = "network"
		f.Message = shorten(err.Error(), 300)
	}
	switch {
	case f.Code == "client_rejected":
		f.Transient = false
	case insufficientQuota(f):
		// Retrying cannot help until someone pays; say so loudly.
		f.Transient = false
	case f.StatusCode == 0, f.StatusCode == http.StatusRequestTimeout, f.StatusCode == http.StatusTooManyRequests,
		f.StatusCode >= 500, f.Code == "bad_answer":
		f.Transient = true
	}
	if f.Transient {
		if d, ok := ex.retryAfter(o.now()); ok {
			f.Wait = d
		} else {
			f.Wait = o.backoff(attempt)
		}
	}
	return f
}

// backoff is the jittered wait after the given failed attempt.
func (o *OpenAI) backoff(attempt int) time.Duration {
	d := backoffCap
	if attempt < 16 {
		d = min(backoffBase<<(attempt-1), backoffCap)
	}
	return d/2 + rand.N(d/2+1)
}

// chatRequest maps our request to go-openai's. Temperature, prompt cache
// key and retention are added by the body rewriter.
func chatRequest(req Request) openai.ChatCompletionRequest {
	ccr := openai.ChatCompletionRequest{Model: req.Model, ServiceTier: openai.ServiceTier(req.ServiceTier)}
	for _, m := range req.Messages {
		ccr.Messages = append(ccr.Messages, openai.ChatCompletionMessage{Role: m.Role, Content: m.Content})
	}
	if isReasoningModel(req.Model) {
		// Reasoning models reject max_tokens and any temperature but 1.
		ccr.MaxCompletionTokens = req.MaxTokens
	} else {
		ccr.MaxTokens = req.MaxTokens
	}
	if s := req.Schema; s != nil {
		ccr.ResponseFormat = &openai.ChatCompletionResponseFormat{
			Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{
				Name:   s.Name,
				Schema: s.Definition,
				Strict: true,
			},
		}
	}
	return ccr
}

// isReasoningModel reports OpenAI reasoning models (o1, o3, o4, gpt-5,
// gpt-6 families), which take max_completion_tokens and no temperature. A
// provider prefix such as "openai/" is ignored.
func isReasoningModel(model string) bool {
	model = baseModelName(model)
	for _, p := range []string{"o1", "o3", "o4", "gpt-5", "gpt-6"} {
		if strings.HasPrefix(model, p) {
			return true
		}
	}
	return false
}

// baseModelName drops a router's provider prefix ("openai/gpt-4.1" ->
// "gpt-4.1").
func baseModelName(model string) string {
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		return model[i+1:]
	}
	return model
}
