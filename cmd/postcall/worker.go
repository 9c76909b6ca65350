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
	"github.com/postcall/postcall/metrics"
	"github.com/postcall/postcall/retention"
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
	a, err := openApp(ctx, e, appOptions{work: true})
	if err != nil {
		return err
	}
	defer a.Close()
	if *addr == "" {
		*addr = a.cfg.HTTPAddr
	}
	switch {
	case a.cfg.LLM.Configured():
		a.log.Info("LLM endpoint configured", slog.String("base_url", a.cfg.LLM.BaseURL), slog.String("default_model", a.cfg.LLM.Model))
	case a.cfg.LLM.Demo:
		a.log.Warn("no LLM endpoint: the DEMO model answers, and its output is labelled demo everywhere")
	default:
		a.log.Warn("no LLM endpoint configured: calls that need the model wait (state waiting_llm) until one is; auto dispositions still complete")
	}
	if a.cfg.S3.URLTTLClamped {
		a.log.Warn("POSTCALL_RECORDING_URL_TTL above 7 days (the SigV4 maximum); clamped to 7 days")
	}
	a.log.Info("retention scheduled", slog.String("purge_schedule", a.cfg.PurgeSchedule),
		slog.String("retention_schedule", a.cfg.RetentionSchedule), slog.Int("purge_after_days", a.cfg.PurgeAfterDays),
		slog.Int("hard_delete_after_days", a.cfg.HardDeleteAfterDays))
	if a.recordings == nil {
		a.log.Warn("no S3_BUCKET: recording objects of purged and deleted calls wait in the deletion outbox until a worker with S3_BUCKET runs")
	}
	if a.cfg.APIToken == "" {
		a.log.Warn("no POSTCALL_API_TOKEN: the /v1 API and /metrics answer 401; health, readiness and recording links still work")
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	server := &api.Server{
		Pool: a.pool, Token: a.cfg.APIToken, Enqueuer: a.enqueuer, Metrics: metrics.Handler(a.registry, a.log),
		Links: a.links, Recordings: a.recordings, Retention: apiRetention{a.retention}, Logger: a.log,
	}
	srv := api.NewHTTPServer(server.Handler(), api.HTTPServerConfig{})
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()

	// Job outcomes come from River's event stream of this client.
	stopWatching := jobs.WatchJobs(a.river, func(ev jobs.JobEvent) {
		a.metrics.ObserveJob(ev)
		jobs.LogFailure(ctx, a.log, ev)
	})
	defer stopWatching()

	if err := a.river.Start(ctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("start River client: %w", err)
	}
	a.log.Info("worker started", slog.String("http_addr", ln.Addr().String()))

	select {
	case <-ctx.Done():
	case err := <-httpDone:
		if !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("HTTP server stopped", slog.String("error", err.Error()))
		}
	}
	a.log.Info("stopping: draining running jobs", slog.Duration("soft_stop_timeout", a.cfg.ShutdownTimeout))
	stopCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout+10*time.Second)
	defer cancel()
	_ = srv.Shutdown(stopCtx)
	if err := a.river.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop River client: %w", err)
	}
	a.log.Info("worker stopped")
	return nil
}

// apiRetention adapts the retention service to the HTTP API's soft delete
// and erasure routes.
type apiRetention struct{ s *retention.Service }

func (r apiRetention) SoftDelete(ctx context.Context, ref string) error {
	_, err := r.s.Delete(ctx, ref)
	return err
}

func (r apiRetention) Erase(ctx context.Context, ref string) error {
	rep, err := r.s.EraseCall(ctx, ref, retention.RunOptions{Trigger: retention.TriggerRequest})
	if err != nil {
		return err
	}
	if rep.SkippedHold > 0 {
		return fmt.Errorf("%w: the call is on legal hold; its personal data is kept until the hold is released", api.ErrConflict)
	}
	return nil
}
