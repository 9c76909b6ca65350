package crm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// statusServer answers every request with one canned response and counts
// requests.
func statusServer(t *testing.T, c canned) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeCanned(w, c)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestOutcomeByStatus(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		resp      canned
		want      Outcome
		wantRetry time.Duration
	}{
		{"200 delivered", canned{status: 200}, OutcomeDelivered, 0},
		{"204 delivered", canned{status: 204}, OutcomeDelivered, 0},
		{"401 permanent", canned{status: 401, body: `{"message":"bad credentials"}`}, OutcomePermanent, 0},
		{"404 permanent", canned{status: 404}, OutcomePermanent, 0},
		{"422 permanent, Retry-After ignored", canned{status: 422, header: map[string]string{"Retry-After": "60"}}, OutcomePermanent, 0},
		{"410 disables", canned{status: 410}, OutcomeDisable, 0},
		{"408 retry", canned{status: 408}, OutcomeRetry, 0},
		{"409 retry", canned{status: 409}, OutcomeRetry, 0},
		{"425 retry", canned{status: 425}, OutcomeRetry, 0},
		{"429 Retry-After seconds", canned{status: 429, header: map[string]string{"Retry-After": "120"}}, OutcomeRetry, 2 * time.Minute},
		{"429 Retry-After HTTP date", canned{status: 429, header: map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}}, OutcomeRetry, 90 * time.Second},
		{"429 Retry-After date in the past", canned{status: 429, header: map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}}, OutcomeRetry, 0},
		{"429 Retry-After garbage", canned{status: 429, header: map[string]string{"Retry-After": "soon"}}, OutcomeRetry, 0},
		{"429 Retry-After capped", canned{status: 429, header: map[string]string{"Retry-After": "99999999"}}, OutcomeRetry, MaxRetryAfter},
		{"500 retry", canned{status: 500}, OutcomeRetry, 0},
		{"503 Retry-After", canned{status: 503, header: map[string]string{"Retry-After": "30"}}, OutcomeRetry, 30 * time.Second},
		{"final 3xx without Location is permanent", canned{status: 300}, OutcomePermanent, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.d.Now = func() time.Time { return now }
			srv, hits := statusServer(t, tt.resp)
			tg := b.target(TypeWebhook, map[string]any{"url": srv.URL, "secret": testWebhookSecret})

			a := b.deliver(tg, sampleResult(), "msg_status")

			require.Equal(t, tt.want, a.Outcome)
			require.Equal(t, tt.resp.status, a.StatusCode)
			require.Equal(t, tt.wantRetry, a.RetryAfter)
			require.Equal(t, int64(1), hits.Load())
			require.Positive(t, a.Latency)
			if tt.want == OutcomeDelivered {
				require.NoError(t, a.Err)
			} else {
				require.ErrorContains(t, a.Err, "post webhook: HTTP ")
			}
		})
	}
}

func TestTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.d.Timeout = 200 * time.Millisecond
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	tg := b.target(TypeWebhook, map[string]any{"url": srv.URL, "secret": testWebhookSecret})

	start := time.Now()
	a := b.deliver(tg, sampleResult(), "msg_timeout")

	require.Equal(t, OutcomeRetry, a.Outcome)
	require.Zero(t, a.StatusCode)
	require.ErrorIs(t, a.Err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestConnectionRefusedIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more
	tg := b.target(TypePipedrive, map[string]any{"api_token": testPipedriveKey, "base_url": addr})
	res := sampleResult()
	res.ContactData = []byte(`{"pipedrive_person_id": 1}`)

	a := b.deliver(tg, res, "dlv-refused")

	require.Equal(t, OutcomeRetry, a.Outcome)
	require.ErrorContains(t, a.Err, "pipedrive create note: ")
	require.NotContains(t, a.Err.Error(), testPipedriveKey, "url.Error would print the URL with api_token")
	require.NotContains(t, a.Err.Error(), "api_token")
}

func TestHugeResponseBodyIsNotReadPastLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("x", 32<<10))
		for range 32 << 10 { // up to 1 GiB: far more than anyone should read
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	tg := b.target(TypeWebhook, map[string]any{"url": srv.URL, "secret": testWebhookSecret})

	start := time.Now()
	a := b.deliver(tg, sampleResult(), "msg_huge")

	require.Equal(t, OutcomeDelivered, a.Outcome, "err: %v", a.Err)
	require.Equal(t, int64(maxResponseBody), b.bodyRead.Load(), "exactly the limit is read, not a byte more")
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestServerMessageInErrorIsSafe(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A CRM that echoes what it was sent, token and phone number included.
	srv, _ := statusServer(t, canned{status: 400, body: `{"success":false,"error":"bad token ` + testPipedriveKey + ` for term +1 (555) 123-4567"}`})
	tg := b.target(TypePipedrive, map[string]any{"api_token": testPipedriveKey, "base_url": srv.URL})

	a := b.deliver(tg, sampleResult(), "dlv-echo")

	require.Equal(t, OutcomePermanent, a.Outcome)
	msg := a.Err.Error()
	require.Contains(t, msg, "pipedrive search persons: HTTP 400: bad token")
	require.NotContains(t, msg, testPipedriveKey)
	require.NotContains(t, msg, "555")
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	t.Run("followed on the same host up to the cap", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := hits.Add(1)
			if n <= MaxRedirects {
				http.Redirect(w, r, "/next", http.StatusTemporaryRedirect)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		}))
		t.Cleanup(srv.Close)
		tg := b.target(TypeWebhook, map[string]any{"url": srv.URL, "secret": testWebhookSecret})

		a := b.deliver(tg, sampleResult(), "msg_redir")

		require.Equal(t, OutcomeDelivered, a.Outcome, "err: %v", a.Err)
		require.Equal(t, int64(MaxRedirects+1), hits.Load())
	})
	t.Run("one more than the cap is permanent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			http.Redirect(w, r, "/again", http.StatusTemporaryRedirect)
		}))
		t.Cleanup(srv.Close)
		tg := b.target(TypeWebhook, map[string]any{"url": srv.URL, "secret": testWebhookSecret})

		a := b.deliver(tg, sampleResult(), "msg_redir")

		require.Equal(t, OutcomePermanent, a.Outcome)
		require.ErrorIs(t, a.Err, errRedirect)
		require.Equal(t, int64(MaxRedirects+1), hits.Load())
	})
	t.Run("to another host is refused before it is contacted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		other, otherHits := statusServer(t, canned{status: 200})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
		}))
		t.Cleanup(srv.Close)
		tg := b.target(TypeWebhook, map[string]any{
			"url": srv.URL, "secret": testWebhookSecret,
			"headers": map[string]any{"X-Api-Key": "receiver-secret-key"},
		})

		a := b.deliver(tg, sampleResult(), "msg_redir")

		require.Equal(t, OutcomePermanent, a.Outcome)
		require.ErrorIs(t, a.Err, errRedirect)
		require.Zero(t, otherHits.Load())
	})
}

func TestDeliverRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv, hits := statusServer(t, canned{status: 200})
	tg := b.target(TypeWebhook, map[string]any{"url": srv.URL, "secret": testWebhookSecret})
	for _, id := range []string{"", "has space", "a,b", "tab\tid", strings.Repeat("x", 256)} {
		a := b.deliver(tg, sampleResult(), id)
		require.Equal(t, OutcomePermanent, a.Outcome, "id %q", id)
		require.Error(t, a.Err)
	}
	a := b.deliver(nil, sampleResult(), "msg_1")
	require.Equal(t, OutcomePermanent, a.Outcome)
	require.Zero(t, hits.Load())
}

func TestZeroDelivererIsGuarded(t *testing.T) {
	t.Parallel()
	srv, hits := statusServer(t, canned{status: 200})
	tg, err := Parse(integration(TypeWebhook, map[string]any{"url": srv.URL, "secret": testWebhookSecret}))
	require.NoError(t, err)
	ctx, cancel := contextWithTimeout(t, 10*time.Second)
	defer cancel()

	var d Deliverer // zero value: builds NewHTTPClient(false) on first use
	a := d.Deliver(ctx, tg, sampleResult(), "msg_zero")

	require.Equal(t, OutcomePermanent, a.Outcome)
	require.ErrorIs(t, a.Err, ErrForbiddenAddress)
	require.Zero(t, hits.Load())

	allowed := Deliverer{AllowPrivate: true}
	a = allowed.Deliver(ctx, tg, sampleResult(), "msg_zero")
	require.Equal(t, OutcomeDelivered, a.Outcome, "err: %v", a.Err)
	require.Equal(t, int64(1), hits.Load())
}
