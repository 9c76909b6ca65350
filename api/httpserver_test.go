package api_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/api"
)

func TestHTTPServerDefaults(t *testing.T) {
	t.Parallel()
	srv := api.NewHTTPServer(http.NotFoundHandler(), api.HTTPServerConfig{})
	require.Equal(t, 10*time.Second, srv.ReadHeaderTimeout)
	require.Equal(t, 60*time.Second, srv.ReadTimeout)
	require.Equal(t, 60*time.Second, srv.WriteTimeout)
	require.Equal(t, 30*time.Second, srv.IdleTimeout, "idle connections were never closed")
	require.Equal(t, 64<<10, srv.MaxHeaderBytes)
	require.NotNil(t, srv.ConnState, "connections are counted (MaxConns, default 1024)")
}

// TestHTTPServerHealthSurvivesAConnectionFlood: a client holding idle
// keep-alive connections (one GET /healthz each, about 10,100 of them in
// the probe) exhausted the worker's file descriptors and /healthz timed out.
// At the cap, a new connection closes the one idle the longest, so a health
// check still gets through; connections that send nothing make room too.
func TestHTTPServerHealthSurvivesAConnectionFlood(t *testing.T) {
	t.Parallel()
	// A cap of 8 instead of the default 1024: the same rule, with a flood a
	// test can open quickly.
	const maxConns = 8
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := setup(t)
	srv := api.NewHTTPServer(b.server.Handler(), api.HTTPServerConfig{MaxConns: maxConns})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()

	for range 3 * maxConns {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			res.Body.Close()
		}
		// The connection now sits idle, kept alive.
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Get("http://" + addr + "/healthz")
	require.NoError(t, err, "health check during an idle-connection flood")
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	// Connections that send nothing at all.
	for range 2 * maxConns {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
	}
	time.Sleep(1100 * time.Millisecond)
	res, err = client.Get("http://" + addr + "/healthz")
	require.NoError(t, err, "health check during a silent-connection flood")
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
}
