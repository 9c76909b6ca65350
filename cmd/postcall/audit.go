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

// runAudit shows the retention audit: recent runs, one run with its policy
// and per-call rows, or one call's history (which outlives the call).
func runAudit(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "audit", "audit [--limit N] | audit --run RUN [--limit N] | audit --call CALL")
	limit := fs.Int("limit", 20, "how many runs (or, with --run, per-call rows) to show")
	runID := fs.Int64("run", 0, "show one run: its policy, counts and per-call audit rows")
	callRef := fs.String("call", "", "show one call's audit rows (postcall's id or the platform's call_id; works after a hard delete)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usageErr("audit: unexpected argument %q", pos[0])
	case *limit < 1:
		return usageErr("audit: --limit must be positive")
	case *runID != 0 && *callRef != "":
		return usageErr("audit: give --run or --call, not both")
	}
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.Close()

	switch {
	case *callRef != "":
		return auditCall(ctx, e.stdout, a, *callRef)
	case *runID != 0:
		return auditRun(ctx, e.stdout, a, *runID, *limit)
	}
	runs, err := retention.ListRuns(ctx, a.Pool, *limit)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Fprintln(e.stdout, "no retention runs yet")
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "run\tkind\ttrigger\tstatus\tstarted\tfinished\tpurged\tdeleted\tskipped_hold\tobjects deleted/queued\terrors")
		for _, r := range runs {
			status := r.Status
			if r.DryRun {
				status += " (dry run)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d/%d\t%d\n", r.ID, r.Kind, r.Trigger, status,
				r.StartedAt.UTC().Format(time.RFC3339), str(r.FinishedAt), r.Purged, r.Deleted, r.SkippedHold,
				r.ObjectsDeleted, r.ObjectsQueued, r.Errors)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return printPending(ctx, e.stdout, a)
}

func auditRun(ctx context.Context, w io.Writer, a *app.App, id int64, limit int) error {
	r, err := retention.GetRun(ctx, a.Pool, id)
	if errors.Is(err, store.ErrNotFound) {
		return &exitError{code: 1, msg: "not found"}
	}
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("run", r.ID)
	row("kind", r.Kind)
	row("trigger", r.Trigger)
	row("dry_run", r.DryRun)
	row("status", r.Status)
	row("started", r.StartedAt.UTC().Format(time.RFC3339))
	row("finished", str(r.FinishedAt))
	row("policy", string(r.Policy))
	row("purged", r.Purged)
	row("deleted", r.Deleted)
	row("skipped_hold", r.SkippedHold)
	row("objects", fmt.Sprintf("%d deleted of %d queued", r.ObjectsDeleted, r.ObjectsQueued))
	row("errors", r.Errors)
	if r.Error != nil {
		row("last_error", *r.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	entries, err := retention.RunAudit(ctx, a.Pool, id, limit)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		fmt.Fprintf(w, "\nper-call audit (first %d):\n", len(entries))
		return printEntries(w, entries)
	}
	return nil
}

func auditCall(ctx context.Context, w io.Writer, a *app.App, ref string) error {
	entries, err := retention.CallAudit(ctx, a.Pool, ref)
	if err != nil {
		return err
	}
	c, err := a.Calls.Find(ctx, ref)
	switch {
	case errors.Is(err, store.ErrNotFound) && len(entries) == 0:
		return &exitError{code: 1, msg: "not found"}
	case errors.Is(err, store.ErrNotFound):
		fmt.Fprintf(w, "call %s: no longer stored (hard-deleted)\n", ref)
	case err != nil:
		return err
	default:
		state := "stored"
		if c.IsPurged {
			state += ", purged at " + str(c.PurgedAt)
		}
		if c.DeletedAt != nil {
			state += ", soft-deleted at " + str(c.DeletedAt)
		}
		fmt.Fprintf(w, "call %s (id %s, agent %s): %s\n", c.Record.CallID, c.ID, c.Record.AgentID, state)
	}
	if len(entries) == 0 {
		fmt.Fprintln(w, "no retention events")
		return nil
	}
	return printEntries(w, entries)
}

func printEntries(w io.Writer, entries []retention.AuditEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "at\taction\treason\trun\tcall_id\tremoved / note")
	for _, en := range entries {
		run := "-"
		if en.RunID != nil {
			run = fmt.Sprint(*en.RunID)
		}
		callID := "(agent " + en.AgentID + ")"
		if en.CallID != nil {
			callID = *en.CallID
		}
		detail := strings.Join(en.Removed, ", ")
		if en.Note != nil {
			detail = strings.TrimPrefix(detail+"; "+*en.Note, "; ")
		}
		if detail == "" {
			detail = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", en.At.UTC().Format(time.RFC3339), en.Action, en.Reason, run, callID, detail)
	}
	return tw.Flush()
}

func printPending(ctx context.Context, w io.Writer, a *app.App) error {
	p, err := retention.PendingRecordingDeletions(ctx, a.Pool)
	if err != nil {
		return err
	}
	if p.Objects == 0 {
		fmt.Fprintln(w, "recording deletion outbox: empty (every queued object confirmed gone)")
		return nil
	}
	fmt.Fprintf(w, "recording deletion outbox: %s pending since %s, %d with failed attempts\n",
		plural(p.Objects, "object"), p.Oldest.UTC().Format(time.RFC3339), p.Failing)
	return nil
}
