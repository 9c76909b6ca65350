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

	"github.com/postcall/postcall/config"
	"github.com/postcall/postcall/internal/app"
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
	// BatchPoll is POSTCALL_BATCH_POLL_INTERVAL; 0: the default.
	BatchPoll time.Duration
	Logger    *slog.Logger
}

// worker is a started worker.
type worker struct {
	Client *river.Client[pgx.Tx]
}

// newApp builds postcall as the commands do (internal/app), from the
// configuration the benchmark's worker would be given: the fake model, the
// limits above, deliveries allowed to reach the local receiver. Without a
// model URL it is what an ingesting process holds.
func newApp(ctx context.Context, cfg workerConfig, work bool) (*app.App, error) {
	env := []string{
		"POSTCALL_ALLOW_PRIVATE_TARGETS=1", "POSTCALL_SHUTDOWN_TIMEOUT=5s",
		fmt.Sprintf("POSTCALL_LLM_RPM=%d", benchRPM), fmt.Sprintf("POSTCALL_LLM_TPM=%d", benchTPM),
	}
	if cfg.ModelURL != "" {
		env = append(env, "OPENAI_BASE_URL="+cfg.ModelURL, "OPENAI_API_KEY="+cfg.ModelKey)
	}
	if cfg.Concurrency > 0 {
		env = append(env, fmt.Sprintf("POSTCALL_LLM_CONCURRENCY=%d", cfg.Concurrency),
			fmt.Sprintf("POSTCALL_DELIVERY_CONCURRENCY=%d", cfg.Concurrency))
	}
	if cfg.BatchPoll > 0 {
		env = append(env, "POSTCALL_BATCH_POLL_INTERVAL="+cfg.BatchPoll.String())
	}
	c, err := config.Load(env)
	if err != nil {
		return nil, err
	}
	return app.New(ctx, c, app.Options{Work: work, Pool: cfg.Pool, Schema: cfg.Schema, Logger: cfg.Logger})
}

// startWorker starts a working River client on cfg's schema.
func startWorker(ctx context.Context, cfg workerConfig) (*worker, error) {
	a, err := newApp(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	if err := a.River.Start(ctx); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	return &worker{Client: a.River}, nil
}

// newEnqueuer is the use cases of an ingesting process, as `postcall
// ingest` builds them.
func newEnqueuer(ctx context.Context, cfg workerConfig) (*pipeline.Calls, error) {
	cfg.ModelURL = ""
	a, err := newApp(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	return a.Calls, nil
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
