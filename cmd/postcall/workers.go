package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/postcall/postcall/heartbeat"
)

// runWorkers lists the worker processes the heartbeat table knows: live
// ones first, with their last heartbeat, the jobs they hold running, and
// the jobs rescued from them after they died.
func runWorkers(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "workers", "workers")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.Close()
	workers, err := heartbeat.List(ctx, a.Pool, a.Config.WorkerDeadAfter)
	if err != nil {
		return err
	}
	if len(workers) == 0 {
		fmt.Fprintln(e.stdout, "no worker has run in the last 24 hours")
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(newTerminalSafe(e.stdout), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "client id\tstatus\tlast heartbeat\tstarted\trunning jobs\trescued jobs")
	for _, w := range workers {
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\t%d\t%s\n", w.ClientID, workerStatus(w), now.Sub(w.BeatAt).Round(time.Second),
			w.StartedAt.UTC().Format(time.RFC3339), w.Running, strconv.Itoa(w.RescuedJobs))
	}
	return tw.Flush()
}

// workerStatus is live, stopped (it stopped itself, or it was declared dead
// and its jobs rescued) or dead (no heartbeat for POSTCALL_WORKER_DEAD_AFTER,
// its jobs about to be rescued).
func workerStatus(w heartbeat.Worker) string {
	switch {
	case w.Live:
		return "live"
	case w.StoppedAt != nil:
		return "stopped"
	default:
		return "dead"
	}
}
