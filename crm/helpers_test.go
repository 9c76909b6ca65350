package crm

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
)

// Test credentials. They are long enough to be scrubbed and distinctive
// enough that finding one in an error, String or log proves a leak.
const (
	testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // 24 bytes
	testHubSpotToken  = "pat-na1-hs-secret-token-0001"
	testGHLToken      = "pit-ghl-secret-token-0002"
	testGHLLocation   = "loc123"
	testPipedriveKey  = "pd-secret-api-token-0003"
	testPhone         = "+15551234567"
)

// bundle is one test's world: a Deliverer whose client may reach loopback
// (the fakes listen there) and counts response bytes read.
type bundle struct {
	t *testing.T
	d *Deliverer
	// bodyRead counts response body bytes the package consumed.
	bodyRead *atomic.Int64
}

// setup returns a bundle. The Deliverer's clock is real time because the
// Standard Webhooks library's Verify checks timestamps against time.Now.
func setup(t *testing.T) *bundle {
	t.Helper()
	client := NewHTTPClient(true)
	counter := &atomic.Int64{}
	client.Transport = &countingTransport{next: client.Transport, n: counter}
	return &bundle{t: t, d: &Deliverer{HTTPClient: client}, bodyRead: counter}
}

// integration builds a plan integration named after its type.
func integration(typ string, settings map[string]any) agent.Integration {
	return agent.Integration{Name: typ + "-test", Type: typ, Settings: settings}
}

// target parses an integration, failing the test on error.
func (b *bundle) target(typ string, settings map[string]any) Target {
	b.t.Helper()
	tg, err := Parse(integration(typ, settings))
	require.NoError(b.t, err)
	return tg
}

// deliver makes one attempt with a context bounded so a hung test fails.
func (b *bundle) deliver(tg Target, res CallResult, id string) Attempt {
	b.t.Helper()
	ctx, cancel := contextWithTimeout(b.t, 30*time.Second)
	defer cancel()
	return b.d.Deliver(ctx, tg, res, id)
}

// countingTransport counts the response body bytes its caller reads.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if resp != nil && resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// sampleResult is a complete analysed call.
func sampleResult() CallResult {
	success := true
	score := 8
	summary := "Customer agreed to a demo <next week> & asked for pricing."
	return CallResult{
		ID:                "pc_01",
		CallID:            "plat-call-1",
		AgentID:           "sales-qualifier",
		Direction:         "outbound",
		Status:            "completed",
		EndedReason:       "customer-ended-call",
		Disposition:       "agreed",
		DispositionSource: "analysis",
		GeneralSuccess:    &success,
		FinalScore:        &score,
		CallSummary:       &summary,
		Fields: map[string]any{
			"outcome": "agreed",
			"success": true,
			"budget":  float64(5000),
			"email":   "jane@example.com",
			"purged":  nil,
		},
		PIIFields:    []string{"email"},
		Duration:     125 * time.Second,
		StartedAt:    time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		EndedAt:      time.Date(2026, 3, 1, 10, 2, 5, 0, time.UTC),
		AnalyzedAt:   time.Date(2026, 3, 1, 10, 3, 0, 0, time.UTC),
		PhoneNumber:  testPhone,
		RecordingURL: "https://postcall.example.com/v1/calls/pc_01/recording",
	}
}

// recorded is one request a fake received.
type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// decode unmarshals the recorded JSON body.
func (r recorded) decode(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// canned is a response a case forces on one route.
type canned struct {
	status int
	header map[string]string
	body   string
}

// fake is a CRM stand-in: a ServeMux implementing the CRM's real paths,
// behind its real authentication, recording every request. A case can queue
// canned responses per mux pattern, served (after authentication) instead of
// the route's normal behaviour.
type fake struct {
	t          *testing.T
	srv        *httptest.Server
	mux        *http.ServeMux
	authorized func(*http.Request) bool
	unauth     canned

	mu     sync.Mutex
	reqs   []recorded
	queued map[string][]canned
}

func newFake(t *testing.T, authorized func(*http.Request) bool, unauth canned) *fake {
	f := &fake{t: t, mux: http.NewServeMux(), authorized: authorized, unauth: unauth, queued: map[string][]canned{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// queue makes the next requests matching pattern get these responses.
func (f *fake) queue(pattern string, responses ...canned) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued[pattern] = append(f.queued[pattern], responses...)
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	f.mu.Unlock()
	if !f.authorized(r) {
		writeCanned(w, f.unauth)
		return
	}
	_, pattern := f.mux.Handler(r)
	f.mu.Lock()
	q := f.queued[pattern]
	var c *canned
	if len(q) > 0 {
		c = &q[0]
		f.queued[pattern] = q[1:]
	}
	f.mu.Unlock()
	if c != nil {
		writeCanned(w, *c)
		return
	}
	f.mux.ServeHTTP(w, r)
}

func writeCanned(w http.ResponseWriter, c canned) {
	for k, v := range c.header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(c.status)
	_, _ = io.WriteString(w, c.body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// contextWithTimeout bounds a test's delivery so that a hang fails the test.
func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
