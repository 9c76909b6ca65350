package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/postcall/postcall/internal/app"
	"github.com/postcall/postcall/pipeline"
)

// printEstimate is `reanalyze --agent ID --estimate`: what the bulk
// reanalysis would send and cost (pipeline.Calls.Estimate). It enqueues and
// sends nothing.
func printEstimate(ctx context.Context, e *env, a *app.App, req pipeline.BulkRequest) error {
	est, err := a.Calls.Estimate(ctx, req, a.Config.LLM.Model)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "estimate: reanalyzing %s with plan version %d, model %s, live requests at the %s tier; nothing is sent\n",
		est.AgentID, est.PlanVersion, est.Model, est.ServiceTier)
	fmt.Fprintf(e.stdout, "calls: %d selected, %d of them with an auto disposition (no request)\n", est.Calls, est.Auto)
	if len(est.Kinds) == 0 {
		fmt.Fprintln(e.stdout, "the plan has no prompt of the kinds asked for: nothing would be sent")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "KIND\tRUNS\tREQUESTS\tPROMPT TOKENS\tCACHED\tCOMPLETION\tLIVE\tBATCH\t")
	row := func(k pipeline.KindEstimate) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", k.Kind, k.Runs, k.Requests, k.Tokens.Prompt,
			k.Tokens.CachedRead, k.Tokens.Completion, usd(k.LiveUSD), usd(k.BatchUSD))
	}
	for _, k := range est.Kinds {
		row(k)
	}
	if len(est.Kinds) > 1 {
		row(est.Total())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, k := range est.Kinds {
		switch k.Basis {
		case pipeline.BasisPlanVersion:
			fmt.Fprintf(e.stdout, "%s: per run as the latest %s of this plan version took\n", k.Kind, plural(k.HistoryRuns, "run"))
		case pipeline.BasisAgent:
			fmt.Fprintf(e.stdout, "%s: no run of this plan version yet: prompts estimated from their size (nothing cached), requests and completion as the agent's latest %s took\n",
				k.Kind, plural(k.HistoryRuns, "run"))
		default:
			fmt.Fprintf(e.stdout, "%s: no run of this agent yet: estimated from the prompt's size, with the schema's bound as completion and nothing cached (an upper bound)\n", k.Kind)
		}
	}
	if t := est.Total(); t.LiveUSD == nil || t.BatchUSD == nil {
		fmt.Fprintf(e.stdout, "unpriced: the price table has no %s rates for that tier (POSTCALL_PRICES_FILE can add them)\n", est.Model)
	}
	return nil
}

// usd formats a cost in US dollars; nil is unpriced (no price for a model
// or tier), never $0.
func usd(v *float64) string {
	if v == nil {
		return "unpriced"
	}
	return dollars(*v)
}

// dollars shows small amounts with enough digits to compare: a call costs
// fractions of a cent.
func dollars(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("$%.2f", v)
	}
	return fmt.Sprintf("$%.6f", v)
}
