package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/postcall/postcall/analysis/openaitest"
)

// requestsPerCall is what a call costs the model: one analysis and one QC
// request (valid answers need no repair request).
const requestsPerCall = 2

// runModelBound measures throughput when the model is the bottleneck: every
// request takes e.opts.modelLatency and the worker may have
// e.opts.modelConcurrency in flight, so no worker can do better than
// C / (latency x requests per call) calls/s. Target: >= 95% of that limit,
// with the worker's peak RSS <= 150 MB. The worker runs in a child process
// (this program's worker subcommand) so that its memory is measured alone:
// the fake model, which keeps every request, and the ingesting side stay in
// this process.
func runModelBound(ctx context.Context, e *env) (*result, error) {
	s, err := e.db.newSchema(ctx, "model")
	if err != nil {
		return nil, err
	}
	defer s.close(ctx)
	recv := newReceiver()
	defer recv.close()
	latency, c := e.opts.modelLatency, e.opts.modelConcurrency
	model, stopModel := fakeModel(openaitest.WithDefault(openaitest.Slow(latency, openaitest.Valid())))
	defer stopModel()
	if err := applyPlan(ctx, s.Pool, recv.URL()); err != nil {
		return nil, err
	}
	limit := float64(c) / (latency.Seconds() * requestsPerCall)
	n := int(math.Round(limit * e.opts.modelDuration.Seconds()))
	recs, err := makeCalls("model", n, 2, firstCallStart())
	if err != nil {
		return nil, err
	}
	enq, err := newEnqueuer(ctx, workerConfig{Pool: s.Pool, Schema: s.Name, Logger: e.log})
	if err != nil {
		return nil, err
	}

	child, err := startChildWorker(ctx, childArgs(e.db.url, s.Name, e.db.maxConns, model.URL, model.APIKey, c)...)
	if err != nil {
		return nil, err
	}
	cpu := startCPU()
	// Polling every 50 ms adds at most 0.1% to a 60 s run and keeps the
	// poll's own load negligible.
	t, runErr := ingestAndWait(ctx, e, enq, s, recs, 50*time.Millisecond)
	elapsed := t.Done
	cpuNote := cpu.describe("other processes (the worker among them)")
	stats, stopErr := child.stop()
	switch {
	case runErr != nil:
		return nil, runErr
	case stopErr != nil:
		return nil, stopErr
	}
	rate := float64(n) / elapsed.Seconds()
	perCall := float64(model.Len()) / float64(n)
	e.progress("model-bound: %d calls in %s: %.1f calls/s of a %.1f calls/s limit; worker peak RSS %.1f MB, CPU %s.%s",
		n, seconds(elapsed), rate, limit, mb(stats.PeakRSS), seconds(stats.CPU), cpuNote)

	metrics := []metric{
		{Name: fmt.Sprintf("calls/s (limit C/(latency x %d) = %.0f)", requestsPerCall, limit), Value: rate, Unit: "calls/s", Decimals: 1},
		{Name: "share of the limit", Value: 100 * rate / limit, Unit: "%", Decimals: 1, Target: atLeast(95)},
	}
	rssNote := "Peak RSS is the worker child's own high-water mark (VmHWM, which it reports as it exits), over its whole " +
		"life: start, the run and the drain on stop. (wait4's ru_maxrss would report the benchmark process's own peak: a " +
		"child started by fork and exec inherits its parent's at the exec.)"
	if stats.PeakRSS > 0 {
		metrics = append(metrics, metric{Name: "worker peak RSS", Value: mb(stats.PeakRSS), Unit: "MB", Decimals: 1, Target: atMost(150)})
	} else {
		rssNote = "Peak RSS: not reported on this platform."
	}
	return &result{
		Metrics: metrics,
		Notes: []string{
			fmt.Sprintf("%d calls (%s at the limit) ingested by %d goroutines in the benchmark process; the worker "+
				"(run and LLM concurrency C = %d, RPM/TPM limits far above use, its own %s) in a child process; every model "+
				"request answered after %s; one webhook delivery per call; %s from the first ingest until every "+
				"delivery was delivered (polled every 50 ms). %.2f model requests per call. The worker used %s of CPU "+
				"in all (%.0f%% of the machine's CPUs over the run).",
				n, seconds(e.opts.modelDuration), e.opts.ingesters, c, s.poolDescription(), latency, seconds(elapsed), perCall,
				seconds(stats.CPU), 100*stats.CPU.Seconds()/(elapsed.Seconds()*float64(runtime.NumCPU()))) + cpuNote,
			rssNote + " It is the benchmark binary's worker subcommand, which builds the worker as `postcall worker` " +
				"does (internal/app: River client, OpenAI client, CRM deliveries, retention jobs) without its HTTP server.",
		},
	}, nil
}

// mb converts bytes to MB (10^6 bytes).
func mb(bytes int64) float64 { return float64(bytes) / 1e6 }
