package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

type bulkRequest struct {
	agentID      string
	since, until *time.Time
	kindName     string
	kinds        pipeline.Kinds
	wait         bool
}

// bulkChunk is how many calls are selected per query.
const bulkChunk = 200

// reanalyzeBulk enqueues the reanalysis of every live call of an agent. It is
// resumable: each call is enqueued in the transaction that moves the bulk
// run's cursor past it, so rerunning the same command after an interruption
// continues after the last call enqueued. It is paced by the LLM limits: it
// enqueues no faster than POSTCALL_LLM_RPM allows and keeps at most a window
// of runs outstanding, so the queue never holds more than the model can work
// off soon.
func reanalyzeBulk(ctx context.Context, e *env, a *app, req bulkRequest) error {
	if _, _, err := store.CurrentPlan(ctx, a.pool, req.agentID); err != nil {
		return err
	}
	b, resumed, err := store.OpenBulk(ctx, a.pool, req.agentID, req.since, req.until, req.kindName)
	if err != nil {
		return err
	}
	if resumed {
		fmt.Fprintf(e.stdout, "resuming bulk reanalysis %d of %s: %d of %d calls already enqueued\n", b.ID, req.agentID, b.Enqueued+b.Skipped, b.Total)
	} else {
		fmt.Fprintf(e.stdout, "bulk reanalysis %d of %s: %s\n", b.ID, req.agentID, plural(b.Total, "call"))
	}
	if !a.cfg.LLM.Configured() && !a.cfg.LLM.Demo {
		fmt.Fprintln(e.stderr, "note: no LLM endpoint is configured here; the runs wait until a worker has one")
	}

	requestsPerCall := 0
	if req.kinds.Analysis {
		requestsPerCall++
	}
	if req.kinds.QC {
		requestsPerCall++
	}
	perMinute := max(a.cfg.LLM.RPM/requestsPerCall, 1)
	pace := rate.NewLimiter(rate.Limit(float64(perMinute)/60), min(perMinute, a.cfg.LLM.Concurrency))
	window := 2 * a.cfg.LLM.Concurrency
	bar := newProgress(e.stdout, b.Total)

	for {
		ids, err := store.BulkNext(ctx, a.pool, b, bulkChunk)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			if err := waitForWindow(ctx, a, b.ID, window); err != nil {
				return interrupted(e, b, err)
			}
			if err := pace.Wait(ctx); err != nil {
				return interrupted(e, b, err)
			}
			if _, err := a.enqueuer.ReanalyzeBulkStep(ctx, b, id, req.kinds); err != nil {
				if ctx.Err() != nil {
					return interrupted(e, b, ctx.Err())
				}
				return err
			}
			finished, _, _ := store.BulkProgress(ctx, a.pool, b.ID)
			bar.update(b.Enqueued+b.Skipped, finished)
		}
	}
	if err := store.FinishBulk(ctx, a.pool, b); err != nil {
		return err
	}
	bar.done()
	fmt.Fprintf(e.stdout, "bulk reanalysis %d: %d calls enqueued, %d skipped (purged or deleted meanwhile)\n", b.ID, b.Enqueued, b.Skipped)
	if !req.wait {
		return nil
	}
	for {
		finished, pending, err := store.BulkProgress(ctx, a.pool, b.ID)
		if err != nil {
			return err
		}
		bar.update(b.Enqueued+b.Skipped, finished)
		if pending == 0 {
			bar.done()
			fmt.Fprintf(e.stdout, "bulk reanalysis %d: all %s finished\n", b.ID, plural(finished, "run"))
			failed, err := store.BulkFailures(ctx, a.pool, b.ID)
			if err != nil {
				return err
			}
			if failed > 0 {
				fmt.Fprintf(e.stderr, "bulk reanalysis %d: %s failed (postcall show CALL says why)\n", b.ID, plural(failed, "run"))
				return errSilent
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return interrupted(e, b, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// waitForWindow blocks while the bulk run has window or more runs pending.
func waitForWindow(ctx context.Context, a *app, bulkID int64, window int) error {
	for {
		_, pending, err := store.BulkProgress(ctx, a.pool, bulkID)
		if err != nil || pending < window {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func interrupted(e *env, b *store.Bulk, err error) error {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(e.stdout, "\ninterrupted after %d of %d calls: run the same command again to resume bulk reanalysis %d\n",
			b.Enqueued+b.Skipped, b.Total, b.ID)
		return errSilent
	}
	return err
}

func parseTimeFlag(name, v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, usageErr("reanalyze: --%s %q is not an RFC 3339 time", name, v)
	}
	return &t, nil
}

// progress draws a bar on a terminal and plain lines (every 10%) elsewhere.
type progress struct {
	w        io.Writer
	total    int
	terminal bool
	lastLine int
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, lastLine: -1}
	out := w
	if t, ok := w.(*terminalSafe); ok {
		out = t.w
	}
	if f, ok := out.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) update(enqueued, finished int) {
	if p.total == 0 {
		return
	}
	if p.terminal {
		const width = 30
		filled := width * enqueued / p.total
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d enqueued, %d runs finished", strings.Repeat("#", filled), strings.Repeat(".", width-filled), enqueued, p.total, finished)
		return
	}
	if decile := 10 * enqueued / p.total; decile != p.lastLine {
		p.lastLine = decile
		fmt.Fprintf(p.w, "%d/%d enqueued, %d runs finished\n", enqueued, p.total, finished)
	}
}

func (p *progress) done() {
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}
