package crm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Outcome is what the caller should do after an Attempt.
type Outcome string

const (
	// OutcomeDelivered: the integration accepted the result (2xx).
	OutcomeDelivered Outcome = "delivered"
	// OutcomeRetry: a transient failure (network error, timeout, 408, 409,
	// 425, 429, 5xx); try again after max(RetryDelay, Attempt.RetryAfter).
	OutcomeRetry Outcome = "retry"
	// OutcomePermanent: retrying the same request cannot succeed (other 4xx,
	// a refused address or redirect, no CRM contact); record the failure.
	OutcomePermanent Outcome = "permanent"
	// OutcomeDisable: the endpoint is gone (410); disable the integration.
	OutcomeDisable Outcome = "disable"
)

// Attempt is the result of one delivery attempt. A delivery to a CRM may
// take several requests (contact lookup, update, create); StatusCode is the
// last one's and Err says which step failed.
type Attempt struct {
	// StatusCode is the last HTTP status received; 0 when no response came.
	StatusCode int
	// Latency is the wall time of the whole attempt.
	Latency time.Duration
	// Err is nil when delivered; otherwise short, safe to store and show: it
	// never holds a secret, a full URL, a phone number or note content.
	Err error
	// Outcome says what to do next.
	Outcome Outcome
	// RetryAfter is the wait the server asked for with Retry-After (seconds
	// or an HTTP date), capped at MaxRetryAfter; 0 when it asked for none.
	RetryAfter time.Duration
	// ExternalID is the id of what the CRM created (HubSpot call, GHL note,
	// Pipedrive note); empty for webhooks or when the CRM's answer had none.
	ExternalID string
}

// MaxRetryAfter caps a server's Retry-After so that a misconfigured server
// cannot park a delivery for weeks.
const MaxRetryAfter = 24 * time.Hour

// maxResponseBody is how much of a response is read: enough for any ids and
// error messages the CRMs return, small enough that a hostile endpoint
// cannot make a worker buffer gigabytes.
const maxResponseBody = 64 << 10

// userAgent identifies postcall to integrations.
const userAgent = "postcall"

// Deliverer sends CallResults to Targets. The zero value works: it builds a
// guarded client on first use. It is safe for concurrent use; do not copy it
// after first use.
type Deliverer struct {
	// HTTPClient sends the requests. Nil means NewHTTPClient(AllowPrivate),
	// built once. A client supplied here is used as is: the private-address
	// guard is then the supplier's responsibility.
	HTTPClient *http.Client
	// AllowPrivate lets a nil HTTPClient's dialer reach loopback and private
	// addresses (POSTCALL_ALLOW_PRIVATE_TARGETS=1; tests only).
	AllowPrivate bool
	// Now is the clock for webhook timestamps and Retry-After dates. Nil
	// means time.Now.
	Now func() time.Time
	// Timeout bounds each HTTP request of an attempt. 0 means
	// DefaultTimeout (15 s).
	Timeout time.Duration

	once   sync.Once
	client *http.Client
}

// NewDeliverer returns a Deliverer with a guarded client (see
// NewHTTPClient).
func NewDeliverer(allowPrivate bool) *Deliverer {
	return &Deliverer{HTTPClient: NewHTTPClient(allowPrivate), AllowPrivate: allowPrivate}
}

func (d *Deliverer) httpClient() *http.Client {
	if d.HTTPClient != nil {
		return d.HTTPClient
	}
	d.once.Do(func() { d.client = NewHTTPClient(d.AllowPrivate) })
	return d.client
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deliverer) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return DefaultTimeout
}

// attemptCtx is one attempt's inputs, passed to a Target's deliver.
type attemptCtx struct {
	ctx        context.Context
	res        *CallResult
	deliveryID string
}

// Deliver makes one attempt to deliver res to target. deliveryID identifies
// the delivery (one call to one integration): pass the same value on every
// retry, because webhooks send it as webhook-id for receivers to deduplicate.
// It must be printable ASCII without spaces or commas.
//
// Deliver never panics on a bad input; it reports it as a permanent Attempt.
// Delivery is at least once: when a CRM created a record but its answer was
// lost, a retry creates a second one.
func (d *Deliverer) Deliver(ctx context.Context, target Target, res CallResult, deliveryID string) Attempt {
	start := time.Now()
	var a Attempt
	switch {
	case target == nil:
		a = permanent(errors.New("no target"))
	case !validDeliveryID(deliveryID):
		a = permanent(errors.New("delivery id must be 1-255 printable ASCII characters without spaces or commas"))
	default:
		a = target.deliver(d, &attemptCtx{ctx: ctx, res: &res, deliveryID: deliveryID})
	}
	a.Latency = time.Since(start)
	if a.Err != nil && target != nil {
		a.Err = scrub(a.Err, append(target.secrets(), res.PhoneNumber))
	}
	return a
}

func validDeliveryID(id string) bool {
	if id == "" || len(id) > 255 {
		return false
	}
	for _, r := range id {
		if r <= ' ' || r > '~' || r == ',' {
			return false
		}
	}
	return true
}

func permanent(err error) Attempt { return Attempt{Outcome: OutcomePermanent, Err: err} }

// apiRequest is one HTTP request of an attempt. what names the step in
// errors ("create call"); the URL never appears in them because it may hold
// a token (Pipedrive's api_token).
type apiRequest struct {
	what   string
	method string
	url    *url.URL
	header http.Header
	body   []byte
}

// apiResponse is a response with its body read up to maxResponseBody.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r apiResponse) ok() bool { return r.status >= 200 && r.status < 300 }

