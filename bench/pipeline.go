package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// runPipeline measures, with a model that answers at once, how many calls
// per second go from ingest to a delivered webhook (analysis, QC and one
// delivery each), and how many jobs per second a bare River client works
// when every job does nothing, inserted the same way on the same database;
// the ratio of the two says how many no-op jobs one call costs. Target:
// ratio >= 0.2.
func runPipeline(ctx context.Context, e *env) (*result, error) {
	noopRate, noopNote, err := measureNoop(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("no-op jobs: %w", err)
	}
	callRate, callNote, err := measurePipeline(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	ratio := callRate / noopRate
	return &result{
		Metrics: []metric{
			{Name: "bare River no-op jobs/s", Value: noopRate, Unit: "jobs/s", Decimals: 0},
			{Name: "pipeline calls/s (ingest to webhook delivered)", Value: callRate, Unit: "calls/s", Decimals: 0},
			{Name: "ratio calls/s / no-op jobs/s", Value: ratio, Decimals: 3, Target: atLeast(0.2)},
		},
		Notes: []string{
			noopNote,
			callNote,
			fmt.Sprintf("One call costs %.1f no-op jobs (1/ratio). Both sides run with concurrency %d so that River's "+
				"fetch limiter (at most MaxWorkers jobs per queue per 100 ms FetchCooldown) caps neither: at the "+
				"worker's default of 16 the no-op side would be capped at 160 jobs/s.", 1/ratio, e.opts.pipelineConcurrency),
			"The fake model and the webhook receiver run in the benchmark process, sharing the CPUs with the worker " +
				"and PostgreSQL; their part is in the CPU profile (-cpuprofile).",
		},
	}, nil
}

// noopArgs is a job that does nothing.
type noopArgs struct {
	Seq int `json:"seq"`
}

func (noopArgs) Kind() string { return "bench.noop" }

// noopWorker works noopArgs by doing nothing.
type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// noopProgress counts completed and failed jobs.
const noopProgress = `
	SELECT count(*) FILTER (WHERE state = 'completed'),
	       count(*) FILTER (WHERE state IN ('discarded', 'cancelled', 'retryable'))
	FROM river_job`

// measureNoop inserts e.opts.noopJobs no-op jobs, one transaction each on
// the ingesters' goroutines through an insert-only client on a pool of its
// own, as the pipeline's calls are ingested, for a running River client
// with the pipeline's settings (River's defaults as postcall's worker keeps
// them, one queue as wide as the analysis queue), and returns jobs/s from
// the first insert to the last completion.
func measureNoop(ctx context.Context, e *env) (float64, string, error) {
	s, err := e.db.newSchema(ctx, "noop")
	if err != nil {
		return 0, "", err
	}
	defer s.close(ctx)
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{})
	client, err := river.NewClient(riverpgxv5.New(s.Pool), &river.Config{
		Logger: e.log, Schema: s.Name, Workers: workers,
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: e.opts.pipelineConcurrency}},
	})
	if err != nil {
		return 0, "", err
	}
	if err := client.Start(ctx); err != nil {
		return 0, "", err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	}()
	insertPool, err := s.ingestPool(ctx)
	if err != nil {
		return 0, "", err
	}
	defer insertPool.Close()
	inserter, err := river.NewClient(riverpgxv5.New(insertPool), &river.Config{Logger: e.log, Schema: s.Name})
	if err != nil {
		return 0, "", err
	}

	n := e.opts.noopJobs
	stopProfiles, err := e.startProfiles("no-op, per job", false)
	if err != nil {
		return 0, "", err
	}
	cpu := startCPU()
	start := time.Now()
	err = forEach(ctx, n, e.opts.ingesters, func(ctx context.Context, i int) error {
		_, err := inserter.Insert(ctx, noopArgs{Seq: i}, nil)
		return err
	})
	inserted := time.Since(start)
	var end time.Time
	if err == nil {
		end, err = waitCounts(ctx, s.Pool, noopProgress, n, pollInterval)
	}
	if err != nil {
		stopProfiles(0)
		return 0, "", err
	}
	elapsed := end.Sub(start)
	cpuNote := cpu.describe("other processes")
	stopProfiles(n)
	rate := float64(n) / elapsed.Seconds()
	e.progress("no-op: %d jobs in %s (inserted in %s): %.0f jobs/s.%s",
		n, seconds(elapsed), seconds(inserted), rate, cpuNote)
	return rate, fmt.Sprintf(
		"No-op: %d jobs, each inserted in its own transaction by %d goroutines (insert-only client, pool of its own), "+
			"worked by a running client (one queue, %d workers, River's default fetch settings as in postcall's "+
			"worker, %s); %s from the first insert until all were completed (inserts done after %s).",
		n, e.opts.ingesters, e.opts.pipelineConcurrency, s.poolDescription(), seconds(elapsed),
		seconds(inserted)) + cpuNote, nil
}

