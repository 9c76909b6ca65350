package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// sqlProfile is a pgx query tracer that sums, per statement, how often it
// ran and how long it took as the client saw it (round trip, server time
// and waits on locks included). It is what -sqlprofile installs to show
// which statements and transactions a scenario's time goes to; it holds no
// arguments.
type sqlProfile struct {
	mu    sync.Mutex
	stats map[string]*sqlStat
}

type sqlStat struct {
	name  string
	count int
	total time.Duration
	max   time.Duration
}

type sqlStartKey struct{}

type sqlStart struct {
	name string
	at   time.Time
}

func newSQLProfile() *sqlProfile { return &sqlProfile{stats: map[string]*sqlStat{}} }

// TraceQueryStart implements pgx.QueryTracer.
func (p *sqlProfile) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, sqlStartKey{}, sqlStart{name: statementName(data.SQL), at: time.Now()})
}

// TraceQueryEnd implements pgx.QueryTracer.
func (p *sqlProfile) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	start, ok := ctx.Value(sqlStartKey{}).(sqlStart)
	if !ok {
		return
	}
	d := time.Since(start.at)
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats[start.name]
	if s == nil {
		s = &sqlStat{name: start.name}
		p.stats[start.name] = s
	}
	s.count++
	s.total += d
	s.max = max(s.max, d)
}

// longest returns the statement that took longest once, and that time.
func (p *sqlProfile) longest() (string, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var name string
	var longest time.Duration
	for _, s := range p.stats {
		if s.max > longest {
			name, longest = s.name, s.max
		}
	}
	return name, longest
}

// reset forgets everything recorded so far.
func (p *sqlProfile) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats = map[string]*sqlStat{}
}

// write prints the top statements by total time, with their count per
// unit of work (a call, a job).
func (p *sqlProfile) write(w io.Writer, title string, units int, top int) {
	p.mu.Lock()
	stats := make([]sqlStat, 0, len(p.stats))
	var total time.Duration
	var count int
	for _, s := range p.stats {
		stats = append(stats, *s)
		total += s.total
		count += s.count
	}
	p.mu.Unlock()
	slices.SortFunc(stats, func(a, b sqlStat) int { return cmp.Compare(b.total, a.total) })
	fmt.Fprintf(w, "\nSQL profile, %s: %d statements (%.1f per unit), %s client-side in total\n",
		title, count, float64(count)/float64(max(units, 1)), total.Round(time.Millisecond))
	fmt.Fprintf(w, "%8s %8s %8s %8s %6s  %s\n", "count", "/unit", "total", "mean", "share", "statement")
	for _, s := range stats[:min(top, len(stats))] {
		fmt.Fprintf(w, "%8d %8.2f %8s %8s %5.1f%%  %s\n", s.count, float64(s.count)/float64(max(units, 1)),
			s.total.Round(time.Millisecond), (s.total / time.Duration(s.count)).Round(time.Microsecond),
			100*float64(s.total)/float64(max(total, 1)), s.name)
	}
}

// statementName identifies a statement without its arguments: River's
// queries by their sqlc name, others by their first words.
func statementName(sql string) string {
	sql = strings.TrimSpace(sql)
	if rest, ok := strings.CutPrefix(sql, "-- name: "); ok {
		name, _, _ := strings.Cut(rest, " ")
		return "river " + name
	}
	s := strings.Join(strings.Fields(sql), " ")
	const width = 110
	if len(s) > width {
		s = s[:width] + "..."
	}
	return s
}
