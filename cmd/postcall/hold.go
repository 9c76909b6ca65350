package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// runHold sets, clears and lists legal holds. A held call (or every call of
// a held agent) is skipped by the purge, the hard delete and erasure
// requests until the hold is cleared.
func runHold(ctx context.Context, e *env, args []string) error {
	const usageLine = "hold set (--call CALL | --agent AGENT) [--reason CASE] | hold clear (--call CALL | --agent AGENT) | hold list"
	if len(args) == 0 {
		return usageErr("hold: want set, clear or list")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet(e, "hold "+sub, usageLine)
	callRef := fs.String("call", "", "the call (postcall's id or the platform's call_id)")
	agentID := fs.String("agent", "", "the agent: every call of it, present and future")
	reason := fs.String("reason", "", "case reference recorded with the hold (no personal data)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("hold %s: unexpected argument %q", sub, pos[0])
	}
	switch sub {
	case "set", "clear":
		if (*callRef == "") == (*agentID == "") {
			return usageErr("hold %s: give --call or --agent", sub)
		}
	case "list":
	default:
		return usageErr("hold: %q is not set, clear or list", sub)
	}
	for _, f := range []struct{ name, value string }{{"agent", *agentID}, {"reason", *reason}} {
		if !utf8.ValidString(f.value) {
			return usageErr("hold %s: --%s is not valid UTF-8 text", sub, f.name)
		}
	}
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.Close()

	if sub == "list" {
		holds, err := retention.ListHolds(ctx, a.Pool)
		if err != nil {
			return err
		}
		if len(holds) == 0 {
			fmt.Fprintln(e.stdout, "no legal holds")
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "on\tagent\tcall\tsince\treason")
		for _, h := range holds {
			on, callID := "agent", "(all calls)"
			if h.CallID != nil {
				on, callID = "call", *h.CallID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", on, h.AgentID, callID, h.At.UTC().Format(time.RFC3339), str(h.Reason))
		}
		return tw.Flush()
	}

	target := "call " + *callRef
	var changed bool
	switch {
	case *callRef != "" && sub == "set":
		changed, err = a.Retention.HoldCall(ctx, *callRef, *reason)
	case *callRef != "":
		changed, err = a.Retention.ReleaseCall(ctx, *callRef)
	case sub == "set":
		target = "agent " + *agentID
		changed, err = a.Retention.HoldAgent(ctx, *agentID, *reason)
	default:
		target = "agent " + *agentID
		changed, err = a.Retention.ReleaseAgent(ctx, *agentID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return &exitError{code: 1, msg: "not found"}
	}
	if err != nil {
		return err
	}
	switch {
	case sub == "set" && changed:
		fmt.Fprintf(e.stdout, "%s is on legal hold: the purge, the hard delete and erasure requests skip it\n", target)
	case sub == "set":
		fmt.Fprintf(e.stdout, "%s was already on legal hold\n", target)
	case changed:
		fmt.Fprintf(e.stdout, "%s: legal hold cleared; the next retention run applies its policy\n", target)
	default:
		fmt.Fprintf(e.stdout, "%s was not on legal hold\n", target)
	}
	return nil
}
