package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/postcall/postcall/store"
)

// runRedeliver replays a call's deliveries (or one integration's), keeping
// each delivery's webhook-id, and re-enables the integrations concerned.
func runRedeliver(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "redeliver", "redeliver CALL [--integration NAME]")
	name := fs.String("integration", "", "replay only this integration's delivery")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("redeliver: name exactly one CALL")
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
	ids, err := a.Calls.Redeliver(ctx, c, *name)
	if err != nil {
		return fmt.Errorf("redeliver %s: %w", pos[0], err)
	}
	if len(ids) == 0 {
		fmt.Fprintf(e.stdout, "%s: agent %s has no integrations; nothing to deliver\n", pos[0], c.Record.AgentID)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s: enqueued %s (webhook ids kept: %v)\n", pos[0], plural(len(ids), "delivery"), ids)
	return nil
}
