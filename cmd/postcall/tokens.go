package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postcall/postcall/access"
	"github.com/postcall/postcall/store"
)

// runTokens manages the named tokens of the HTTP API and the console.
func runTokens(ctx context.Context, e *env, args []string) error {
	const usageLine = "tokens create --name NAME --role admin|viewer | tokens list | tokens revoke NAME"
	if len(args) == 0 {
		return usageErr("tokens: want create, list or revoke")
	}
	fs := newFlagSet(e, "tokens "+args[0], usageLine)
	name := fs.String("name", "", "the token's name (create)")
	role := fs.String("role", "", "admin or viewer (create)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	switch args[0] {
	case "create":
		if len(pos) > 0 {
			return usageErr("tokens create: unexpected argument %q", pos[0])
		}
		var problems []string
		if *name == "" {
			problems = append(problems, "--name is required")
		}
		if *role == "" {
			problems = append(problems, "--role is required (admin or viewer)")
		} else if _, err := access.ParseRole(*role); err != nil {
			problems = append(problems, "--"+err.Error())
		}
		if len(problems) > 0 {
			return usageErr("tokens create: %s", strings.Join(problems, "; "))
		}
	case "list":
		if len(pos) > 0 {
			return usageErr("tokens list: unexpected argument %q", pos[0])
		}
	case "revoke":
		if len(pos) != 1 {
			return usageErr("tokens revoke: name exactly one token")
		}
	default:
		return usageErr("tokens: unknown subcommand %q (want create, list or revoke)", args[0])
	}
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.Close()
	switch args[0] {
	case "create":
		secret, err := a.Access.CreateToken(ctx, *name, access.Role(*role))
		if errors.Is(err, store.ErrDuplicate) {
			return &exitError{code: 1, msg: fmt.Sprintf("a token named %q exists (names stay taken after revoke)", *name)}
		}
		if err != nil {
			return err
		}
		// stdout alone holds the secret, so that `$(postcall tokens create ...)` captures it.
		fmt.Fprintln(e.stdout, secret)
		fmt.Fprintf(e.stderr, "created %s token %q; it is shown only this once\n", *role, *name)
	case "list":
		tokens, err := a.Access.Tokens(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tLAST USED\tREVOKED")
		for _, t := range tokens {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, t.CreatedAt.UTC().Format(time.RFC3339),
				timeOrDash(t.LastUsedAt), timeOrDash(t.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		n, err := a.Access.RevokeToken(ctx, pos[0])
		if errors.Is(err, store.ErrNotFound) {
			return &exitError{code: 1, msg: fmt.Sprintf("no active token named %q", pos[0])}
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked %s; %s ended\n", pos[0], plural(int(n), "console session"))
	}
	return nil
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
