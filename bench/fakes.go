package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/postcall/postcall/analysis/openaitest"
)

// cleanups is the testing.TB that openaitest.NewServer needs outside a
// test. NewServer calls only Helper and Cleanup, which it implements; the
// cleanups run on run(). Any other method of testing.TB would panic on the
// nil embedded interface, which is there only because testing.TB cannot be
// implemented outside package testing otherwise.
type cleanups struct {
	testing.TB
	fns []func()
}

// Helper implements testing.TB.
func (c *cleanups) Helper() {}

// Cleanup implements testing.TB.
func (c *cleanups) Cleanup(f func()) { c.fns = append(c.fns, f) }

// run runs the cleanups, last registered first.
func (c *cleanups) run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}

// fakeModel starts an openaitest server (valid answers generated from each
// request's schema) and returns it with its stop function. The server keeps
// every request it received, which the cache scenario reads.
func fakeModel(opts ...openaitest.Option) (*openaitest.Server, func()) {
	c := &cleanups{}
	srv := openaitest.NewServer(c, opts...)
	return srv, c.run
}

// receiver is a webhook endpoint that accepts every delivery at once. It
// does not verify signatures: its CPU would count against the pipeline.
type receiver struct {
	srv      *httptest.Server
	received atomic.Int64
}

func newReceiver() *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	return r
}

// URL is where the agent's webhook integration delivers.
func (r *receiver) URL() string { return r.srv.URL + "/hooks/postcall" }

func (r *receiver) close() { r.srv.Close() }
