// Command postcall does the work a voice-AI platform needs after every phone
// call ends: analysis, QC, dispositions, recordings, CRM pushes and
// retention. Each subcommand lives in its own file with its own flag set,
// reads the configuration, builds postcall with internal/app and calls the
// use cases (pipeline.Calls, retention.Service); this file only dispatches.
// A new command is a new file here; what it does goes in a domain package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// env is what a subcommand may touch of the outside world; tests give their
// own.
type env struct {
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	environ []string
}

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"migrate":   {"apply River's and postcall's migrations (safe to repeat)", runMigrate},
		"worker":    {"run the River workers, periodic jobs and the HTTP server until SIGINT/SIGTERM", runWorker},
		"agents":    {"agents apply FILE | agents list", runAgents},
		"ingest":    {"store call records (JSON Lines) and enqueue their processing", runIngest},
		"show":      {"show one call (CALL = id or call_id) [--json]", runShow},
		"reanalyze": {"run analysis and/or QC again with the agent's current plan", runReanalyze},
		"redeliver": {"replay a call's CRM/webhook deliveries [--integration NAME]", runRedeliver},
		"purge":     {"run the purge and the soft-delete retention now; --call/--phone: erasure request [--dry-run]", runPurge},
		"delete":    {"soft-delete a call (restorable inside its retention window)", runDelete},
		"restore":   {"restore a soft-deleted call inside its retention window", runRestore},
		"hold":      {"hold set|clear (--call CALL | --agent AGENT) | hold list: legal holds", runHold},
		"tokens":    {"tokens create --name NAME --role admin|viewer | tokens list | tokens revoke NAME", runTokens},
		"audit":     {"retention runs and audit [--run RUN | --call CALL]", runAudit},
		"workers":   {"worker processes and their last heartbeat", runWorkers},
	}
}

// exitError carries an exit status other than 1.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// errSilent exits 1 after the command already said why.
var errSilent = &exitError{code: 1}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, e *env) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "postcall: unknown command %q\n\n", args[0])
		usage(e.stderr, cmds)
		return 2
	}
	if args[0] != "worker" {
		// The worker's output is its logs, which slog escapes itself.
		stdout, stderr := newTerminalSafe(e.stdout), newTerminalSafe(e.stderr)
		defer stdout.Flush() //nolint:errcheck // nothing left to report it to
		defer stderr.Flush() //nolint:errcheck
		e = &env{stdin: e.stdin, stdout: stdout, stderr: stderr, environ: e.environ}
	}
	err := cmd.run(ctx, e, args[1:])
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(e.stderr, "postcall %s: %s\n", args[0], ee.msg)
		}
		return ee.code
	}
	fmt.Fprintf(e.stderr, "postcall %s: %v\n", args[0], err)
	return 1
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: postcall <command> [flags]")
	fmt.Fprintln(w)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Configuration is read from the environment; see README.md. `postcall <command> -h` shows a command's flags.")
}

// newFlagSet returns a flag set that reports errors as usage errors (exit 2)
// instead of exiting the process.
func newFlagSet(e *env, name, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: postcall %s\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args allowing flags after positional arguments
// (`show CALL --json`), as users type them.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{code: 2}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...) + " (see -h)"}
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	if strings.HasSuffix(word, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(word, "y"))
	}
	return fmt.Sprintf("%d %ss", n, word)
}
