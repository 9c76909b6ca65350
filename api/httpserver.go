package api

import (
	"cmp"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of HTTPServerConfig.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxConns          = 1024
)

// HTTPServerConfig bounds what clients may hold of the worker's HTTP
// server: connections that send nothing, send slowly or sit idle are
// closed, and a client opening connections by the thousand cannot exhaust
// the process's file descriptors (which the database pool, S3 and CRM
// deliveries need too) nor starve /healthz and /readyz.
type HTTPServerConfig struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included (a 16 MiB
	// call record needs at least 280 KB/s). Default 60s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response. Default 60s.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long. Default
	// 30s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers. Default 64 KiB.
	MaxHeaderBytes int
	// MaxConns is the most connections open at once. A connection beyond
	// it makes room by closing the connection idle the longest (or, when
	// none is idle, one that has sent nothing for a second); when every
	// connection is busy, the new one is closed at once. Default 1024.
	MaxConns int
}

// NewHTTPServer is an http.Server for h with cfg's bounds.
func NewHTTPServer(h http.Handler, cfg HTTPServerConfig) *http.Server {
	guard := &connGuard{max: cmp.Or(cfg.MaxConns, DefaultMaxConns), conns: map[net.Conn]connEntry{}}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cmp.Or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       cmp.Or(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      cmp.Or(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    cmp.Or(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes),
		ConnState:         guard.track,
	}
}

// connGuard keeps the number of open connections at most max, from the
// server's connection state changes.
type connGuard struct {
	max   int
	mu    sync.Mutex
	conns map[net.Conn]connEntry
}

type connEntry struct {
	state http.ConnState
	since time.Time
}

// staleNew is how long a connection may have sent nothing before it may be
// closed to make room.
const staleNew = time.Second

func (g *connGuard) track(c net.Conn, state http.ConnState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(g.conns, c)
		return
	case http.StateNew:
		if len(g.conns) >= g.max {
			victim := g.evictable(time.Now())
			if victim == nil {
				// Every connection is busy: refuse this one.
				_ = c.Close()
				return
			}
			delete(g.conns, victim)
			_ = victim.Close()
		}
	}
	g.conns[c] = connEntry{state: state, since: time.Now()}
}

// evictable is the connection idle the longest, else the oldest that has
// sent nothing for staleNew, else nil.
func (g *connGuard) evictable(now time.Time) net.Conn {
	var idle, fresh net.Conn
	var idleSince, freshSince time.Time
	for c, e := range g.conns {
		switch {
		case e.state == http.StateIdle && (idle == nil || e.since.Before(idleSince)):
			idle, idleSince = c, e.since
		case e.state == http.StateNew && now.Sub(e.since) >= staleNew && (fresh == nil || e.since.Before(freshSince)):
			fresh, freshSince = c, e.since
		}
	}
	if idle != nil {
		return idle
	}
	return fresh
}
