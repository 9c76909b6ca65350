// Command bench is postcall's benchmark, `make bench`. From one run on this
// machine it prints a table, and writes it with the machine's description
// to bench/RESULTS.md:
//
//   - pipeline: calls/s from ingest to a delivered webhook (analysis, QC and
//     one delivery each) with a model that answers at once, against the
//     jobs/s of a bare River no-op job on the same database (target: ratio
//     >= 0.2);
//   - model: calls/s with 1 s of model latency and a concurrency cap C,
//     against the limit C / (latency x 2 requests per call) (target: >= 95%),
//     and the worker's peak RSS (target: <= 150 MB), the worker running in a
//     child process;
//   - cache: the share of prompt tokens read from the cache over 500 calls of
//     one agent, against a fake applying OpenAI's caching rule, compared to
//     the ideal (target: >= 95% of it);
//   - limits: against a fake provider enforcing RPM and TPM as OpenAI does,
//     tokens accepted per (simulated) minute against its limit (target >=
//     90%) and the share of requests answered 429 (target < 1%), for one
//     worker and three sharing the limit; runs per minute with sized output
//     budgets against the old fixed max_tokens of 4,096;
//   - redact: redaction of a ten-minute transcript with every entity on
//     (target: < 1 ms), against JSON-encoding it;
//   - evidence: the tokens evidence adds to a request of the example sales
//     agent (static prefix and a typical answer), reported.
//   - batch: a bulk re-analysis through the Batch API end to end (time,
//     requests each way) and whether its results equal the live ones
//     (target: all of them, and no live request).
//
// Numbers are reported, never asserted. Everything runs against a real
// PostgreSQL (-db, default BENCH_DATABASE_URL or postcall_bench on
// 127.0.0.1, created when missing), each scenario in a fresh schema dropped
// at its end, with a fake OpenAI server (analysis/openaitest) and a local
// webhook receiver.
//
// Usage:
//
//	go run ./bench [-run pipeline,model,cache,purge,limits,redact,evidence,console,batch] [-cpuprofile FILE] [-sqlprofile] [flags]
//
// `go run ./bench -h` lists the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// defaultDatabaseURL is the benchmark's database unless BENCH_DATABASE_URL
// or -db says otherwise. It is not the test database: a run commits a lot.
const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postcall_bench?sslmode=disable"

