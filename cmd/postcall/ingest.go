package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/postcall/postcall/call"
	"github.com/postcall/postcall/internal/app"
)

// maxLineBytes bounds one call record: long calls have long transcripts.
const maxLineBytes = 64 << 20

// runIngest stores call records read as JSON Lines and enqueues their
// processing. Each line stands alone: a bad line is reported with its number
// and nothing of it is stored, while good lines go in. Exit status 0 only if
// every line was accepted.
func runIngest(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "ingest", "ingest [FILE] (JSON Lines; stdin when no FILE or -)")
	quiet := fs.Bool("q", false, "print only the summary and rejected lines")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageErr("ingest: want at most one FILE")
	}
	in := e.stdin
	name := "stdin"
	if len(pos) == 1 && pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, pos[0]
	}
	a, err := openApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.Close()

	var stats struct{ lines, queued, auto, duplicate, rejected int }
	reader := bufio.NewReaderSize(in, 1<<20)
	for lineNo := 1; ; lineNo++ {
		line, tooLong, readErr := readLine(reader)
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return fmt.Errorf("read %s line %d: %w", name, lineNo, readErr)
		}
		if lineNo == 1 {
			// A UTF-8 byte order mark, as some editors write: not part of
			// the record.
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		if tooLong {
			stats.lines++
			stats.rejected++
			fmt.Fprintf(e.stderr, "%s line %d: rejected: longer than %d MiB (skipped)\n", name, lineNo, maxLineBytes>>20)
		} else if len(bytes.TrimSpace(line)) > 0 {
			stats.lines++
			rec, err := call.ParseRecord(line)
			if err == nil {
				var res *ingestOutcome
				res, err = ingestOne(ctx, a, rec)
				if err == nil {
					switch {
					case res.duplicate:
						stats.duplicate++
					case res.auto != "":
						stats.auto++
					default:
						stats.queued++
					}
					if !*quiet {
						fmt.Fprintf(e.stdout, "line %d: %s -> %s %s\n", lineNo, rec.CallID, res.id, res.summary())
					}
				}
			}
			if err != nil {
				stats.rejected++
				fmt.Fprintf(e.stderr, "%s line %d: rejected: %v\n", name, lineNo, err)
			}
		}
		if errors.Is(readErr, io.EOF) {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Fprintf(e.stdout, "%s: %d queued for analysis, %d auto-disposed, %d already ingested, %d rejected\n",
		plural(stats.lines, "line"), stats.queued, stats.auto, stats.duplicate, stats.rejected)
	if stats.rejected > 0 {
		return errSilent
	}
	return nil
}

// readLine reads one line of any length up to maxLineBytes. A longer line
// is skipped to its end, so that the next one is read whole, and reported
// with tooLong.
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLineBytes {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			return nil, true, err
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, false, err
		}
	}
}

// utf8BOM is the UTF-8 encoding of U+FEFF, the byte order mark.
var utf8BOM = []byte("\xEF\xBB\xBF")

type ingestOutcome struct {
	id        string
	duplicate bool
	auto      string
	runs      int
}

func (o *ingestOutcome) summary() string {
	switch {
	case o.duplicate:
		return "(already ingested; nothing enqueued)"
	case o.auto != "":
		return "(auto disposition: " + o.auto + ")"
	default:
		return fmt.Sprintf("(queued: %s)", plural(o.runs, "run"))
	}
}

func ingestOne(ctx context.Context, a *app.App, rec *call.Record) (*ingestOutcome, error) {
	res, err := a.Calls.Ingest(ctx, rec)
	if err != nil {
		return nil, err
	}
	out := &ingestOutcome{id: res.ID.String(), duplicate: res.Duplicate, runs: len(res.Runs)}
	if res.Auto != nil {
		out.auto = res.Auto.Disposition
	}
	return out, nil
}
