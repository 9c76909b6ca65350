package crm

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
)

// webhookReceiver is a Standard Webhooks endpoint that verifies every
// request with the reference library, not with this package's signer.
type webhookReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	reqs     []recorded
	verified []error
	statuses []int // responses to give, in order; 200 after
}

func newWebhookReceiver(t *testing.T, secret string, statuses ...int) *webhookReceiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	rc := &webhookReceiver{statuses: statuses}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
		rc.verified = append(rc.verified, wh.Verify(body, r.Header))
		status := http.StatusOK
		if len(rc.statuses) > 0 {
			status, rc.statuses = rc.statuses[0], rc.statuses[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *webhookReceiver) results() ([]recorded, []error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recorded(nil), rc.reqs...), append([]error(nil), rc.verified...)
}

func TestWebhookSignedPerStandardWebhooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newWebhookReceiver(t, testWebhookSecret)
	tg := b.target(TypeWebhook, map[string]any{
		"url":     rc.srv.URL + "/hooks/abc?x=1",
		"secret":  testWebhookSecret,
		"headers": map[string]any{"X-Tenant": "acme"},
	})
	res := sampleResult()
	res.Demo = true

	a := b.deliver(tg, res, "msg_2Ks9deliv01")

	require.NoError(t, a.Err)
	require.Equal(t, OutcomeDelivered, a.Outcome)
	require.Equal(t, http.StatusOK, a.StatusCode)
	reqs, verified := rc.results()
	require.Len(t, reqs, 1)
	require.NoError(t, verified[0], "reference library must verify the signature")
	r := reqs[0]
	require.Equal(t, http.MethodPost, r.Method)
	require.Equal(t, "/hooks/abc", r.Path)
	require.Equal(t, "1", r.Query.Get("x"))
	require.Equal(t, "msg_2Ks9deliv01", r.Header.Get("webhook-id"))
	ts, err := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().Unix(), ts, 60)
	require.Regexp(t, `^v1,[A-Za-z0-9+/]{43}=$`, r.Header.Get("webhook-signature"))
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	require.Equal(t, "postcall", r.Header.Get("User-Agent"))
	require.Equal(t, "acme", r.Header.Get("X-Tenant"))

	body := r.decode(t)
	require.Equal(t, "call.analyzed", body["type"])
	require.Equal(t, "2026-03-01T10:03:00Z", body["timestamp"], "event time is AnalyzedAt, stable across retries")
	data := body["data"].(map[string]any)
	require.Equal(t, "pc_01", data["id"])
	require.Equal(t, "plat-call-1", data["call_id"])
	require.Equal(t, "sales-qualifier", data["agent_id"])
	require.Equal(t, "agreed", data["disposition"])
	require.Equal(t, "analysis", data["disposition_source"])
	require.Equal(t, true, data["general_success"])
	require.Equal(t, float64(8), data["final_score"])
	require.Equal(t, *res.CallSummary, data["call_summary"])
	require.Equal(t, float64(125), data["duration"])
	require.Equal(t, "2026-03-01T10:02:05Z", data["ended_at"])
	require.Equal(t, res.RecordingURL, data["recording_url"])
	require.Equal(t, true, data["demo"])
	fields := data["analysis"].(map[string]any)["fields"].(map[string]any)
	require.Equal(t, map[string]any{"outcome": "agreed", "success": true, "budget": float64(5000), "purged": nil}, fields,
		"default selection is every non-PII field; email is PII")
	require.NotContains(t, data, "phone_number", "personal data is opt-in")
	require.NotContains(t, data, "contact_data")
}

func TestWebhookWrongSecretDoesNotVerify(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The receiver knows another secret: proves the verification above is
	// not vacuous.
	rc := newWebhookReceiver(t, "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")
	tg := b.target(TypeWebhook, map[string]any{"url": rc.srv.URL, "secret": testWebhookSecret})

	a := b.deliver(tg, sampleResult(), "msg_1")

	require.Equal(t, OutcomeDelivered, a.Outcome)
	_, verified := rc.results()
	require.ErrorIs(t, verified[0], standardwebhooks.ErrNoMatchingSignature)
}

func TestWebhookSameIDAcrossRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newWebhookReceiver(t, testWebhookSecret, http.StatusServiceUnavailable)
	tg := b.target(TypeWebhook, map[string]any{"url": rc.srv.URL, "secret": testWebhookSecret})
	res := sampleResult()

	first := b.deliver(tg, res, "msg_retry_1")
	second := b.deliver(tg, res, "msg_retry_1")

	require.Equal(t, OutcomeRetry, first.Outcome)
	require.Equal(t, http.StatusServiceUnavailable, first.StatusCode)
	require.Error(t, first.Err)
	require.Equal(t, OutcomeDelivered, second.Outcome)
	reqs, verified := rc.results()
	require.Len(t, reqs, 2)
	require.NoError(t, verified[0])
	require.NoError(t, verified[1])
	require.Equal(t, "msg_retry_1", reqs[0].Header.Get("webhook-id"))
	require.Equal(t, reqs[0].Header.Get("webhook-id"), reqs[1].Header.Get("webhook-id"))
	require.Equal(t, string(reqs[0].Body), string(reqs[1].Body), "a retry sends the same event bytes")
}

func TestWebhookFieldsAndContactSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		settings   map[string]any
		wantFields map[string]any
		wantPhone  any
		wantRec    any
	}{
		{
			name:       "explicit fields may name a PII field",
			settings:   map[string]any{"fields": []any{"email", "outcome", "missing"}},
			wantFields: map[string]any{"email": "jane@example.com", "outcome": "agreed"},
			wantRec:    "https://postcall.example.com/v1/calls/pc_01/recording",
		},
		{
			name:       "empty fields list sends none; recording_link none",
			settings:   map[string]any{"fields": []any{}, "recording_link": "none"},
			wantFields: map[string]any{},
			wantRec:    nil,
		},
		{
			name:       "include_contact adds phone and contact_data",
			settings:   map[string]any{"include_contact": true, "fields": []any{"outcome"}},
			wantFields: map[string]any{"outcome": "agreed"},
			wantPhone:  testPhone,
			wantRec:    "https://postcall.example.com/v1/calls/pc_01/recording",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			rc := newWebhookReceiver(t, testWebhookSecret)
			s := map[string]any{"url": rc.srv.URL, "secret": testWebhookSecret}
			for k, v := range tt.settings {
				s[k] = v
			}
			res := sampleResult()
			res.ContactData = []byte(`{"plan":"gold"}`)

			a := b.deliver(b.target(TypeWebhook, s), res, "msg_f")

			require.Equal(t, OutcomeDelivered, a.Outcome)
			reqs, verified := rc.results()
			require.NoError(t, verified[0])
			data := reqs[0].decode(t)["data"].(map[string]any)
			require.Equal(t, tt.wantFields, data["analysis"].(map[string]any)["fields"])
			require.Equal(t, tt.wantRec, data["recording_url"])
			require.Equal(t, false, data["demo"])
			if tt.wantPhone != nil {
				require.Equal(t, tt.wantPhone, data["phone_number"])
				require.Equal(t, map[string]any{"plan": "gold"}, data["contact_data"])
			} else {
				require.NotContains(t, data, "phone_number")
			}
		})
	}
}
