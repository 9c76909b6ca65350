package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/calldoc"
	"github.com/postcall/postcall/store"
)

// runShow prints one call: a readable summary, or with --json the call
// document. A call that does not exist (or was hard-deleted) exits 1 with
// "not found".
func runShow(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "show", "show CALL [--json] (CALL = postcall's id or the platform's call_id)")
	asJSON := fs.Bool("json", false, "print the call document as JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("show: name exactly one CALL")
	}
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := a.Calls.Find(ctx, pos[0])
	if errors.Is(err, store.ErrNotFound) {
		return &exitError{code: 1, msg: "not found"}
	}
	if err != nil {
		return err
	}
	doc, err := a.Calls.Document(ctx, c)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeDocumentJSON(e.stdout, doc)
	}
	return printDocument(e.stdout, doc)
}

// printDocument writes the human summary of a call: the outcome first, then
// the facts, then the runs.
func printDocument(w io.Writer, doc *calldoc.Document) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("id", doc.ID)
	row("call_id", doc.CallID)
	row("agent", fmt.Sprintf("%s (plan v%s)", doc.AgentID, str(doc.PlanVersion)))
	row("state", string(doc.State)+stateNote(doc))
	if doc.Demo {
		row("DEMO", "results below come from the built-in demo model, not a real LLM")
	}
	row("ended", fmt.Sprintf("%s: %s (disconnected by %s)", str(doc.EndedReason), doc.EndedReasonLabel, str(doc.DisconnectedBy)))
	row("status", str(doc.Status))
	row("duration", str(doc.Duration)+"s")
	disp := str(doc.Disposition)
	if doc.DispositionSource != nil {
		disp += " [" + *doc.DispositionSource
		if doc.DispositionReason != nil {
			disp += ": " + *doc.DispositionReason
		}
		disp += "]"
	}
	row("disposition", disp)
	row("general_success", str(doc.GeneralSuccess))
	row("final_score", str(doc.FinalScore))
	row("call_summary", str(doc.CallSummary))
	if doc.Analysis != nil {
		row("analysis", runLine(doc.Analysis.Status, doc.Analysis.Model, doc.Analysis.Demo, doc.Analysis.Error))
		var fields map[string]any
		var evidence map[string]analysis.Evidence
		_ = json.Unmarshal(doc.Analysis.Evidence, &evidence) // null: no evidence
		if json.Unmarshal(doc.Analysis.Fields, &fields) == nil {
			for _, k := range slices.Sorted(maps.Keys(fields)) {
				row("  "+k, str(fields[k])+evidenceNote(evidence, k))
			}
		}
	}
	if doc.QC != nil {
		row("qc", runLine(doc.QC.Status, doc.QC.Model, doc.QC.Demo, doc.QC.Error)+
			fmt.Sprintf(", score %s, passed %s", str(doc.QC.Score), str(doc.QC.Passed)))
		var items []struct {
			ID       string `json:"id"`
			Passed   bool   `json:"passed"`
			Evidence string `json:"evidence"`
			Verified *bool  `json:"verified"`
		}
		if json.Unmarshal(doc.QC.Items, &items) == nil {
			for _, it := range items {
				mark := "FAIL"
				if it.Passed {
					mark = "pass"
				}
				if it.Verified != nil && !*it.Verified {
					mark += " (unverified)"
				}
				row("  "+it.ID, mark+": "+it.Evidence)
			}
		}
	}
	t := doc.Tokens
	row("tokens", fmt.Sprintf("prompt %d (cached %d, cache created %d, fresh %d), completion %d",
		t.Prompt, t.CachedRead, t.CacheCreated, t.FreshPrompt, t.Completion))
	row("cost", fmt.Sprintf("%s (analysis %s, qc %s)", usd(doc.Cost.USD), usd(doc.Cost.AnalysisUSD), usd(doc.Cost.QCUSD)))
	if doc.Recording != nil {
		rec := doc.Recording.Key
		if doc.Recording.ExpiresAt != nil {
			rec += fmt.Sprintf(" (signed URL in --json, expires %s)", doc.Recording.ExpiresAt.UTC().Format("2006-01-02 15:04:05Z"))
		}
		row("recording", rec)
	}
	for _, in := range doc.Integrations {
		line := fmt.Sprintf("%s (%s): %s after %s", in.Type, in.Name, in.Status, plural(in.Attempts, "attempt"))
		if in.LastStatusCode != nil {
			line += fmt.Sprintf(", last HTTP %d", *in.LastStatusCode)
		}
		if in.NextAttemptAt != nil && in.Status == store.DeliveryPending {
			line += ", next attempt " + in.NextAttemptAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		if in.LastError != nil && in.Status != store.DeliveryDelivered {
			line += ": " + *in.LastError
		}
		row("integration", line)
	}
	row("transcript", fmt.Sprintf("%d turns", len(doc.Transcript)))
	if doc.IsPurged {
		row("purged_at", str(doc.PurgedAt))
	}
	if doc.DeletedAt != nil {
		row("deleted_at", str(doc.DeletedAt))
	}
	row("runs", fmt.Sprintf("%d in history (see --json)", len(doc.Runs)))
	return tw.Flush()
}

func stateNote(doc *calldoc.Document) string {
	switch {
	case doc.State == store.StateFailed:
		return " (finished, but a run failed: see analysis/qc below; `postcall reanalyze` retries)"
	case doc.Done:
		return ""
	case doc.State == store.StateWaitingLLM:
		return " (waiting for an LLM endpoint: set OPENAI_API_KEY or OPENAI_BASE_URL on the worker)"
	default:
		return " (analysis or QC still running)"
	}
}

func runLine(status store.RunStatus, model *string, demo bool, errMsg *string) string {
	s := string(status)
	if model != nil {
		s += " by " + *model
	}
	if demo {
		s += " [DEMO OUTPUT: no real LLM]"
	}
	if errMsg != nil {
		s += ": " + *errMsg
	}
	return s
}

// str renders a value the way a reader expects: "-" for absent.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case *string:
		if x == nil {
			return "-"
		}
		return strings.ReplaceAll(*x, "\n", " ")
	case *int:
		if x == nil {
			return "-"
		}
		return fmt.Sprint(*x)
	case *bool:
		if x == nil {
			return "-"
		}
		return fmt.Sprint(*x)
	case *float64:
		if x == nil {
			return "-"
		}
		return fmt.Sprint(*x)
	case *time.Time:
		if x == nil {
			return "-"
		}
		return x.UTC().Format(time.RFC3339)
	default:
		if s, ok := v.(fmt.Stringer); ok {
			return s.String()
		}
		return fmt.Sprint(v)
	}
}

// evidenceNote is what show says of a field's quote: the turn it was found
// in, or that it was not found (and the value withheld, under require).
func evidenceNote(evidence map[string]analysis.Evidence, field string) string {
	e, ok := evidence[field]
	switch {
	case !ok:
		return ""
	case e.Verified && e.Turn != nil:
		return fmt.Sprintf(" (quote from turn %d)", *e.Turn)
	case e.Withheld != nil:
		return " (withheld: its quote is not in the transcript)"
	}
	return " (unverified: its quote is not in the transcript)"
}
