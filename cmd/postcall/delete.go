package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postcall/postcall/retention"
	"github.com/postcall/postcall/store"
)

// runDelete soft-deletes a call: it stays readable (marked deleted) and
// restorable until its agent's hard_delete_after_days have passed; the
// first retention run after that hard-deletes it.
func runDelete(ctx context.Context, e *env, args []string) error {
	return changeDeleted(ctx, e, args, "delete")
}

// runRestore undoes a soft delete while the call is inside its retention
// window.
func runRestore(ctx context.Context, e *env, args []string) error {
	return changeDeleted(ctx, e, args, "restore")
}

func changeDeleted(ctx context.Context, e *env, args []string, name string) error {
	fs := newFlagSet(e, name, name+" CALL (CALL = postcall's id or the platform's call_id)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("%s: name exactly one CALL", name)
	}
	ref := pos[0]
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.Close()
	var res *retention.SoftDeleteResult
	if name == "delete" {
		res, err = a.Retention.Delete(ctx, ref)
	} else {
		res, err = a.Retention.Restore(ctx, ref)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &exitError{code: 1, msg: "not found"}
	case errors.Is(err, retention.ErrPastWindow):
		return &exitError{code: 1, msg: err.Error()}
	case err != nil:
		return err
	}
	hold := ""
	if res.OnHold {
		hold = "; on legal hold: not hard-deleted while the hold lasts"
	}
	switch {
	case name == "restore" && !res.Changed:
		fmt.Fprintf(e.stdout, "%s is not deleted; nothing to restore\n", ref)
	case name == "restore":
		fmt.Fprintf(e.stdout, "restored %s\n", ref)
	case !res.Changed:
		fmt.Fprintf(e.stdout, "%s was already deleted at %s; restorable until %s%s\n", ref,
			res.DeletedAt.UTC().Format(time.RFC3339), res.HardDeleteAt.UTC().Format(time.RFC3339), hold)
	default:
		fmt.Fprintf(e.stdout, "deleted %s (id %s); restorable until %s, then hard-deleted by the next retention run%s\n",
			ref, res.ID, res.HardDeleteAt.UTC().Format(time.RFC3339), hold)
	}
	return nil
}
