package analysis_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
)

// fakeClock is a clock whose Sleep advances time at once and records the
// wait, so backoff and limit waits are asserted without sleeping.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// observations keeps what a client's Observer is told.
type observations struct {
	mu   sync.Mutex
	seen []analysis.Observation
}

func (o *observations) observe(obs analysis.Observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, obs)
}

func (o *observations) all() []analysis.Observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]analysis.Observation(nil), o.seen...)
}

// newClient returns a client of srv on a fake clock with no limits unless
// cfg sets them.
func newClient(t *testing.T, srv *openaitest.Server, cfg analysis.OpenAIConfig) (*analysis.OpenAI, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	cfg.BaseURL = srv.URL
	if cfg.APIKey == "" {
		cfg.APIKey = srv.APIKey
	}
	cfg.Now, cfg.Sleep = clock.Now, clock.Sleep
	for _, lim := range []*int{&cfg.RPM, &cfg.TPM, &cfg.Concurrency} {
		if *lim == 0 {
			*lim = -1
		}
	}
	c, err := analysis.NewOpenAI(cfg)
	require.NoError(t, err)
	return c, clock
}

func newAnalyzer(t *testing.T, srv *openaitest.Server) (*analysis.Analyzer, *fakeClock) {
	t.Helper()
	c, clock := newClient(t, srv, analysis.OpenAIConfig{})
	return &analysis.Analyzer{Model: c, DefaultModel: "gpt-4.1-mini"}, clock
}

// testPlan has one field of every type, a QC checklist with a fatal item
// and caching on.
func testPlan() *agent.Plan {
	return &agent.Plan{
		ID:    "sales-qualifier",
		Model: "gpt-4.1-mini",
		Analysis: &agent.Analysis{
			Prompt: "You review sales calls for ACME.",
			Fields: []agent.Field{
				{Name: "summary", Type: agent.FieldString, Description: "Two-sentence summary"},
				{Name: "outcome", Type: agent.FieldEnum, Values: []string{"agreed", "declined", "callback"}},
				{Name: "success", Type: agent.FieldBoolean},
				{Name: "callback_date", Type: agent.FieldDate, Description: "When to call back"},
				{Name: "budget", Type: agent.FieldNumber},
				{Name: "seats", Type: agent.FieldInteger},
				{Name: "email", Type: agent.FieldString, PII: true},
			},
			SummaryField: "summary", DispositionField: "outcome", SuccessField: "success",
		},
		QC: &agent.QC{
			Prompt: "Judge the agent against each item.",
			Checklist: []agent.ChecklistItem{
				{ID: "greeting", Description: "Introduced itself and the company", Weight: 1},
				{ID: "consent", Description: "Asked for recording consent", Weight: 2, Fatal: true},
			},
			PassScore: 7,
		},
		Cache: agent.Cache{Enabled: true, Retention: "24h"},
	}
}

func ptr[T any](v T) *T { return &v }

// completeAtOnce sends n simple requests through c concurrently and
// requires each to succeed.
func completeAtOnce(t *testing.T, c *analysis.OpenAI, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := c.Complete(context.Background(), simpleRequest("gpt-4.1-mini"))
			require.NoError(t, err)
		})
	}
	wg.Wait()
}

func testInput(customer, said string) analysis.Input {
	started := time.Date(2025, 5, 30, 9, 0, 0, 0, time.UTC)
	ended := started.Add(95 * time.Second)
	return analysis.Input{
		CallID: "call-" + customer, Direction: "outbound", EndedReason: "customer-ended-call", DisconnectedBy: "customer",
		StartedAt: &started, EndedAt: &ended, Duration: ptr(95.0), CustomerName: customer,
		ContactData:    json.RawMessage(`{"plan": "gold",  "seats": 12}`),
		FunctionOutput: json.RawMessage(`{"booked": true}`),
		Transcript: []analysis.Turn{
			{Role: "agent", Text: "Hi, this is Ava from ACME. May I record this call?", TMs: ptr(int64(0))},
			{Role: "user", Text: said, TMs: ptr(int64(4200))},
		},
	}
}

// schemaOf decodes a recorded request's schema.
func schemaOf(t *testing.T, req openaitest.Request) map[string]any {
	t.Helper()
	var s map[string]any
	require.NoError(t, json.Unmarshal(req.Schema(), &s))
	return s
}

func containsAny(haystack []string, needle string) bool {
	for _, h := range haystack {
		if strings.Contains(h, needle) {
			return true
		}
	}
	return false
}
