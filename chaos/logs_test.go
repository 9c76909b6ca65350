package chaos

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/recording/s3test"
)

// TestLogsCarryNoSecretsOrPersonalData audits the logs of a full run at
// debug level, in both formats: calls with phone numbers, names, e-mails
// and transcripts go through analysis and QC (some model answers rate
// limited, failing or invalid, some runs failing for good), webhook
// deliveries with secrets, a secret header and contact data (some
// retried, one integration gone), signed recording URLs and recording
// links through the HTTP API, API errors, an erasure, a purge and the
// recording deletions on S3. No worker log, nor the stderr of any command,
// may contain a secret, a phone number, transcript text, a customer name or
// a signed URL (setup's cleanup asserts it over every captured output).
func TestLogsCarryNoSecretsOrPersonalData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{})

	// A fake S3 with SigV4 and the recordings of every call.
	const bucket = "recordings"
	s3 := s3test.NewServer(t, s3test.Options{Bucket: bucket, AccessKey: b.secrets.AWSAccessKey, SecretKey: b.secrets.AWSSecret})

	// A third integration that answers 410 Gone: it gets disabled.
	gone := "whsec_" + base64.StdEncoding.EncodeToString([]byte("gone-integration-secret-"+randHex(8)))
	b.secrets.Webhook["hook-gone"] = gone
	b.hooks.AddIntegration("hook-gone", gone)
	b.applyAgent(t, fmt.Sprintf("    - {name: hook-gone, type: webhook, url: %q, secret: %q}\n", b.hooks.URL("hook-gone"), gone))

	// The first worker's HTTP address is also the public URL of recording
	// links.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	httpAddr := ln.Addr().String()
	require.NoError(t, ln.Close())
	b.env = append(b.env, s3.Env()...)
	b.env = append(b.env,
		"POSTCALL_PUBLIC_URL=http://"+httpAddr, "POSTCALL_LINK_SECRET="+b.secrets.LinkSecret,
		// The audit covers every line a worker can write, debug included.
		"POSTCALL_LOG_LEVEL=debug",
	)

	// Model faults by call: rate limited once, a server error once, invalid
	// output every time (the analysis fails after its repair request), QC
	// refused for quota (fails at once).
	b.model.SetAnswer(func(k runKey, nth int) *openaitest.Reply {
		switch {
		case k.call%17 == 5 && k.kind == "analysis":
			return reply(openaitest.InvalidJSON())
		case k.call%19 == 2 && k.kind == "qc":
			return reply(openaitest.InsufficientQuota())
		case k.call%13 == 3 && nth == 1:
			return reply(openaitest.RateLimited(200 * time.Millisecond))
		case k.call%11 == 7 && nth == 1:
			return reply(openaitest.ServerError())
		}
		return nil
	})
	// Webhook faults: a 500 or 503 on the first attempt of some calls
	// (retried 5 s later), 410 from hook-gone.
	b.hooks.SetStatus(func(integration, callID string, nth int) int {
		var idx int
		_, _ = fmt.Sscanf(callID, "chaos-%d", &idx)
		switch {
		case integration == "hook-gone":
			return http.StatusGone
		case integration == "hook-a" && idx%7 == 0 && nth == 1:
			return http.StatusInternalServerError
		case integration == "hook-b" && idx%9 == 4 && nth == 1:
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})

	calls := b.newCalls(120, 10)
	for _, c := range calls {
		body := "RIFF fake audio of " + c.CallID
		s3.Put(t, "recordings/"+c.CallID+".wav", body)
	}
	w1 := b.startWorker(t, "json", "POSTCALL_HTTP_ADDR="+httpAddr)
	b.startWorker(t, "text", "POSTCALL_LOG_FORMAT=text")
	b.ingest(t, calls)
	b.waitDone(t, len(calls), time.Minute)
	b.waitDeliveries(t, time.Minute)

	// The HTTP API, with its errors.
	api := &apiClient{t: t, base: "http://" + w1.addr, token: b.secrets.APIToken}
	target := calls[0]
	status, body, _ := api.do(http.MethodGet, "/v1/calls/"+target.CallID, "")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "X-Amz-Signature", "the call document carries a signed recording URL")
	status, body, _ = api.do(http.MethodGet, "/v1/calls?phone_number="+url.QueryEscape(target.Phone)+"&search="+customerSurname, "")
	require.Equal(t, http.StatusOK, status, body)
	status, _, _ = api.do(http.MethodGet, "/v1/calls?limit=many", "")
	require.Equal(t, http.StatusBadRequest, status)
	status, _, _ = (&apiClient{t: t, base: api.base, token: "wrong-" + randHex(4)}).do(http.MethodGet, "/v1/calls", "")
	require.Equal(t, http.StatusUnauthorized, status)
	status, _, _ = api.do(http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, status)

	// A recording link from a webhook payload redirects to a signed URL.
	var link string
	got, _ := b.hooks.Received()
	for _, r := range got {
		if r.recordingURL != "" {
			link = r.recordingURL
			break
		}
	}
	require.NotEmpty(t, link, "webhook payloads carry recording links")
	status, _, header := api.do(http.MethodGet, strings.TrimPrefix(link, "http://"+httpAddr), "")
	require.Equal(t, http.StatusFound, status)
	require.Contains(t, header.Get("Location"), "X-Amz-Signature")

	// A record with errors, then a good one through the API.
	bad := calls[1].record()
	bad["ended_at"] = "yesterday"
	badJSON, _ := json.Marshal(bad)
	status, body, _ = api.do(http.MethodPost, "/v1/calls", string(badJSON))
	require.Equal(t, http.StatusBadRequest, status, body)
	extra := b.newCalls(1, 0)[0]
	goodJSON, _ := json.Marshal(extra.record())
	status, body, _ = api.do(http.MethodPost, "/v1/calls", string(goodJSON))
	require.Equal(t, http.StatusAccepted, status, body)
	b.waitDone(t, len(calls)+1, time.Minute)
	b.waitDeliveries(t, time.Minute)

	// Erasure, soft delete, and the purge of everything else.
	status, body, _ = api.do(http.MethodPost, "/v1/calls/"+calls[2].CallID+"/purge", "")
	require.Equal(t, http.StatusOK, status, body)
	status, body, _ = api.do(http.MethodDelete, "/v1/calls/"+calls[3].CallID, "")
	require.Equal(t, http.StatusNoContent, status, body)
	out, errOut, code := b.cli(t, "", nil, "purge", "--phone", calls[4].Phone)
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, out, calls[4].Phone)
	_, errOut, code = b.cli(t, "", []string{"POSTCALL_PURGE_AFTER_DAYS=0"}, "purge")
	require.Equal(t, 0, code, errOut)
	require.Eventually(t, func() bool {
		var left int
		err := b.pool.QueryRow(ctx, `SELECT count(*) FROM recording_deletions`).Scan(&left)
		return err == nil && left == 0
	}, time.Minute, 100*time.Millisecond, "recording deletions never finished; jobs: %v", b.jobStates(t))

	for _, w := range b.workers {
		w.stop(t)
	}
	// The run went through the paths that log: model failures, failed runs,
	// delivery attempts, retention runs, recording deletions.
	for _, msg := range []string{"run failed", "delivery attempt", "retention run ended", "recording objects deleted", "worker stopped"} {
		require.Positive(t, b.logLines(msg), "no %q line in the workers' logs", msg)
	}
	var failed int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM calls WHERE state = 'failed'`).Scan(&failed))
	require.Positive(t, failed, "some runs failed for good")
	_, statuses, _ := b.model.Counts()
	t.Logf("%d calls (%d failed); model replies by status %v; webhook requests %d", len(b.calls), failed, statuses, len(got))
}

// apiClient calls the worker's HTTP API without following redirects.
type apiClient struct {
	t           *testing.T
	base, token string
}

func (c *apiClient) do(method, path, body string) (int, string, http.Header) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewBufferString(body))
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	require.NoError(c.t, err, "%s %s", method, path)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, string(data), resp.Header
}
