package redact

import (
	"sort"
	"strings"

	"github.com/postcall/postcall/call"
)

// Redactor replaces the entities of one plan in transcripts. The zero value
// redacts nothing. It is safe for concurrent use.
type Redactor struct {
	enabled [7]bool // by Entity.index
}

// New returns a redactor for the given entities (see ParseEntities).
func New(entities []Entity) *Redactor {
	r := &Redactor{}
	for _, e := range entities {
		if i := e.index(); i >= 0 {
			r.enabled[i] = true
		}
	}
	return r
}

// Transcript returns a copy of turns with every entity the redactor was
// built for replaced by its placeholder, and how many of each it replaced.
// turns itself is not changed. A redactor built for no entity returns turns
// and nil.
//
// Every entity is detected whether or not it is redacted, so that one type
// is never mistaken for another (a card's digits are not a phone number
// because cards are not redacted); only the listed types are replaced.
// Consecutive turns of one speaker are read as one text, so a number split
// across them is found; each turn keeps its own placeholder for its part.
func (r *Redactor) Transcript(turns []call.Turn) ([]call.Turn, Counts) {
	if r == nil || r.enabled == [len(r.enabled)]bool{} {
		return turns, nil
	}
	counts := Counts{}
	for i, e := range Entities {
		if r.enabled[i] {
			counts[e] = 0
		}
	}
	s := newScan(turns)
	s.detect(turns)
	if len(s.spans) == 0 {
		return turns, counts
	}
	out := make([]call.Turn, len(turns))
	copy(out, turns)
	pieces := make([][]piece, len(turns))
	for _, sp := range s.spans {
		if !r.enabled[sp.entity.index()] {
			continue
		}
		if sp.counted {
			counts[sp.entity]++
		}
		for _, p := range s.pieces(sp) {
			pieces[p.turn] = append(pieces[p.turn], p)
		}
	}
	for t, ps := range pieces {
		if len(ps) > 0 {
			out[t].Text = replace(turns[t].Text, ps)
		}
	}
	return out, counts
}

// piece is the part of one turn's text a span covers.
type piece struct {
	turn       int
	start, end int
	entity     Entity
}

// pieces splits a span into one piece per turn it covers.
func (s *scan) pieces(sp span) []piece {
	var ps []piece
	for k := sp.first; k <= sp.last; {
		turn := s.toks[k].turn
		end := k
		for end+1 <= sp.last && s.toks[end+1].turn == turn {
			end++
		}
		ps = append(ps, piece{turn: int(turn), start: int(s.toks[k].start), end: int(s.toks[end].end), entity: sp.entity})
		k = end + 1
	}
	return ps
}

// replace writes text with each piece replaced by its placeholder. Pieces
// never overlap: their tokens were claimed once.
func replace(text string, ps []piece) string {
	sort.Slice(ps, func(i, j int) bool { return ps[i].start < ps[j].start })
	var b strings.Builder
	b.Grow(len(text))
	at := 0
	for _, p := range ps {
		b.WriteString(text[at:p.start])
		b.WriteString(p.entity.Placeholder())
		at = p.end
	}
	b.WriteString(text[at:])
	return b.String()
}

// newScan tokenizes every turn.
func newScan(turns []call.Turn) *scan {
	size := 0
	for _, t := range turns {
		size += len(t.Text)
	}
	s := &scan{toks: make([]token, 0, size/4+8), turnStart: make([]int, len(turns)+1), lastCardTurn: -1, birth: birth{turn: -1}}
	for i, t := range turns {
		s.turnStart[i] = len(s.toks)
		s.toks = tokenize(s.toks, int32(i), t.Text)
	}
	s.turnStart[len(turns)] = len(s.toks)
	s.phoneLookups = 64 + len(s.toks)/phoneLookupsPerToken
	return s
}

// detect runs the detectors over each group of consecutive turns of one
// speaker, most specific first: what one detector claims, the next does
// not see.
func (s *scan) detect(turns []call.Turn) {
	for g := 0; g < len(turns); {
		end := g + 1
		for end < len(turns) && turns[end].Role == turns[g].Role {
			end++
		}
		from, to := s.turnStart[g], s.turnStart[end]
		s.emails(from, to)
		s.ibans(from, to)
		s.monthDates(from, to, false)
		s.runs(from, to)
		s.monthDates(from, to, true)
		g = end
	}
}
