package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/postcall/postcall/internal/app"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// reanalyzeBulk runs (or resumes) the bulk reanalysis of every live call of
// an agent (pipeline.Calls.RunBulk), paced by POSTCALL_LLM_RPM and
// POSTCALL_LLM_CONCURRENCY, and shows its progress; with wait it then waits
// until every run has finished.
func reanalyzeBulk(ctx context.Context, e *env, a *app.App, req pipeline.BulkRequest, wait bool) error {
	req.RPM, req.Concurrency = a.Config.LLM.RPM, a.Config.LLM.Concurrency
	b, resumed, err := a.Calls.OpenBulk(ctx, req)
	if err != nil {
		return err
	}
	if resumed {
		fmt.Fprintf(e.stdout, "resuming bulk reanalysis %d of %s: %d of %d calls already enqueued\n", b.ID, req.AgentID, b.Enqueued+b.Skipped, b.Total)
	} else {
		fmt.Fprintf(e.stdout, "bulk reanalysis %d of %s: %s\n", b.ID, req.AgentID, plural(b.Total, "call"))
	}
	if !a.Config.LLM.Configured() && !a.Config.LLM.Demo {
		fmt.Fprintln(e.stderr, "note: no LLM endpoint is configured here; the runs wait until a worker has one")
	}
	bar := newProgress(e.stdout, b.Total)
	if err := a.Calls.RunBulk(ctx, b, req, bar.update); err != nil {
		if ctx.Err() != nil {
			return interrupted(e, b, ctx.Err())
		}
		return err
	}
	bar.done()
	fmt.Fprintf(e.stdout, "bulk reanalysis %d: %d calls enqueued, %d skipped (purged or deleted meanwhile)\n", b.ID, b.Enqueued, b.Skipped)
	if !wait {
		return nil
	}
	for {
		finished, pending, err := a.Calls.BulkProgress(ctx, b.ID)
		if err != nil {
			return err
		}
		bar.update(b.Enqueued+b.Skipped, finished)
		if pending == 0 {
			bar.done()
			fmt.Fprintf(e.stdout, "bulk reanalysis %d: all %s finished\n", b.ID, plural(finished, "run"))
			failed, err := a.Calls.BulkFailures(ctx, b.ID)
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
