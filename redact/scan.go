package redact

// scan holds the tokens of one transcript while the detectors run over it.
type scan struct {
	toks []token
	// turnStart[t] is the index of turn t's first token; turnStart has one
	// more entry, len(toks).
	turnStart []int
	spans     []span
	// lastCardTurn is the turn of the last card number found, -1 before
	// any: a CVV or expiry is only redacted after a card.
	lastCardTurn int
	// phoneLookups is how many numbering-plan lookups are left (see
	// phoneLookupsPerToken).
	phoneLookups int
	// birth is the last date of birth found: the same month and day said
	// soon after it is it again ("was that October 15th?"), whatever the
	// words around it.
	birth birth
}

// birth is where a date of birth was found and its month and day. It never
// leaves the scan.
type birth struct {
	turn int // -1 before any
	date monthDay
}

// span is one detected entity: tokens first..last (which may cross into the
// next turn of the same speaker).
type span struct {
	first, last int
	entity      Entity
	// counted is false for what belongs to an entity already counted: a
	// card's CVV and expiry.
	counted bool
}

// claim records a detected entity and takes its tokens from the other
// detectors.
func (s *scan) claim(first, last int, e Entity, counted bool) {
	for k := first; k <= last; k++ {
		s.toks[k].claimed = true
	}
	s.spans = append(s.spans, span{first: first, last: last, entity: e, counted: counted})
}

// free reports whether tokens first..last are all unclaimed.
func (s *scan) free(first, last int) bool {
	for k := first; k <= last; k++ {
		if s.toks[k].claimed {
			return false
		}
	}
	return true
}

// context is what the words around a number say it is.
type context struct {
	// any holds every context class said shortly before the number (in its
	// turn or the turn before, usually the agent's question) or right
	// after it.
	any ctxMask
	// nearest is the class of the closest keyword before the number, 0
	// when there is none.
	nearest ctxMask
	// wide and nearestWide are any and nearest reading one turn further
	// back, for a card's CVV and expiry: the question is often two turns
	// back ("And the expiry?" "oh four twenty nine" "04/29, thank you").
	wide, nearestWide ctxMask
}

// contextWindow is how many tokens before a number (in its turn and the
// one before, or two for wide) are read for context, and contextAfter how
// many after it.
const (
	contextWindow = 25
	contextAfter  = 5
)

// contextOf reads the context of tokens first..last.
func (s *scan) contextOf(first, last int) context {
	var c context
	turn := s.toks[first].turn
	near := s.turnStart[max(turn-1, 0)]
	limit := s.turnStart[max(turn-2, 0)]
	for k, n := first-1, 0; k >= limit && n < contextWindow; k, n = k-1, n+1 {
		m := s.toks[k].info.ctx &^ (ctxMoney | ctxLast)
		if k >= near {
			if c.nearest == 0 && m != 0 {
				c.nearest = m
			}
			c.any |= s.toks[k].info.ctx
		}
		if c.nearestWide == 0 && m != 0 {
			c.nearestWide = m
		}
		c.wide |= s.toks[k].info.ctx
	}
	turn = s.toks[last].turn
	for k := last + 1; k < len(s.toks) && k <= last+contextAfter && s.toks[k].turn <= turn+1; k++ {
		c.any |= s.toks[k].info.ctx &^ ctxMoney
	}
	c.wide |= c.any
	return c
}

// nearestIs reports whether the closest keyword is one of m.
func (c context) nearestIs(m ctxMask) bool { return c.nearest&m != 0 }

// has reports whether any keyword of m is around.
func (c context) has(m ctxMask) bool { return c.any&m != 0 }

// birthRepeated reports whether md at turn repeats the date of birth found
// in the few turns before.
func (s *scan) birthRepeated(turn int, md monthDay) bool {
	return s.birth.turn >= 0 && turn-s.birth.turn <= 4 && s.birth.date == md
}

// cardRecent reports whether a card number was found within the last few
// turns before turn.
func (s *scan) cardRecent(turn int) bool {
	return s.lastCardTurn >= 0 && turn-s.lastCardTurn <= 8
}
