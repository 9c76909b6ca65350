package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/postcall/postcall/api"
	"github.com/postcall/postcall/jobs"
)

// runWorker runs the River client (every queue) and the HTTP server until
// the context ends (SIGINT/SIGTERM), then drains: running jobs get
// POSTCALL_SHUTDOWN_TIMEOUT to finish before their contexts are cancelled.
func runWorker(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "worker", "worker [--http-addr ADDR]")
	addr := fs.String("http-addr", "", "HTTP listen address (default POSTCALL_HTTP_ADDR)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := openApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.Close()
	if *addr == "" {
		*addr = a.Config.HTTPAddr
	}
	switch {
	case a.Config.LLM.Configured():
		a.Log.Info("LLM endpoint configured", slog.String("base_url", a.Config.LLM.BaseURL), slog.String("default_model", a.Config.LLM.Model))
	case a.Config.LLM.Demo:
		a.Log.Warn("no LLM endpoint: the DEMO model answers, and its output is labelled demo everywhere")
	default:
		a.Log.Warn("no LLM endpoint configured: calls that need the model wait (state waiting_llm) until one is; auto dispositions still complete")
	}
	if a.Config.S3.URLTTLClamped {
		a.Log.Warn("POSTCALL_RECORDING_URL_TTL above 7 days (the SigV4 maximum); clamped to 7 days")
	}
	a.Log.Info("retention scheduled", slog.String("purge_schedule", a.Config.PurgeSchedule),
		slog.String("retention_schedule", a.Config.RetentionSchedule), slog.Int("purge_after_days", a.Config.PurgeAfterDays),
		slog.Int("hard_delete_after_days", a.Config.HardDeleteAfterDays))
	if a.Recordings == nil {
		a.Log.Warn("no S3_BUCKET: recording objects of purged and deleted calls wait in the deletion outbox until a worker with S3_BUCKET runs")
	}
	if a.Config.APIToken == "" {
		a.Log.Warn("no POSTCALL_API_TOKEN: only tokens from `postcall tokens create` open the /v1 API, /metrics and the console; health, readiness and recording links still work")
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := api.NewHTTPServer(a.Handler(), api.HTTPServerConfig{})
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()

	// Job outcomes come from River's event stream of this client.
	stopWatching := jobs.WatchJobs(a.River, func(ev jobs.JobEvent) {
		a.Metrics.ObserveJob(ev)
		jobs.LogFailure(ctx, a.Log, ev)
	})
	defer stopWatching()

	// The heartbeat runs from before the client takes a job until after it
	// has stopped: a process whose jobs are still draining is alive.
	beatCtx, stopBeating := context.WithCancel(context.WithoutCancel(ctx))
	beating := make(chan struct{})
	go func() { defer close(beating); a.Heartbeat.Run(beatCtx) }()
	defer func() { stopBeating(); <-beating }()

	if err := a.River.Start(ctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("start River client: %w", err)
	}
	a.Log.Info("worker started", slog.String("http_addr", ln.Addr().String()), slog.String("console", "http://"+ln.Addr().String()+"/login"), slog.String("client_id", a.Heartbeat.ClientID))

	select {
	case <-ctx.Done():
	case err := <-httpDone:
		if !errors.Is(err, http.ErrServerClosed) {
			a.Log.Error("HTTP server stopped", slog.String("error", err.Error()))
		}
	}
	a.Log.Info("stopping: draining running jobs", slog.Duration("soft_stop_timeout", a.Config.ShutdownTimeout))
	stopCtx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout+10*time.Second)
	defer cancel()
	_ = srv.Shutdown(stopCtx)
	stopErr := a.River.Stop(stopCtx)
	stopBeating()
	<-beating
	// Jobs whose attempts did not return by now are this process's no
	// longer: available again at once, not after the dead-after window.
	if err := a.Stopped(context.WithoutCancel(ctx)); err != nil {
		a.Log.Error("could not release the jobs still running", slog.String("error", err.Error()))
	}
	if stopErr != nil {
		return fmt.Errorf("stop River client: %w", stopErr)
	}
	a.Log.Info("worker stopped")
	return nil
}
