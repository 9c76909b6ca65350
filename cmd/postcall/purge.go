package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postcall/postcall/internal/app"
	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// runPurge runs the sensitive-data purge and the soft-delete retention once,
// now, with the code the schedules run; with --call or --phone it carries
// out an erasure request instead. It prints what it did, and exits 1 when an
// erasure left calls on legal hold untouched.
func runPurge(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "purge", "purge [--dry-run] [--call CALL | --phone E164] [--batch-size N] [--pause D]")
	dryRun := fs.Bool("dry-run", false, "print what would be purged and deleted; change nothing")
	callRef := fs.String("call", "", "erasure request: purge this call now, whatever its age (postcall's id or the platform's call_id)")
	phone := fs.String("phone", "", "erasure request: purge every call of this phone number now, whatever their age")
	batchSize := fs.Int("batch-size", 0, "most calls per transaction; batches are sized to take about 80 ms within it (default POSTCALL_RETENTION_BATCH_SIZE)")
	pause := fs.Duration("pause", -1, "least pause between batches, on top of a quarter of each batch's time (default POSTCALL_RETENTION_PAUSE)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usageErr("purge: unexpected argument %q", pos[0])
	case *callRef != "" && *phone != "":
		return usageErr("purge: --call and --phone are one erasure request each; give one")
	case *batchSize < 0:
		return usageErr("purge: --batch-size must be positive")
	}
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.Close()
	if *batchSize > 0 {
		a.Retention.BatchSize = *batchSize
	}
	if *pause >= 0 {
		a.Retention.Pause = *pause
	}
	opts := retention.RunOptions{DryRun: *dryRun}

	var reports []*retention.Report
	switch {
	case *callRef != "":
		rep, err := a.Retention.EraseCall(ctx, *callRef, opts)
		if errors.Is(err, store.ErrNotFound) {
			return &exitError{code: 1, msg: "not found"}
		}
		if err != nil {
			return err
		}
		printErasure(e.stdout, rep, "call "+*callRef)
		reports = append(reports, rep)
	case *phone != "":
		rep, err := a.Retention.ErasePhone(ctx, *phone, opts)
		if errors.Is(err, retention.ErrInvalidPhone) {
			return usageErr("purge: --phone %q: %v", *phone, retention.ErrInvalidPhone)
		}
		if err != nil {
			return err
		}
		printErasure(e.stdout, rep, "phone number")
		reports = append(reports, rep)
	default:
		opts.Trigger = retention.TriggerCommand
		purged, err := a.Retention.Purge(ctx, opts)
		if purged != nil {
			printRun(e.stdout, purged)
			reports = append(reports, purged)
		}
		if err != nil {
			return err
		}
		deleted, err := a.Retention.HardDelete(ctx, opts)
		if deleted != nil {
			printRun(e.stdout, deleted)
			reports = append(reports, deleted)
		}
		if err != nil {
			return err
		}
	}
	if !*dryRun {
		if err := deleteRecordingsNow(ctx, e.stdout, a, reports); err != nil {
			return err
		}
	}
	for _, rep := range reports {
		if rep.Kind == retention.KindErasure && rep.SkippedHold > 0 && !rep.DryRun {
			return &exitError{code: 1, msg: fmt.Sprintf("%s on legal hold not erased: the hold wins; clear it with `postcall hold clear` to erase",
				plural(rep.SkippedHold, "call"))}
		}
	}
	return nil
}

// printRun prints a purge or hard delete report with one line per agent
// that had anything due.
func printRun(w io.Writer, rep *retention.Report) {
	title, verb, n := "purge", "purged", rep.Purged
	if rep.Kind == retention.KindHardDelete {
		title, verb, n = "hard delete", "hard-deleted", rep.Deleted
	}
	queued := "queued for deletion"
	if rep.DryRun {
		verb, queued = "would be "+verb, "would be "+queued
		title += " (dry run: nothing changed)"
	}
	fmt.Fprintf(w, "%s, run %d: %s %s, %s on legal hold skipped, %s %s%s\n",
		title, rep.RunID, plural(n, "call"), verb, plural(rep.SkippedHold, "call"),
		plural(rep.ObjectsQueued, "recording object"), queued, statusNote(rep))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, ag := range rep.Agents {
		if ag.Done == 0 && ag.SkippedHold == 0 {
			continue
		}
		source := "default"
		if ag.FromPlan {
			source = "plan"
		}
		hold := fmt.Sprintf("%d held", ag.SkippedHold)
		if ag.OnHold {
			hold = fmt.Sprintf("agent on legal hold: %d kept", ag.SkippedHold)
		}
		fmt.Fprintf(tw, "  %s\tafter %d days (%s)\tcutoff %s\t%d %s\t%s\n", ag.AgentID, ag.AfterDays, source,
			ag.Cutoff.UTC().Format(time.RFC3339), ag.Done, verb, hold)
	}
	tw.Flush()
}

// printErasure prints an erasure request's report.
func printErasure(w io.Writer, rep *retention.Report, what string) {
	title, verb, queued := "erasure request", "purged", "queued for deletion"
	if rep.DryRun {
		title += " (dry run: nothing changed)"
		verb, queued = "would be purged", "would be queued for deletion"
	}
	switch {
	case rep.AlreadyPurged:
		fmt.Fprintf(w, "%s, run %d: %s was already purged; nothing left to erase\n", title, rep.RunID, what)
	case rep.Purged == 0 && rep.SkippedHold == 0:
		fmt.Fprintf(w, "%s, run %d: no unpurged call matches the %s\n", title, rep.RunID, what)
	default:
		fmt.Fprintf(w, "%s, run %d (%s): %s %s, %s on legal hold kept, %s %s%s\n",
			title, rep.RunID, what, plural(rep.Purged, "call"), verb, plural(rep.SkippedHold, "call"),
			plural(rep.ObjectsQueued, "recording object"), queued, statusNote(rep))
	}
}

func statusNote(rep *retention.Report) string {
	if rep.Status == retention.StatusFinished {
		return ""
	}
	return " [" + rep.Status + "]"
}

// deleteRecordingsNow deletes the recording objects the runs queued, when
// this process has S3_BUCKET, so that the command finishes the job without
// waiting for a worker; their jobs then find nothing left. Without a bucket
// the objects wait for a worker that has one.
func deleteRecordingsNow(ctx context.Context, w io.Writer, a *app.App, reports []*retention.Report) error {
	var batches []int64
	for _, rep := range reports {
		batches = append(batches, rep.Batches...)
	}
	if a.Recordings != nil && len(batches) > 0 {
		deleted := 0
		var failures []string
		for _, b := range batches {
			n, err := a.Retention.DeleteRecordings(ctx, b)
			deleted += n
			if err != nil {
				failures = append(failures, err.Error())
			}
		}
		fmt.Fprintf(w, "recordings: %s deleted from bucket %s\n", plural(deleted, "object"), a.Recordings.Bucket())
		if len(failures) > 0 {
			fmt.Fprintf(w, "recordings: some deletions failed; the worker retries them until the bucket confirms: %s\n",
				strings.Join(failures, "; "))
		}
	}
	pending, err := retention.PendingRecordingDeletions(ctx, a.Pool)
	if err != nil {
		return err
	}
	if pending.Objects > 0 {
		note := "a worker deletes them"
		if a.Recordings == nil {
			note = "no S3_BUCKET here: a worker with S3_BUCKET deletes them"
		}
		fmt.Fprintf(w, "recordings: %s waiting in the deletion outbox (%s; `postcall audit` shows progress)\n",
			plural(pending.Objects, "object"), note)
	}
	return nil
}
