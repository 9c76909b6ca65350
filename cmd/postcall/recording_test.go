package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/postcall/postcall/recording/s3test"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
)

// TestShowSignsRecordingAndDeliveryIsVisible runs the worker with an
// in-process S3 that checks SigV4 and a Standard Webhooks receiver: the call
// document's recording URL fetches the object, the delivery shows in `show`,
// and `redeliver` replays it with the same webhook-id.
func TestShowSignsRecordingAndDeliveryIsVisible(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)

	s3 := s3test.NewServer(t, s3test.Options{AccessKey: "AKIDTEST", SecretKey: "secret-test-key"})
	const audio = "RIFF fake wav"
	s3.Put(t, "rec/c-9.wav", audio)

	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	var mu sync.Mutex
	var ids []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("verify: %v", err)
		}
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)

	s3Env := append(s3.Env(), "POSTCALL_RECORDING_URL_TTL=10m",
		"POSTCALL_ALLOW_PRIVATE_TARGETS=1", "POSTCALL_HTTP_ADDR=127.0.0.1:0", "POSTCALL_LOG_LEVEL=info",
	)
	agents := fmt.Sprintf(`
id: vm
integrations:
  - {name: hook, type: webhook, url: %q, secret: %q}
`, receiver.URL, secret)
	require.Zero(t, b.run(t, ctx, "", nil, "agents", "apply", b.file(t, "a.yaml", agents)).code)
	rec := `{"call_id":"c-9","agent_id":"vm","ended_at":"2026-11-20T10:00:00Z","ended_reason":"voicemail","recording_key":"rec/c-9.wav","phone_number":"+15550100009"}`
	require.Zero(t, b.run(t, ctx, rec, s3Env, "ingest").code)

	stopWorker := b.startWorker(t, s3Env)
	defer func() {
		res := stopWorker()
		require.Equal(t, 0, res.code, res.stderr)
		require.NotContains(t, res.stderr, "X-Amz-Signature", "signed URLs never reach the log")
		require.NotContains(t, res.stderr, "+15550100009")
		require.NotContains(t, res.stderr, "secret-test-key")
	}()

	var doc struct {
		Recording *struct {
			Key       string    `json:"key"`
			URL       string    `json:"url"`
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"recording"`
		Integrations []struct {
			Status    string `json:"status"`
			WebhookID string `json:"webhook_id"`
			Attempts  int    `json:"attempts"`
		} `json:"integrations"`
	}
	require.Eventually(t, func() bool {
		res := b.run(t, ctx, "", s3Env, "show", "c-9", "--json")
		require.Equal(t, 0, res.code, res.stderr)
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &doc))
		return len(doc.Integrations) == 1 && doc.Integrations[0].Status == "delivered"
	}, 20*time.Second, 50*time.Millisecond)

	require.NotNil(t, doc.Recording)
	require.Equal(t, "rec/c-9.wav", doc.Recording.Key)
	require.WithinDuration(t, time.Now().Add(10*time.Minute), doc.Recording.ExpiresAt, time.Minute)
	resp, err := http.Get(doc.Recording.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, audio, string(body))

	text := b.run(t, ctx, "", s3Env, "show", "c-9")
	require.Contains(t, text.stdout, "webhook (hook): delivered after 1 attempt, last HTTP 200")
	require.NotContains(t, text.stdout, "X-Amz-Signature", "the text view does not print the signed URL")

	res := b.run(t, ctx, "", s3Env, "redeliver", "c-9")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, doc.Integrations[0].WebhookID)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) == 2
	}, 20*time.Second, 50*time.Millisecond)
	mu.Lock()
	require.Equal(t, ids[0], ids[1], "a replay keeps the webhook-id")
	mu.Unlock()
}