// measurePipeline ingests e.opts.pipelineCalls calls into a running worker
// whose model answers at once and returns calls/s from the first ingest to
// the last delivered webhook. With -cpuprofile and -sqlprofile it profiles
// this part.
func measurePipeline(ctx context.Context, e *env) (float64, string, error) {
	s, err := e.db.newSchema(ctx, "pipeline")
	if err != nil {
		return 0, "", err
	}
	defer s.close(ctx)
	recv := newReceiver()
	defer recv.close()
	model, stopModel := fakeModel()
	defer stopModel()
	if err := applyPlan(ctx, s.Pool, recv.URL()); err != nil {
		return 0, "", err
	}
	w, err := startWorker(ctx, workerConfig{
		Pool: s.Pool, Schema: s.Name, ModelURL: model.URL, ModelKey: model.APIKey,
		Concurrency: e.opts.pipelineConcurrency, Logger: e.log,
	})
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = w.stop(ctx) }()
	enq, closeIngest, err := s.ingester(ctx, e.log)
	if err != nil {
		return 0, "", err
	}
	defer closeIngest()
	n := e.opts.pipelineCalls
	recs, err := makeCalls("pipeline", n, 1, firstCallStart())
	if err != nil {
		return 0, "", err
	}

	stopProfiles, err := e.startProfiles("pipeline, per call", true)
	if err != nil {
		return 0, "", err
	}
	cpu := startCPU()
	t, err := ingestAndWait(ctx, e, enq, s, recs, pollInterval)
	if err != nil {
		stopProfiles(0)
		return 0, "", err
	}
	cpuNote := cpu.describe("other processes")
	stopProfiles(n)
	rate := float64(n) / t.Done.Seconds()
	e.progress("pipeline: %d calls in %s (ingested in %s): %.0f calls/s.%s",
		n, seconds(t.Done), seconds(t.Ingested), rate, cpuNote)
	if got := model.Len(); got != 2*n {
		return 0, "", fmt.Errorf("%d calls made %d model requests, want %d", n, got, 2*n)
	}
	return rate, fmt.Sprintf(
		"Pipeline: %d calls ingested (one transaction each) by %d goroutines (insert-only client, pool of its own), "+
			"processed by a running worker (run and LLM concurrency %d, %s), model answering at once, one webhook "+
			"delivery per call to a local receiver; %s from the first ingest until every delivery was delivered "+
			"(ingest done after %s).",
		n, e.opts.ingesters, e.opts.pipelineConcurrency, s.poolDescription(), seconds(t.Done),
		seconds(t.Ingested)) + cpuNote, nil
}

// startProfiles starts the CPU profile (-cpuprofile) when withCPU, and
// resets the SQL profile (-sqlprofile). The function it returns stops them
// and, given the units of work done (0: failed), prints the SQL profile
// under title.
func (e *env) startProfiles(title string, withCPU bool) (func(units int), error) {
	var f *os.File
	if withCPU && e.opts.cpuProfile != "" {
		var err error
		if f, err = os.Create(e.opts.cpuProfile); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	if e.db.tracer != nil {
		e.db.tracer.reset()
	}
	return func(units int) {
		if f != nil {
			pprof.StopCPUProfile()
			_ = f.Close()
			e.progress("CPU profile written to %s (go tool pprof -top %s)", e.opts.cpuProfile, e.opts.cpuProfile)
		}
		if e.db.tracer != nil && units > 0 {
			e.db.tracer.write(e.out, title, units, 25)
		}
	}, nil
}