// do sends req with the per-request timeout and reads at most
// maxResponseBody of the answer; the body is always closed. A non-nil error
// means no usable response: the caller turns it into an Attempt with
// networkFailure.
func (d *Deliverer) do(ctx context.Context, req apiRequest) (apiResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, req.url.String(), body)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s: build request: %w", req.what, unwrapURLError(err))
	}
	for k, vs := range req.header {
		hr.Header[k] = vs
	}
	hr.Header.Set("User-Agent", userAgent)
	if hr.Header.Get("Accept") == "" {
		hr.Header.Set("Accept", "application/json")
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.httpClient().Do(hr)
	if err != nil {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		return apiResponse{}, fmt.Errorf("%s: %w", req.what, unwrapURLError(err))
	}
	defer resp.Body.Close()
	// A read error after a status arrived is not fatal: a 2xx still means
	// the CRM acted, and a truncated id is reported as a missing one.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	return apiResponse{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// unwrapURLError drops *url.Error's wrapper, whose message holds the full
// URL (and with it any token in the query).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// networkFailure turns a failed request into an Attempt: refused addresses
// and redirects are permanent, everything else (connection errors, timeouts,
// the caller's context ending) is worth a retry.
func networkFailure(err error) Attempt {
	if errors.Is(err, ErrForbiddenAddress) || errors.Is(err, errRedirect) {
		return permanent(err)
	}
	return Attempt{Outcome: OutcomeRetry, Err: err}
}

// classifyStatus maps an HTTP status to an Outcome: 2xx delivered; 410
// disable; 408, 409, 425, 429 and 5xx retry; every other status (other 4xx,
// a final 1xx or 3xx) permanent.
func classifyStatus(code int) Outcome {
	switch {
	case code >= 200 && code < 300:
		return OutcomeDelivered
	case code == http.StatusGone:
		return OutcomeDisable
	case code == http.StatusRequestTimeout, code == http.StatusConflict,
		code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		return OutcomeRetry
	default:
		return OutcomePermanent
	}
}

// httpFailure is the Attempt for a non-2xx answer to a step.
func (d *Deliverer) httpFailure(what string, resp apiResponse) Attempt {
	a := Attempt{StatusCode: resp.status, Outcome: classifyStatus(resp.status)}
	msg := fmt.Sprintf("%s: HTTP %d", what, resp.status)
	if detail := serverMessage(resp.body); detail != "" {
		msg += ": " + detail
	}
	a.Err = errors.New(msg)
	if a.Outcome == OutcomeRetry {
		a.RetryAfter = parseRetryAfter(resp.header.Get("Retry-After"), d.now())
	}
	return a
}

// delivered is the Attempt for a successful final step.
func delivered(resp apiResponse, externalID string) Attempt {
	return Attempt{StatusCode: resp.status, Outcome: OutcomeDelivered, ExternalID: externalID}
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date
// (RFC 9110 section 10.2.3). Unparsable or past values mean no wait; the
// result is capped at MaxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var wait time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		wait = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		wait = t.Sub(now)
	}
	return min(max(wait, 0), MaxRetryAfter)
}

// digitRun matches what could be a phone number or an account number in a
// server's error message.
var digitRun = regexp.MustCompile(`\+?\d[\d\s().-]{5,}\d`)

// serverMessage extracts a short human message from a JSON error body
// (HubSpot and GHL use "message", Pipedrive "error"), with long digit runs
// masked because CRMs echo submitted values, such as the searched phone
// number. Non-JSON bodies (HTML error pages) give nothing.
func serverMessage(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	var msg string
	for _, k := range []string{"message", "error", "msg"} {
		switch v := m[k].(type) {
		case string:
			msg = v
		case []any:
			parts := make([]string, 0, len(v))
			for _, p := range v {
				if s, ok := p.(string); ok {
					parts = append(parts, s)
				}
			}
			msg = strings.Join(parts, "; ")
		}
		if msg != "" {
			break
		}
	}
	msg = strings.Join(strings.Fields(msg), " ")
	msg = digitRun.ReplaceAllString(msg, "[number]")
	return truncate(msg, 200)
}

// scrubbedError replaces an error's text with one where secrets are masked
// while keeping errors.Is/As working on the original chain.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub masks every secret (token, webhook secret, header value, phone
// number) that made it into err's text: a last line of defence, since the
// messages are built not to contain them.
func scrub(err error, secrets []string) error {
	msg := err.Error()
	out := msg
	for _, s := range secrets {
		if len(s) >= 4 {
			out = strings.ReplaceAll(out, s, "[redacted]")
		}
	}
	if out == msg {
		return err
	}
	return &scrubbedError{msg: out, err: err}
}

// jsonBody marshals a request body; the values are plain maps and structs
// of strings and numbers, so failure is a programming error reported as a
// permanent failure rather than a panic.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

// withPath returns base with segments appended to its path, each escaped
// (an id from contact_data can never add a path level), and the query q.
func withPath(base *url.URL, q url.Values, segments ...string) *url.URL {
	u := *base
	raw := base.EscapedPath()
	for _, s := range segments {
		u.Path += "/" + s
		raw += "/" + url.PathEscape(s)
	}
	u.RawPath = raw
	u.RawQuery = q.Encode()
	return &u
}

// idPattern is what a CRM record id read from contact_data must look like:
// HubSpot and Pipedrive ids are numeric, GoHighLevel's alphanumeric.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// checkID rejects an id (from contact_data or a CRM's answer; where names
// it) that cannot be a CRM id, so that it can never reshape a request path.
func checkID(where, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%s: not a valid record id", where)
	}
	return nil
}