// options are the benchmark's flags.
type options struct {
	dbURL   string
	run     string
	results string
	// resultsSet is true when -results was given.
	resultsSet   bool
	ingesters    int
	poolMaxConns int
	timeout      time.Duration
	cpuProfile   string
	sqlProfile   bool
	keep         bool

	pipelineCalls       int
	noopJobs            int
	pipelineConcurrency int

	modelConcurrency int
	modelLatency     time.Duration
	modelDuration    time.Duration

	cacheCalls       int
	cacheConcurrency int

	purgeCalls      int
	consoleCalls    int
	purgeIngestRate float64

	limitsWindow   time.Duration
	limitsDuration time.Duration

	batchCalls int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == workerCommand {
		err = runWorkerCommand(ctx, os.Args[2:], os.Stderr)
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run parses the flags, runs the selected scenarios, prints the table and
// writes the results file.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	list, err := selectScenarios(opts.run)
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, opts.dbURL, int32(opts.poolMaxConns), opts.keep)
	if err != nil {
		return err
	}
	defer db.close()
	if opts.sqlProfile {
		db.tracer = newSQLProfile()
	}
	m := describeMachine(ctx, db)
	fmt.Fprintf(stdout, "postcall benchmark: CPUs %s, %s, %s\n", m.cpus(), m.Go, m.PostgreSQL)
	if w := m.loadWarning(); w != "" {
		fmt.Fprintln(stdout, "WARNING:", w)
	}
	fmt.Fprintln(stdout)

	e := &env{opts: opts, db: db, log: newLogger(stderr), out: stdout}
	started := time.Now()
	results := runScenarios(ctx, e, list)
	fmt.Fprintln(stdout)
	printTable(stdout, results)

	switch {
	case opts.results == "":
	case len(list) < len(scenarios()) && !opts.resultsSet:
		fmt.Fprintf(stdout, "\nNot written to %s: not every scenario ran (give -results to write anyway)\n", opts.results)
	default:
		command := strings.Join(append([]string{"go run ./bench"}, args...), " ")
		if err := os.WriteFile(opts.results, resultsFile(m, command, started, results), 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		fmt.Fprintf(stdout, "\nResults written to %s\n", opts.results)
	}
	for _, r := range results {
		if r.Err != nil {
			return errors.New("a scenario failed")
		}
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := os.Getenv("BENCH_DATABASE_URL")
	if dbURL == "" {
		dbURL = defaultDatabaseURL
	}
	fs.StringVar(&o.dbURL, "db", dbURL, "PostgreSQL URL of the benchmark database, created when missing (env BENCH_DATABASE_URL)")
	fs.StringVar(&o.run, "run", "all", "comma-separated scenarios to run: pipeline, model, cache, purge, limits, redact, evidence, console")
	fs.StringVar(&o.results, "results", "bench/RESULTS.md", "results file to write; empty: none. Without this flag, only a run of every scenario writes it")
	fs.IntVar(&o.ingesters, "ingesters", 4, "goroutines ingesting calls (inserting no-op jobs) concurrently")
	fs.IntVar(&o.poolMaxConns, "pool-max-conns", 0, "connections per pool; 0: the worker's default (POSTCALL_DB_MAX_CONNS, 32)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "longest a scenario may take")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the pipeline measurement to this file")
	fs.BoolVar(&o.sqlProfile, "sqlprofile", false, "print the statements of the no-op and pipeline measurements by client-side time")
	fs.BoolVar(&o.keep, "keep", false, "keep each scenario's schema instead of dropping it")
	fs.IntVar(&o.pipelineCalls, "pipeline-calls", 2000, "pipeline: calls to process")
	fs.IntVar(&o.noopJobs, "noop-jobs", 25000, "pipeline: no-op jobs to work")
	fs.IntVar(&o.pipelineConcurrency, "pipeline-concurrency", 256, "pipeline: run and LLM concurrency (POSTCALL_LLM_CONCURRENCY), and the no-op queue's workers")
	fs.IntVar(&o.modelConcurrency, "model-concurrency", 256, "model: concurrency cap C (run and LLM concurrency)")
	fs.DurationVar(&o.modelLatency, "model-latency", time.Second, "model: latency of every model request")
	fs.DurationVar(&o.modelDuration, "model-duration", time.Minute, "model: calls to process, as the time they take at the limit")
	fs.IntVar(&o.cacheCalls, "cache-calls", 500, "cache: calls to process")
	fs.IntVar(&o.cacheConcurrency, "cache-concurrency", 16, "cache: LLM concurrency (the worker's default)")
	fs.IntVar(&o.purgeCalls, "purge-calls", 200_000, "purge: due calls to purge")
	fs.IntVar(&o.consoleCalls, "console-calls", 100_000, "console: calls in the database while pages are timed")
	fs.Float64Var(&o.purgeIngestRate, "purge-ingest-rate", 50, "purge: calls ingested per second while measuring ingest latency")
	fs.DurationVar(&o.limitsWindow, "limits-window", 10*time.Second, "limits: the fake provider's simulated minute; the warm-up is two")
	fs.DurationVar(&o.limitsDuration, "limits-duration", 40*time.Second, "limits: measured time after the warm-up")
	fs.IntVar(&o.batchCalls, "batch-calls", 1000, "batch: calls to re-analyse through the Batch API")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fs.Visit(func(f *flag.Flag) { o.resultsSet = o.resultsSet || f.Name == "results" })
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"ingesters", o.ingesters}, {"pipeline-calls", o.pipelineCalls}, {"noop-jobs", o.noopJobs},
		{"pipeline-concurrency", o.pipelineConcurrency}, {"model-concurrency", o.modelConcurrency},
		{"cache-calls", o.cacheCalls}, {"cache-concurrency", o.cacheConcurrency}, {"purge-calls", o.purgeCalls},
		{"console-calls", o.consoleCalls},
		{"batch-calls", o.batchCalls},
	} {
		if f.v <= 0 {
			return o, fmt.Errorf("-%s: %d must be positive", f.name, f.v)
		}
	}
	if o.poolMaxConns < 0 || o.modelLatency <= 0 || o.modelDuration <= 0 || o.timeout <= 0 || o.purgeIngestRate <= 0 ||
		o.limitsWindow <= 0 || o.limitsDuration <= 0 {
		return o, errors.New("-pool-max-conns must not be negative; -model-latency, -model-duration, -timeout, " +
			"-purge-ingest-rate, -limits-window and -limits-duration must be positive")
	}
	return o, nil
}

// newLogger logs the worker's warnings and errors; River and postcall log
// neither personal data nor secrets.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
