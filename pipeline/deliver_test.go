package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/crm"
	"github.com/postcall/postcall/internal/dbtest"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is a webhook endpoint answering from a script (200 when the
// script is exhausted) and verifying every signature.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	script []func(w http.ResponseWriter)
	ids    []string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	wh, err := standardwebhooks.NewWebhook(webhookSecret)
	require.NoError(t, err)
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		rc.mu.Lock()
		rc.ids = append(rc.ids, r.Header.Get("webhook-id"))
		var next func(http.ResponseWriter)
		if len(rc.script) > 0 {
			next, rc.script = rc.script[0], rc.script[1:]
		}
		rc.mu.Unlock()
		if next != nil {
			next(w)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func status(code int, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

type deliverBundle struct {
	tx       pgx.Tx
	svc      *pipeline.Service
	recv     *receiver
	now      time.Time
	agentID  string
	enqueued []string
}

func setupDeliver(t *testing.T) *deliverBundle {
	t.Helper()
	ctx := context.Background()
	b := &deliverBundle{tx: dbtest.Tx(t), recv: newReceiver(t), now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	b.svc = &pipeline.Service{Deliveries: &pipeline.Deliveries{
		Deliverer: crm.NewDeliverer(true),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:       func() time.Time { return b.now },
		Jitter:    func(time.Duration) time.Duration { return 0 },
	}}
	b.agentID = fmt.Sprintf("deliver-%d", time.Now().UnixNano())
	plans, err := agent.ParsePlans([]byte(fmt.Sprintf(`
id: %s
integrations:
  - {name: zapier, type: webhook, url: %q, secret: %q}
`, b.agentID, b.recv.srv.URL, webhookSecret)))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, b.tx, &plans[0])
	require.NoError(t, err)
	return b
}

// finalizeCall stores a voicemail call (auto disposition: finalized at once)
// and returns the id of its first integration's delivery.
func (b *deliverBundle) finalizeCall(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	agentID := b.agentID
	rec := &call.Record{CallID: fmt.Sprintf("vm-%d", time.Now().UnixNano()), AgentID: agentID,
		EndedAt: b.now.Add(-time.Minute), EndedReason: "voicemail"}
	id, _, err := store.InsertCall(ctx, b.tx, store.NewCall{Record: rec})
	require.NoError(t, err)
	c, err := store.LockCall(ctx, b.tx, id)
	require.NoError(t, err)
	plan, version, err := store.CurrentPlan(ctx, b.tx, agentID)
	require.NoError(t, err)
	before := len(b.enqueued)
	started, err := b.start(ctx, c, plan, version)
	require.NoError(t, err)
	require.NotNil(t, started.Auto)
	require.Len(t, b.enqueued, before+len(plan.Integrations), "one delivery per integration, enqueued with the finalization")
	return b.enqueued[before]
}

// start runs Start in b.tx, as ingest does, and collects the deliveries it
// returns for enqueueing.
func (b *deliverBundle) start(ctx context.Context, c *store.Call, plan *agent.Plan, version int) (*pipeline.Started, error) {
	started, err := b.svc.Start(ctx, b.tx, c, plan, version, store.TriggerIngest, pipeline.AllKinds)
	if started != nil {
		b.enqueued = append(b.enqueued, started.Deliveries...)
	}
	return started, err
}

// retryLater is what attempt returns for a delivery tried again later.
type retryLater struct{ After time.Duration }

func (e *retryLater) Error() string { return fmt.Sprintf("delivery retry in %s", e.After) }

// attempt works one delivery as its job does (jobs.DeliverWorker): it
// attempts, records in b.tx, and reports whether the job would complete.
func (b *deliverBundle) attempt(t *testing.T, id string) (error, bool) {
	t.Helper()
	ctx := context.Background()
	a, err := b.svc.Deliveries.Attempt(ctx, b.tx, id)
	if err != nil {
		return err, false
	}
	if err := b.svc.Deliveries.Record(ctx, b.tx, a); err != nil {
		return err, false
	}
	b.svc.Deliveries.Recorded(ctx, a)
	if !a.Final() {
		return &retryLater{After: a.RetryIn}, false
	}
	return nil, true
}

func TestDeliverSignedWebhook(t *testing.T) {
	t.Parallel()
	b := setupDeliver(t)
	id := b.finalizeCall(t)

	err, completed := b.attempt(t, id)
	require.NoError(t, err)
	require.True(t, completed)
	del, err := getDelivery(context.Background(), b.tx, id)
	require.NoError(t, err)
	require.Equal(t, store.DeliveryDelivered, del.Status)
	require.Equal(t, 200, *del.LastStatusCode)
	require.Equal(t, []string{id}, b.recv.ids)

	// Already delivered: a retried job sends nothing.
	err, completed = b.attempt(t, id)
	require.NoError(t, err)
	require.True(t, completed)
	require.Len(t, b.recv.ids, 1)
}

func TestDeliverRetriesWithSameIDOnSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupDeliver(t)
	b.recv.script = []func(http.ResponseWriter){status(503), status(429, "Retry-After", "120"), status(200)}
	id := b.finalizeCall(t)

	err, completed := b.attempt(t, id)
	var later *retryLater
	require.ErrorAs(t, err, &later)
	require.False(t, completed)
	require.Equal(t, 5*time.Second, later.After, "the first retry comes after 5s")

	err, _ = b.attempt(t, id)
	require.ErrorAs(t, err, &later)
	require.Equal(t, 5*time.Minute, later.After, "the schedule's 5m wins over a shorter Retry-After")

	err, completed = b.attempt(t, id)
	require.NoError(t, err)
	require.True(t, completed)
	require.Equal(t, []string{id, id, id}, b.recv.ids, "one webhook-id across retries")

	log, err := store.DeliveryAttempts(ctx, b.tx, id)
	require.NoError(t, err)
	require.Len(t, log, 3)
	require.Equal(t, 503, *log[0].StatusCode)
	require.Equal(t, 429, *log[1].StatusCode)
	require.Equal(t, "delivered", log[2].Outcome)
}

func TestDeliverRetryAfterLongerThanSchedule(t *testing.T) {
	t.Parallel()
	b := setupDeliver(t)
	b.recv.script = []func(http.ResponseWriter){status(429, "Retry-After", "3600")}
	id := b.finalizeCall(t)
	err, _ := b.attempt(t, id)
	var later *retryLater
	require.ErrorAs(t, err, &later)
	require.Equal(t, time.Hour, later.After)
}

func TestDeliverPermanentFailure(t *testing.T) {
	t.Parallel()
	b := setupDeliver(t)
	b.recv.script = []func(http.ResponseWriter){status(401)}
	id := b.finalizeCall(t)
	err, completed := b.attempt(t, id)
	require.NoError(t, err)
	require.True(t, completed)
	del, err := getDelivery(context.Background(), b.tx, id)
	require.NoError(t, err)
	require.Equal(t, store.DeliveryFailed, del.Status)
	require.Len(t, b.recv.ids, 1, "a 401 is not retried")
}

func TestDeliverGoneDisablesIntegration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupDeliver(t)
	b.recv.script = []func(http.ResponseWriter){status(410)}
	id := b.finalizeCall(t)
	_, completed := b.attempt(t, id)
	require.True(t, completed)

	// The next call's delivery is created disabled and says why.
	before := len(b.enqueued)
	agentID := b.agentID
	rec := &call.Record{CallID: "after-gone", AgentID: agentID, EndedAt: b.now, EndedReason: "voicemail"}
	callID, _, err := store.InsertCall(ctx, b.tx, store.NewCall{Record: rec})
	require.NoError(t, err)
	c, err := store.LockCall(ctx, b.tx, callID)
	require.NoError(t, err)
	plan, version, err := store.CurrentPlan(ctx, b.tx, agentID)
	require.NoError(t, err)
	_, err = b.start(ctx, c, plan, version)
	require.NoError(t, err)
	require.Len(t, b.enqueued, before, "nothing enqueued for a disabled integration")
	dels, err := store.CallDeliveries(ctx, b.tx, callID)
	require.NoError(t, err)
	require.Len(t, dels, 1)
	require.Equal(t, store.DeliveryDisabled, dels[0].Status)
	require.Contains(t, *dels[0].LastError, "410")

	// Redeliver re-enables it and replays with the same id.
	ids, err := b.svc.Deliveries.Redeliver(ctx, b.tx, callID, "zapier")
	require.NoError(t, err)
	require.Equal(t, []string{dels[0].ID}, ids)
	err, completed = b.attempt(t, ids[0])
	require.NoError(t, err)
	require.True(t, completed)
	require.Equal(t, dels[0].ID, b.recv.ids[len(b.recv.ids)-1])
}

func TestDeliverDisablesAfterContinuousFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupDeliver(t)
	b.recv.script = []func(http.ResponseWriter){status(500), status(500)}
	first := b.finalizeCall(t)
	err, _ := b.attempt(t, first)
	require.Error(t, err)

	// Six days later another delivery fails too: the window (5 days) of
	// continuous failure has passed.
	b.now = b.now.Add(6 * 24 * time.Hour)
	second := b.finalizeCall(t)
	_, completed := b.attempt(t, second)
	require.False(t, completed)
	h, err := store.IntegrationHealth(ctx, b.tx, b.agentID, "zapier")
	require.NoError(t, err)
	require.NotNil(t, h.DisabledAt)
	require.Contains(t, *h.DisabledReason, "failing continuously")

	// The pending first delivery is skipped when its retry comes.
	err, completed = b.attempt(t, first)
	require.NoError(t, err)
	require.True(t, completed)
	del, err := getDelivery(ctx, b.tx, first)
	require.NoError(t, err)
	require.Equal(t, store.DeliveryDisabled, del.Status)
}

func TestDeliverGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupDeliver(t)
	for range crm.MaxAttempts {
		b.recv.script = append(b.recv.script, status(503))
	}
	id := b.finalizeCall(t)
	for i := 1; i < crm.MaxAttempts; i++ {
		err, _ := b.attempt(t, id)
		var later *retryLater
		require.ErrorAs(t, err, &later, "attempt %d", i)
	}
	err, completed := b.attempt(t, id)
	require.NoError(t, err)
	require.True(t, completed)
	del, err := getDelivery(ctx, b.tx, id)
	require.NoError(t, err)
	require.Equal(t, store.DeliveryFailed, del.Status)
	require.Equal(t, crm.MaxAttempts, del.Attempts)
	require.Contains(t, *del.LastError, "gave up")
}

func TestDeliveriesListedInPlanOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupDeliver(t)
	// Names out of alphabetical order: the order must be the plan's.
	plans, err := agent.ParsePlans([]byte(fmt.Sprintf(`
id: %s
integrations:
  - {name: zapier, type: webhook, url: %[2]q, secret: %[3]q}
  - {name: make, type: webhook, url: %[2]q, secret: %[3]q}
  - {name: n8n, type: webhook, url: %[2]q, secret: %[3]q}
`, b.agentID, b.recv.srv.URL, webhookSecret)))
	require.NoError(t, err)
	_, _, err = store.ApplyPlan(ctx, b.tx, &plans[0])
	require.NoError(t, err)
	first := b.finalizeCall(t)

	del, err := getDelivery(ctx, b.tx, first)
	require.NoError(t, err)
	list, err := store.CallDeliveries(ctx, b.tx, del.CallID)
	require.NoError(t, err)
	var names []string
	for _, d := range list {
		names = append(names, d.Integration)
	}
	require.Equal(t, []string{"zapier", "make", "n8n"}, names)
}

// getDelivery reads one delivery as its job does.
func getDelivery(ctx context.Context, db store.DBTX, id string) (*store.Delivery, error) {
	w, err := store.GetDeliveryWork(ctx, db, id)
	if err != nil {
		return nil, err
	}
	return w.Delivery, nil
}
