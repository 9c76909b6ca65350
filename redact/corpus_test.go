package redact

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/call"
)

// corpusCall is one call of testdata/corpus.txt with its labels.
type corpusCall struct {
	name  string
	line  int
	turns []call.Turn
	gold  []piece
}

// readCorpus parses a corpus file (testdata/corpus.txt's header explains
// the format).
func readCorpus(t *testing.T, path string) []corpusCall {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var calls []corpusCall
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(line, "== "):
			calls = append(calls, corpusCall{name: strings.TrimPrefix(line, "== "), line: n})
			continue
		}
		require.NotEmpty(t, calls, "line %d: a turn before the first call", n)
		c := &calls[len(calls)-1]
		role, text, ok := strings.Cut(line, ": ")
		require.True(t, ok && (role == "agent" || role == "user"), "line %d: want agent: or user:", n)
		turn := len(c.turns)
		var b strings.Builder
		for {
			open := strings.Index(text, "{{")
			if open < 0 {
				b.WriteString(text)
				break
			}
			b.WriteString(text[:open])
			closing := strings.Index(text[open:], "}}")
			require.Positive(t, closing, "line %d: unclosed {{", n)
			label := text[open+2 : open+closing]
			typ, value, ok := strings.Cut(label, ":")
			require.True(t, ok && Entity(typ).index() >= 0, "line %d: bad label %q", n, label)
			c.gold = append(c.gold, piece{turn: turn, start: b.Len(), end: b.Len() + len(value), entity: Entity(typ)})
			b.WriteString(value)
			text = text[open+closing+2:]
		}
		c.turns = append(c.turns, call.Turn{Role: call.Role(role), Text: b.String()})
	}
	require.NoError(t, sc.Err())
	return calls
}

// quality is one entity's score over the corpus.
type quality struct {
	gold, found        int // labelled pieces, and those fully redacted as their type
	predicted, correct int // redacted pieces, and those on a label of their type
}

func (q quality) recall() float64    { return ratio(q.found, q.gold) }
func (q quality) precision() float64 { return ratio(q.correct, q.predicted) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// corpora are the labelled files: corpus.txt, on which the detectors were
// tuned, and heldout.txt and heldout2.txt, written afterwards.
var corpora = []string{"testdata/corpus.txt", "testdata/heldout.txt", "testdata/heldout2.txt"}

// TestCorpusQuality measures recall and precision per entity on the
// labelled corpora and fails below the targets: recall 0.98 for cards and
// SSNs, 0.95 for the rest, precision 0.95 for all, on the files together.
// A labelled piece counts as found only when every letter and digit of it
// is redacted as its type, so a number redacted in part is a miss. Run
// with -v for the table README quotes.
func TestCorpusQuality(t *testing.T) {
	t.Parallel()
	total := newScores()
	turns := 0
	for _, path := range corpora {
		calls := readCorpus(t, path)
		scores := newScores()
		for _, c := range calls {
			turns += len(c.turns)
			for _, m := range scores.add(c) {
				t.Logf("%s: %s", path, m)
			}
		}
		scores.log(t, path, calls)
		total.merge(scores)
	}
	t.Logf("all files: %d turns", turns)
	require.GreaterOrEqual(t, turns, 300, "the corpus needs at least 300 turns")
	for _, e := range Entities {
		q := total[e]
		require.Positive(t, q.gold, "%s: no labelled example", e)
		minRecall := 0.95
		if e == CreditCard || e == SSN {
			minRecall = 0.98
		}
		require.GreaterOrEqual(t, q.recall(), minRecall, "%s recall", e)
		require.GreaterOrEqual(t, q.precision(), 0.95, "%s precision", e)
	}
}

// scores holds each entity's quality.
type scores map[Entity]*quality

func newScores() scores {
	s := scores{}
	for _, e := range Entities {
		s[e] = &quality{}
	}
	return s
}

// add scores one call and describes each miss and wrong redaction.
func (sc scores) add(c corpusCall) (misses []string) {
	s := newScan(c.turns)
	s.detect(c.turns)
	var predicted []piece
	for _, sp := range s.spans {
		predicted = append(predicted, s.pieces(sp)...)
	}
	for _, g := range c.gold {
		q := sc[g.entity]
		q.gold++
		if covered(c.turns[g.turn].Text, g, predicted) {
			q.found++
		} else {
			misses = append(misses, fmt.Sprintf("%s: missed %s %q in %q", c.name, g.entity,
				c.turns[g.turn].Text[g.start:g.end], c.turns[g.turn].Text))
		}
	}
	for _, p := range predicted {
		q := sc[p.entity]
		q.predicted++
		if overlapsLabel(p, c.gold) {
			q.correct++
		} else {
			misses = append(misses, fmt.Sprintf("%s: wrongly redacted %s %q in %q", c.name, p.entity,
				c.turns[p.turn].Text[p.start:p.end], c.turns[p.turn].Text))
		}
	}
	return misses
}

func (sc scores) merge(o scores) {
	for e, q := range o {
		t := sc[e]
		t.gold, t.found, t.predicted, t.correct = t.gold+q.gold, t.found+q.found, t.predicted+q.predicted, t.correct+q.correct
	}
}

func (sc scores) log(t *testing.T, name string, calls []corpusCall) {
	turns := 0
	for _, c := range calls {
		turns += len(c.turns)
	}
	t.Logf("%s: %d calls, %d turns", name, len(calls), turns)
	t.Logf("%-14s %6s %6s %9s %9s", "entity", "labels", "recall", "redacted", "precision")
	for _, e := range Entities {
		q := sc[e]
		t.Logf("%-14s %6d %6.3f %9d %9.3f", e, q.gold, q.recall(), q.predicted, q.precision())
	}
}

// covered reports whether every letter and digit of gold is inside a
// predicted piece of its type.
func covered(text string, gold piece, predicted []piece) bool {
	for i := gold.start; i < gold.end; i++ {
		c := text[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			continue
		}
		in := false
		for _, p := range predicted {
			if p.turn == gold.turn && p.entity == gold.entity && p.start <= i && i < p.end {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}

// overlapsLabel reports whether a redacted piece overlaps a label of its
// type.
func overlapsLabel(p piece, gold []piece) bool {
	for _, g := range gold {
		if g.turn == p.turn && g.entity == p.entity && p.start < g.end && g.start < p.end {
			return true
		}
	}
	return false
}
