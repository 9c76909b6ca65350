package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/pipeline"
	"github.com/postcall/postcall/store"
)

// runReanalyze enqueues fresh runs with the agent's current plan; with
// --wait it blocks until they are done and prints the result.
func runReanalyze(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "reanalyze", "reanalyze CALL... | --agent ID [--since T] [--until T] [--estimate | --batch]  [--kind analysis|qc|all] [--wait]")
	kind := fs.String("kind", "all", "what to run again: analysis, qc or all")
	wait := fs.Bool("wait", false, "wait until the runs are done and print the result")
	timeout := fs.Duration("timeout", 15*time.Minute, "with --wait on single calls, how long to wait")
	agentID := fs.String("agent", "", "reanalyze every live call of this agent (bulk; resumable: rerun the same command)")
	sinceFlag := fs.String("since", "", "with --agent: calls that ended at or after this RFC 3339 time")
	untilFlag := fs.String("until", "", "with --agent: calls that ended before this RFC 3339 time")
	estimate := fs.Bool("estimate", false, "with --agent: print the calls, requests, tokens and US dollars it would take, live and by batch, and send nothing")
	batch := fs.Bool("batch", false, "with --agent: send the runs through OpenAI's Batch API (cheaper, answered within 24h)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *agentID != "" && len(pos) > 0:
		return usageErr("reanalyze: name CALLs or --agent, not both")
	case *agentID == "" && len(pos) == 0:
		return usageErr("reanalyze: name at least one CALL, or --agent ID")
	case *agentID == "" && (*sinceFlag != "" || *untilFlag != ""):
		return usageErr("reanalyze: --since and --until go with --agent")
	case *estimate && *agentID == "":
		return usageErr("reanalyze: --estimate goes with --agent")
	case *estimate && *wait:
		return usageErr("reanalyze: --estimate sends nothing, so there is nothing to --wait for")
	case *agentID == "" && *batch:
		return usageErr("reanalyze: --batch goes with --agent")
	case *estimate && *batch:
		return usageErr("reanalyze: --estimate sends nothing; leave out --batch (it prints the batch price too)")
	case !utf8.ValidString(*agentID):
		return usageErr("reanalyze: --agent is not valid UTF-8 text")
	}
	var kinds pipeline.Kinds
	switch *kind {
	case "all":
		kinds = pipeline.AllKinds
	case "analysis":
		kinds.Analysis = true
	case "qc":
		kinds.QC = true
	default:
		return usageErr("reanalyze: --kind %q must be analysis, qc or all", *kind)
	}
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.Close()
	if *agentID != "" {
		since, err := parseTimeFlag("since", *sinceFlag)
		if err != nil {
			return err
		}
		until, err := parseTimeFlag("until", *untilFlag)
		if err != nil {
			return err
		}
		req := pipeline.BulkRequest{AgentID: *agentID, Since: since, Until: until, KindName: *kind, Kinds: kinds, Batch: *batch}
		if *estimate {
			return printEstimate(ctx, e, a, req)
		}
		if *batch {
			return reanalyzeBatch(ctx, e, a, req, *wait)
		}
		return reanalyzeBulk(ctx, e, a, req, *wait)
	}

	failed := false
	var enqueued []string
	for _, ref := range pos {
		res, err := a.Calls.Reanalyze(ctx, ref, kinds)
		if err != nil {
			failed = true
			if errors.Is(err, store.ErrNotFound) {
				fmt.Fprintf(e.stderr, "%s: not found\n", ref)
			} else {
				fmt.Fprintf(e.stderr, "%v\n", err)
			}
			continue
		}
		switch {
		case res.Auto != nil:
			fmt.Fprintf(e.stdout, "%s: auto disposition %s (%s); no LLM request\n", ref, res.Auto.Disposition, res.Auto.Reason)
		default:
			fmt.Fprintf(e.stdout, "%s: enqueued %s at high priority\n", ref, plural(len(res.Runs), "run"))
			enqueued = append(enqueued, res.ID.String())
		}
	}
	if *wait {
		if !a.Config.LLM.Configured() && !a.Config.LLM.Demo && len(enqueued) > 0 {
			// Only the worker's environment decides; this one may differ.
			fmt.Fprintln(e.stderr, "note: no LLM endpoint is configured here; if the worker has none either, the runs wait until one is configured")
		}
		waitCtx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		for _, id := range enqueued {
			c, err := waitDone(waitCtx, a.Calls, id)
			if err != nil {
				return fmt.Errorf("wait for %s: %w", id, err)
			}
			doc, err := a.Calls.Document(ctx, c)
			if err != nil {
				return err
			}
			if err := printDocument(e.stdout, doc); err != nil {
				return err
			}
			if doc.State == store.StateFailed {
				failed = true
				fmt.Fprintf(e.stderr, "%s: finished, but a run failed: %s\n", doc.CallID, runFailures(doc))
			}
		}
	}
	if failed {
		return errSilent
	}
	return nil
}

// waitDone polls until the call is finalized. Polling keeps the command
// independent of where the worker runs.
func waitDone(ctx context.Context, calls *pipeline.Calls, id string) (*store.Call, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := calls.Find(ctx, id)
		if err != nil {
			return nil, err
		}
		if c.Done {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("still %s: %w", c.State, ctx.Err())
		case <-tick.C:
		}
	}
}

// runFailures says which of the call's current runs failed, and why.
func runFailures(doc *calldoc.Document) string {
	var why []string
	add := func(kind string, status store.RunStatus, msg *string) {
		if status != store.RunFailed {
			return
		}
		reason := "no reason recorded"
		if msg != nil {
			reason = *msg
		}
		why = append(why, kind+": "+reason)
	}
	if doc.Analysis != nil {
		add(store.KindAnalysis, doc.Analysis.Status, doc.Analysis.Error)
	}
	if doc.QC != nil {
		add(store.KindQC, doc.QC.Status, doc.QC.Error)
	}
	return strings.Join(why, "; ")
}
