package pipeline_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// observations collects what the Deliveries observer is told.
type observations struct {
	mu  sync.Mutex
	got []pipeline.DeliveryObservation
}

func (o *observations) observe(d pipeline.DeliveryObservation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d.Latency = 0 // not deterministic
	o.got = append(o.got, d)
}

func TestDeliverObserverSeesEveryRecordedAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupDeliver(t)
	var obs observations
	b.svc.Deliveries.Observer = obs.observe
	b.recv.script = []func(http.ResponseWriter){status(503)}
	id := b.finalizeCall(t)

	err, _ := b.attempt(t, id)
	var later *retryLater
	require.ErrorAs(t, err, &later)
	err, _ = b.attempt(t, id)
	require.NoError(t, err)
	// A retried job of a delivered delivery records nothing new.
	err, _ = b.attempt(t, id)
	require.NoError(t, err)

	// A pending delivery whose integration was disabled meanwhile is
	// recorded as skipped.
	second := b.finalizeCall(t)
	require.NoError(t, store.DisableIntegration(ctx, b.tx, b.agentID, "zapier", "test", time.Now()))
	err, _ = b.attempt(t, second)
	require.NoError(t, err)

	require.Equal(t, []pipeline.DeliveryObservation{
		{Type: "webhook", Outcome: "retry", Status: store.DeliveryPending, StatusCode: 503},
		{Type: "webhook", Outcome: "delivered", Status: store.DeliveryDelivered, StatusCode: 200},
		{Type: "webhook", Outcome: "skipped", Status: store.DeliveryDisabled},
	}, obs.got)
}
