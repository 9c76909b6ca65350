package openaitest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// RateLimits are the limits a server enforces with WithRateLimits.
type RateLimits struct {
	// RPM and TPM are the requests and tokens allowed per Window; 0 means
	// no limit of that kind.
	RPM, TPM int
	// Window is the period the limits count over, OpenAI's minute. Default
	// one minute. A shorter window is a faster-running simulated minute:
	// the x-ratelimit-limit-* headers still report per-minute rates
	// (RPM and TPM scaled to a minute), so a client computes the right
	// refill rate, while the buckets hold only Window's worth.
	Window time.Duration
	// Now reads the clock. Default time.Now.
	Now func() time.Time
}

// Admission is one request's encounter with the limits.
type Admission struct {
	At time.Time
	// Charge is what the request was charged on arrival (or would have
	// been, when refused): its prompt tokens plus its max_tokens.
	Charge int
	// Limited says it was answered 429.
	Limited bool
	// Remaining is what the token bucket held after the request (-1
	// without a TPM limit).
	Remaining float64
}

// WithRateLimits makes the server enforce RPM and TPM the way OpenAI does:
// two token buckets that start full and refill continuously; a request is
// charged on arrival its prompt tokens (Tokens of PromptText) plus its
// max_tokens or max_completion_tokens (DefaultMaxTokens when it has
// neither), whatever the answer then takes. A request that does not fit is
// answered 429 rate_limit_exceeded with retry-after and retry-after-ms and
// charged nothing. Every answer, 429 or not, carries x-ratelimit-limit-*,
// x-ratelimit-remaining-* and x-ratelimit-reset-* (durations such as "1s",
// "6m0s", "20ms", the time until the bucket is full again).
func WithRateLimits(l RateLimits) Option {
	return func(s *Server) { s.limits = newRateLimiter(l) }
}

// DefaultMaxTokens is what WithRateLimits charges a request that gives no
// output budget.
const DefaultMaxTokens = 4096

// Admissions returns every request's encounter with the rate limits, in
// arrival order; nil without WithRateLimits.
func (s *Server) Admissions() []Admission {
	if s.limits == nil {
		return nil
	}
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	return append([]Admission(nil), s.limits.log...)
}

type rateLimiter struct {
	now      func() time.Time
	window   time.Duration
	mu       sync.Mutex
	requests *fakeBucket // nil = no limit
	tokens   *fakeBucket
	log      []Admission
}

type fakeBucket struct {
	capacity, level float64
	perSecond       float64
	last            time.Time
}

func newRateLimiter(l RateLimits) *rateLimiter {
	r := &rateLimiter{now: l.Now, window: l.Window}
	if r.now == nil {
		r.now = time.Now
	}
	if r.window <= 0 {
		r.window = time.Minute
	}
	now := r.now()
	mk := func(n int) *fakeBucket {
		if n <= 0 {
			return nil
		}
		return &fakeBucket{capacity: float64(n), level: float64(n), perSecond: float64(n) / r.window.Seconds(), last: now}
	}
	r.requests, r.tokens = mk(l.RPM), mk(l.TPM)
	return r
}

func (b *fakeBucket) refill(now time.Time) {
	if b == nil {
		return
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.level = math.Min(b.capacity, b.level+dt*b.perSecond)
		b.last = now
	}
}

// short is how long until the bucket holds n; 0 when it does.
func (b *fakeBucket) short(n float64) time.Duration {
	if b == nil || b.level >= n {
		return 0
	}
	return time.Duration(math.Ceil((n - b.level) / b.perSecond * float64(time.Second)))
}

// admit charges the request or returns its 429 reply; the headers go on
// every answer.
func (r *rateLimiter) admit(req *Request) (*Reply, http.Header) {
	charge := Tokens(req.PromptText())
	switch {
	case req.MaxTokens != nil:
		charge += *req.MaxTokens
	case req.MaxCompletionTokens != nil:
		charge += *req.MaxCompletionTokens
	default:
		charge += DefaultMaxTokens
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.requests.refill(now)
	r.tokens.refill(now)
	wait := max(r.requests.short(1), r.tokens.short(float64(charge)))
	adm := Admission{At: now, Charge: charge, Limited: wait > 0, Remaining: -1}
	defer func() {
		if r.tokens != nil {
			adm.Remaining = r.tokens.level
		}
		r.log = append(r.log, adm)
	}()
	if wait > 0 {
		what, limit, used := "requests per min (RPM)", r.requests, 1.0
		if r.tokens.short(float64(charge)) > 0 {
			what, limit, used = "tokens per min (TPM)", r.tokens, float64(charge)
		}
		rep := errorReply(http.StatusTooManyRequests, "tokens", "rate_limit_exceeded", fmt.Sprintf(
			"Rate limit reached for %s on %s: Limit %.0f, Used %.0f, Requested %.0f. Please try again in %s.",
			req.Model, what, limit.capacity, limit.capacity-limit.level, used, wait))
		rep.Header = r.headers()
		rep.Header.Set("retry-after", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		rep.Header.Set("retry-after-ms", strconv.FormatInt(wait.Milliseconds()+1, 10))
		return &rep, nil
	}
	if r.requests != nil {
		r.requests.level--
	}
	if r.tokens != nil {
		r.tokens.level -= float64(charge)
	}
	return nil, r.headers()
}

// headers are OpenAI's rate-limit headers of the buckets' state.
func (r *rateLimiter) headers() http.Header {
	h := http.Header{}
	perMinute := time.Minute.Seconds() / r.window.Seconds()
	for kind, b := range map[string]*fakeBucket{"requests": r.requests, "tokens": r.tokens} {
		if b == nil {
			continue
		}
		h.Set("x-ratelimit-limit-"+kind, strconv.FormatFloat(math.Round(b.capacity*perMinute), 'f', -1, 64))
		h.Set("x-ratelimit-remaining-"+kind, strconv.FormatFloat(math.Max(0, math.Floor(b.level)), 'f', -1, 64))
		reset := time.Duration((b.capacity - b.level) / b.perSecond * float64(time.Second))
		h.Set("x-ratelimit-reset-"+kind, reset.Round(time.Millisecond).String())
	}
	return h
}
