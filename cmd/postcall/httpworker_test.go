package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// httpWorker is a `postcall worker` running inside the test, with its HTTP
// server listening.
type httpWorker struct {
	// base is the server's root URL.
	base string
	// token is sent as the bearer token by call.
	token          string
	stdout, stderr syncBuffer
	stop           context.CancelFunc
	done           chan int
}

// startHTTPWorker runs the worker command with environ (which must set
// POSTCALL_HTTP_ADDR=127.0.0.1:0 and, for call, POSTCALL_API_TOKEN=token)
// and waits until it says where it listens. It stops when the test ends.
func startHTTPWorker(t *testing.T, environ []string, token string) *httpWorker {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	w := &httpWorker{token: token, stop: stop, done: make(chan int, 1)}
	go func() {
		w.done <- run(ctx, []string{"worker"}, &env{stdin: strings.NewReader(""), stdout: &w.stdout, stderr: &w.stderr, environ: environ})
	}()
	addrRE := regexp.MustCompile(`http_addr=(\S+)`)
	require.Eventually(t, func() bool {
		if m := addrRE.FindStringSubmatch(w.stderr.String()); m != nil {
			w.base = "http://" + m[1]
			return true
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "worker never started: %s", &w.stderr)
	return w
}

// call sends an authenticated request and returns the status and body.
func (w *httpWorker) call(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, w.base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+w.token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, data
}

// shutdown stops the worker as SIGTERM would and requires a clean exit
// within 30 s.
func (w *httpWorker) shutdown(t *testing.T) {
	t.Helper()
	w.stop()
	select {
	case code := <-w.done:
		require.Equal(t, 0, code, w.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop")
	}
}
