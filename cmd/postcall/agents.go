package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/postcall/postcall/agent"
	"github.com/postcall/postcall/crm"
	"github.com/postcall/postcall/store"
)

// runAgents is `agents apply FILE` and `agents list`.
func runAgents(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErr("agents: want `agents apply FILE` or `agents list`")
	}
	switch args[0] {
	case "apply":
		return runAgentsApply(ctx, e, args[1:])
	case "list":
		return runAgentsList(ctx, e, args[1:])
	default:
		return usageErr("agents: unknown subcommand %q: want apply or list", args[0])
	}
}

// runAgentsApply validates every plan in FILE before storing any, then
// stores them all in one transaction, so a bad file changes nothing.
func runAgentsApply(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "agents apply", "agents apply FILE (YAML or JSON; one agent or a list; - for stdin)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("agents apply: want exactly one FILE")
	}
	var data []byte
	if pos[0] == "-" {
		data, err = io.ReadAll(e.stdin)
	} else {
		data, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", pos[0], err)
	}
	plans, err := agent.ParsePlans(data)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	// Integration settings are the crm package's to judge (agent cannot
	// import it); a plan whose deliveries could only fail is not stored.
	var targets []agentTarget
	var problems []string
	for _, p := range plans {
		for _, in := range p.Integrations {
			t, err := crm.Parse(in)
			if err != nil {
				problems = append(problems, fmt.Sprintf("agent %q: %v", p.ID, err))
				continue
			}
			targets = append(targets, agentTarget{p.ID, t})
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %w", pos[0], &agent.PlanError{Problems: problems})
	}
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.Close()
	if !a.Config.AllowPrivateTargets {
		warnPrivateTargets(ctx, e, pos[0], targets)
	}
	type change struct {
		id      string
		what    store.PlanChange
		version int
	}
	var changes []change
	err = pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) error {
		for i := range plans {
			what, version, err := store.ApplyPlan(ctx, tx, &plans[i])
			if err != nil {
				return err
			}
			changes = append(changes, change{plans[i].ID, what, version})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range changes {
		fmt.Fprintf(e.stdout, "%s: %s (plan version %d)\n", c.id, c.what, c.version)
	}
	return nil
}

func runAgentsList(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "agents list", "agents list")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.Close()
	list, err := store.ListAgents(ctx, a.Pool)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stdout, "no agents yet: `postcall agents apply FILE` adds them")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPLAN VERSION\tCALLS\tAVG COST/CALL\tUPDATED")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", s.ID, s.Name, s.CurrentVersion, s.Calls, averageCost(s),
			s.UpdatedAt.UTC().Format("2006-01-02 15:04:05Z"))
	}
	return tw.Flush()
}

// averageCost is an agent's cost per call for `agents list`: "-" without
// calls, "unpriced" when no request had a price, and a lower bound ("≥")
// when some did not.
func averageCost(s store.AgentSummary) string {
	avg, ok := s.AverageCost()
	switch {
	case !ok:
		return "-"
	case s.UnpricedRequests > 0 && s.CostUSD == 0:
		return "unpriced"
	case s.UnpricedRequests > 0:
		return "≥" + dollars(avg) + fmt.Sprintf(" (%s unpriced)", plural(int(s.UnpricedRequests), "request"))
	default:
		return dollars(avg)
	}
}

// agentTarget is one parsed integration of an agent being applied.
type agentTarget struct {
	agentID string
	target  crm.Target
}

// warnPrivateTargets warns, without refusing the plan, about integrations
// whose deliveries the guard will refuse on a worker configured like this
// command (POSTCALL_ALLOW_PRIVATE_TARGETS unset).
func warnPrivateTargets(ctx context.Context, e *env, file string, targets []agentTarget) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, t := range targets {
		if w := crm.PrivateTargetWarning(ctx, t.target, net.DefaultResolver); w != "" {
			fmt.Fprintf(e.stderr, "warning: %s: agent %q: %s: its deliveries will fail unless the worker sets POSTCALL_ALLOW_PRIVATE_TARGETS=1\n",
				file, t.agentID, w)
		}
	}
}
