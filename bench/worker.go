package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/crm"
	"github.com/postcall/postcall/jobs"
	"github.com/postcall/postcall/pipeline"
)

// Client-side LLM limits of the benchmark's worker: far above what the
// fake model can be asked, so that only the concurrency cap binds, while
// the token buckets still run as they do in production.
const (
	benchRPM = 10_000_000
	benchTPM = 2_000_000_000
)

// workerConfig is a postcall worker as `postcall worker` builds it:
// analysis, QC and deliveries on River, the LLM client with its limits, CRM
// deliveries allowed to reach loopback (the local receiver).
type workerConfig struct {
	Pool   *pgxpool.Pool
	Schema string
	// ModelURL and ModelKey address the fake model.
	ModelURL, ModelKey string
	// Concurrency is the LLM client's concurrency cap and River's analysis
	// and QC concurrency, as POSTCALL_LLM_CONCURRENCY sets both, and the
	// delivery concurrency (POSTCALL_DELIVERY_CONCURRENCY), so that the
	// deliveries queue keeps up with the runs.
	Concurrency int
	Logger      *slog.Logger
}

// worker is a started worker.
type worker struct {
	Client *river.Client[pgx.Tx]
}

// newPipeline returns the pipeline the worker runs, or, with no model URL,
// the one an ingesting process holds.
func newPipeline(cfg workerConfig) (*pipeline.Service, error) {
	p := &pipeline.Service{
		Logger:     cfg.Logger,
		Deliveries: &pipeline.Deliveries{Deliverer: crm.NewDeliverer(true), Logger: cfg.Logger},
	}
	if cfg.ModelURL == "" {
		return p, nil
	}
	model, err := analysis.NewOpenAI(analysis.OpenAIConfig{
		BaseURL: cfg.ModelURL, APIKey: cfg.ModelKey,
		RPM: benchRPM, TPM: benchTPM, Concurrency: cfg.Concurrency,
	})
	if err != nil {
		return nil, fmt.Errorf("LLM client: %w", err)
	}
	p.Analyzer = &analysis.Analyzer{Model: model, DefaultModel: "gpt-4.1-mini"}
	return p, nil
}

// startWorker starts a working River client on cfg's schema.
func startWorker(ctx context.Context, cfg workerConfig) (*worker, error) {
	p, err := newPipeline(cfg)
	if err != nil {
		return nil, err
	}
	client, err := jobs.NewClient(jobs.ClientConfig{
		Pool: cfg.Pool, Pipeline: p, Work: true, RunConcurrency: cfg.Concurrency, DeliveryConcurrency: cfg.Concurrency,
		Schema:          cfg.Schema,
		SoftStopTimeout: 5 * time.Second, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	return &worker{Client: client}, nil
}

// newEnqueuer is an insert-only client's enqueuer, as `postcall ingest`
// builds it.
func newEnqueuer(cfg workerConfig) (*jobs.Enqueuer, error) {
	cfg.ModelURL = ""
	p, err := newPipeline(cfg)
	if err != nil {
		return nil, err
	}
	client, err := jobs.NewClient(jobs.ClientConfig{Pool: cfg.Pool, Pipeline: p, Schema: cfg.Schema, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &jobs.Enqueuer{Pool: cfg.Pool, Client: client, Pipeline: p}, nil
}

// stop stops the worker, letting running jobs finish.
func (w *worker) stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := w.Client.Stop(ctx); err != nil {
		return fmt.Errorf("stop worker: %w", err)
	}
	return nil
}

// workerCommand is the subcommand that runs the worker side of a scenario
// in a child process, so that its memory is measured apart from the fake
// model and the ingesting side.
const workerCommand = "worker"

// runWorkerCommand is the child process: it starts a worker as flags say,
// prints "ready" on stdout and works until its stdin closes, then stops and
// prints "peak-rss N", its own peak resident set size in bytes (0 where the
// platform does not tell).
func runWorkerCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(workerCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("db", "", "database URL")
	schemaName := fs.String("schema", "", "schema")
	maxConns := fs.Int("pool-max-conns", 0, "pool size; 0: the worker's default")
	modelURL := fs.String("model-url", "", "LLM base URL")
	modelKey := fs.String("model-key", "", "LLM API key")
	concurrency := fs.Int("concurrency", 16, "LLM and run concurrency")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := poolConfig(*url, *schemaName, int32(*maxConns))
	if err != nil {
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	w, err := startWorker(ctx, workerConfig{
		Pool: pool, Schema: *schemaName, ModelURL: *modelURL, ModelKey: *modelKey,
		Concurrency: *concurrency, Logger: newLogger(stderr),
	})
	if err != nil {
		return err
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := w.stop(ctx); err != nil {
		return err
	}
	fmt.Printf("peak-rss %d\n", selfPeakRSS())
	return nil
}

// childWorker is a worker running in a child process.
type childWorker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

// startChildWorker runs this program's worker subcommand with args and
// waits until it is ready.
func startChildWorker(ctx context.Context, args ...string) (*childWorker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the benchmark's executable: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{workerCommand}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker process: %w", err)
	}
	c := &childWorker{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout)}
	line, err := c.stdout.ReadString('\n')
	if err != nil || line != "ready\n" {
		_, _ = c.stop()
		return nil, fmt.Errorf("worker process did not start (%q, %v)", line, err)
	}
	return c, nil
}

// childStats is what a child process used over its life.
type childStats struct {
	// PeakRSS is the peak resident set size in bytes; 0 when the platform
	// does not report it.
	PeakRSS int64
	// CPU is user and system time.
	CPU time.Duration
}

// stop ends the child's work and returns what it used.
func (c *childWorker) stop() (childStats, error) {
	_ = c.stdin.Close()
	// The child's last line is its own peak RSS, read before Wait closes
	// the pipe, on the goroutine the timeout below guards: a child that
	// hangs is killed, which ends the read.
	var reported int64
	done := make(chan error, 1)
	go func() {
		if rest, err := io.ReadAll(c.stdout); err == nil {
			_, _ = fmt.Sscanf(strings.TrimSpace(string(rest)), "peak-rss %d", &reported)
		}
		done <- c.cmd.Wait()
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(45 * time.Second):
		_ = c.cmd.Process.Kill()
		err = errors.Join(errors.New("worker process did not stop in time"), <-done)
	}
	if err != nil {
		return childStats{}, fmt.Errorf("worker process: %w", err)
	}
	ps := c.cmd.ProcessState
	// wait4's ru_maxrss is no use on Linux: a child made by fork and exec
	// inherits the parent's peak at the exec (the benchmark's own, with the
	// fake model's request log), so the child's own figure comes first.
	rss := reported
	if rss == 0 {
		rss = peakRSS(ps)
	}
	return childStats{PeakRSS: rss, CPU: ps.UserTime() + ps.SystemTime()}, nil
}

// childArgs are the flags of the worker subcommand.
func childArgs(url, schemaName string, maxConns int32, modelURL, modelKey string, concurrency int) []string {
	return []string{
		"-db", url, "-schema", schemaName, "-pool-max-conns", strconv.Itoa(int(maxConns)),
		"-model-url", modelURL, "-model-key", modelKey, "-concurrency", strconv.Itoa(concurrency),
	}
}
