package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/pipeline"
)

// scenario is one benchmark of a run. The runner takes a list of them
// (scenarios()), so adding a benchmark is adding an entry.
type scenario struct {
	// Name selects the scenario with -run.
	Name string
	// Title heads its rows and notes.
	Title string
	// Run measures and returns the scenario's metrics. It works in a schema
	// of its own (env.db.newSchema) and leaves nothing running.
	Run func(ctx context.Context, e *env) (*result, error)
}

// scenarios lists every scenario in the order a run takes them.
func scenarios() []scenario {
	return []scenario{
		{Name: "pipeline", Title: "Pipeline throughput", Run: runPipeline},
		{Name: "model", Title: "Model-bound throughput", Run: runModelBound},
		{Name: "cache", Title: "Prompt-cache efficiency", Run: runCache},
		{Name: "purge", Title: "Purge", Run: runPurge},
		{Name: "limits", Title: "Rate limits and output budgets", Run: runLimits},
		{Name: "redact", Title: "Transcript redaction", Run: runRedact},
		{Name: "evidence", Title: "Evidence token overhead", Run: runEvidence},
		{Name: "console", Title: "Console page server time", Run: runConsole},
		{Name: "batch", Title: "Batch API re-analysis", Run: runBatch},
	}
}

// env is what a scenario runs with.
type env struct {
	opts options
	db   *database
	// log receives the worker's warnings and errors.
	log *slog.Logger
	// out receives progress lines and profiles.
	out io.Writer
}

// progress prints a progress line.
func (e *env) progress(format string, args ...any) {
	fmt.Fprintf(e.out, "  "+format+"\n", args...)
}

// result is what a scenario measured.
type result struct {
	Metrics []metric
	// Notes say what was run and how it was measured; they go with the
	// table into the results file.
	Notes []string
}

// metric is one row of the results table.
type metric struct {
	Name  string
	Value float64
	// Unit is printed after the value ("calls/s", "%", "MB").
	Unit string
	// Decimals of the printed value.
	Decimals int
	// Target is nil for a number reported for context.
	Target *target
}

// target is the bound a metric is compared to.
type target struct {
	// AtMost is true for an upper bound (memory), false for a lower bound.
	AtMost bool
	Bound  float64
}

// atLeast and atMost make targets.
func atLeast(v float64) *target { return &target{Bound: v} }
func atMost(v float64) *target  { return &target{AtMost: true, Bound: v} }

// met reports whether the metric meets its target.
func (m metric) met() bool {
	if m.Target.AtMost {
		return m.Value <= m.Target.Bound
	}
	return m.Value >= m.Target.Bound
}

func (m metric) value() string { return formatNumber(m.Value, m.Decimals, m.Unit) }

func (m metric) target() string {
	if m.Target == nil {
		return ""
	}
	op := ">="
	if m.Target.AtMost {
		op = "<="
	}
	return op + " " + formatNumber(m.Target.Bound, m.Decimals, m.Unit)
}

// ratio is value / target as a percentage.
func (m metric) ratio() string {
	if m.Target == nil || m.Target.Bound == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%%", 100*m.Value/m.Target.Bound)
}

func (m metric) verdict() string {
	switch {
	case m.Target == nil:
		return ""
	case m.met():
		return "met"
	}
	return "MISSED"
}

func formatNumber(v float64, decimals int, unit string) string {
	s := fmt.Sprintf("%.*f", decimals, v)
	switch unit {
	case "":
		return s
	case "%":
		return s + "%"
	}
	return s + " " + unit
}

// scenarioResult is a scenario's result or its error.
type scenarioResult struct {
	scenario
	*result
	Err      error
	Duration time.Duration
}

// runScenarios runs the scenarios in order. A failing scenario is reported
// and the run goes on with the next one.
func runScenarios(ctx context.Context, e *env, list []scenario) []scenarioResult {
	out := make([]scenarioResult, 0, len(list))
	for _, s := range list {
		fmt.Fprintf(e.out, "%s (%s)\n", s.Title, s.Name)
		sctx, cancel := context.WithTimeout(ctx, e.opts.timeout)
		start := time.Now()
		res, err := s.Run(sctx, e)
		cancel()
		r := scenarioResult{scenario: s, result: res, Err: err, Duration: time.Since(start)}
		if err != nil {
			fmt.Fprintf(e.out, "  FAILED: %v\n", err)
		}
		out = append(out, r)
	}
	return out
}

// selectScenarios returns the scenarios named in a comma-separated list, or
// every one for "" or "all".
func selectScenarios(names string) ([]scenario, error) {
	all := scenarios()
	if names == "" || names == "all" {
		return all, nil
	}
	var list []scenario
	for name := range strings.SplitSeq(names, ",") {
		found := false
		for _, s := range all {
			if s.Name == strings.TrimSpace(name) {
				list, found = append(list, s), true
			}
		}
		if !found {
			valid := make([]string, len(all))
			for i, s := range all {
				valid[i] = s.Name
			}
			return nil, fmt.Errorf("-run: no scenario %q (scenarios: %s)", name, strings.Join(valid, ", "))
		}
	}
	return list, nil
}

// forEach calls fn for 0..n-1 on workers goroutines, each index once, and
// returns the first error.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// ingestAll ingests the records on e.opts.ingesters goroutines, as a
// platform sending calls as they end would, and checks that each one was
// stored and enqueued for the model.
func ingestAll(ctx context.Context, e *env, enq *pipeline.Calls, recs []*call.Record) error {
	return forEach(ctx, len(recs), e.opts.ingesters, func(ctx context.Context, i int) error {
		res, err := enq.Ingest(ctx, recs[i])
		switch {
		case err != nil:
			return err
		case res.Duplicate || res.Auto != nil || len(res.Runs) != 2:
			return fmt.Errorf("call %d was not enqueued for analysis and QC", i)
		}
		return nil
	})
}

// timing is how long a measured run took from its first ingest (or insert).
type timing struct {
	// Ingested is when the last call was ingested.
	Ingested time.Duration
	// Done is when the last call was done (its delivery delivered), as seen
	// by polling.
	Done time.Duration
}

// ingestAndWait ingests recs and waits until every call's webhook was
// delivered, polling every interval.
func ingestAndWait(ctx context.Context, e *env, enq *pipeline.Calls, s *schema, recs []*call.Record, interval time.Duration) (timing, error) {
	start := time.Now()
	if err := ingestAll(ctx, e, enq, recs); err != nil {
		return timing{}, err
	}
	ingested := time.Since(start)
	end, err := waitCounts(ctx, s.Pool, deliveredProgress, len(recs), interval)
	return timing{Ingested: ingested, Done: end.Sub(start)}, err
}

// deliveredProgress counts calls whose webhook delivery was delivered, and
// failures: failed calls and deliveries that failed or were disabled.
const deliveredProgress = `
	SELECT (SELECT count(*) FROM deliveries WHERE status = 'delivered'),
	       (SELECT count(*) FROM calls WHERE state = 'failed')
	       + (SELECT count(*) FROM deliveries WHERE status IN ('failed', 'disabled'))`

// pollInterval is how often completion is polled; the error it adds to a
// measured duration is at most this.
const pollInterval = 20 * time.Millisecond
