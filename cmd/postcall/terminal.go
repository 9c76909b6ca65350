package main

import (
	"fmt"
	"io"
	"sync"
	"unicode/utf8"
)

// terminalSafe writes what it is given with every character a terminal
// could act on escaped: C0 controls other than tab, newline and carriage
// return (the progress bar's), DEL and C1 controls as \u00XX, and bytes
// that are not UTF-8 as \xNN. Records, plans and errors quote text postcall
// does not own (a status, an ended reason, a provider's error): printed
// verbatim, an ESC or OSC sequence in one would drive the operator's
// terminal (set its clipboard with OSC 52, rewrite the screen). \u00XX is
// also a valid escape inside a JSON string, where these characters are the
// only place they can occur in postcall's JSON output, so --json output
// stays valid JSON with the same meaning.
type terminalSafe struct {
	mu sync.Mutex
	w  io.Writer
	// pending is the start of a UTF-8 sequence the last Write ended in.
	pending []byte
}

func newTerminalSafe(w io.Writer) *terminalSafe { return &terminalSafe{w: w} }

func (t *terminalSafe) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := p
	if len(t.pending) > 0 {
		data = append(t.pending, p...)
		t.pending = nil
	}
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				out = fmt.Appendf(out, `\u%04x`, c)
			} else {
				out = append(out, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1 && !utf8.FullRune(data[i:]):
			// The sequence continues in the next Write.
			t.pending = append([]byte(nil), data[i:]...)
			i = len(data)
		case r == utf8.RuneError && size <= 1:
			out = fmt.Appendf(out, `\x%02x`, c)
			i++
		case r >= 0x80 && r <= 0x9f:
			out = fmt.Appendf(out, `\u%04x`, r)
			i += size
		default:
			out = append(out, data[i:i+size]...)
			i += size
		}
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes an incomplete UTF-8 sequence left by the last Write, escaped.
func (t *terminalSafe) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) == 0 {
		return nil
	}
	var out []byte
	for _, c := range t.pending {
		out = fmt.Appendf(out, `\x%02x`, c)
	}
	t.pending = nil
	_, err := t.w.Write(out)
	return err
}
