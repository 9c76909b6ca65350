package redact

// monthDates finds dates with a month name in tokens [from, to): dates of
// birth near a birth keyword ("March 14th, 1985", "the fourteenth of march
// nineteen eighty five") and, when expiry is set, a card's expiry near an
// expiry keyword after a card ("expires September twenty seven").
func (s *scan) monthDates(from, to int, expiry bool) {
	for k := from; k < to; k++ {
		t := &s.toks[k]
		if t.claimed || t.kind != tokWord || t.info.month == 0 {
			continue
		}
		turn := int(t.turn)
		if expiry && !s.cardRecent(turn) {
			// The second pass only looks for a card's expiry: without a
			// card before it, the date is not parsed again.
			continue
		}
		// "may" and "march" are also plain words: a month needs a day or a
		// year next to it, which the parse below demands.
		first, last, day, hasYear := s.dateAround(k, to)
		hasDay := day > 0
		if !hasDay && !hasYear {
			continue
		}
		if !s.free(first, last) {
			continue
		}
		c := s.contextOf(first, last)
		switch {
		case !expiry && (c.has(ctxDOB) || s.birthRepeated(turn, monthDay{int(t.info.month), day})):
			s.claim(first, last, DateOfBirth, true)
			if hasDay {
				s.birth = birth{turn: int(s.toks[last].turn), date: monthDay{int(t.info.month), day}}
			}
			k = last
		case expiry && c.wide&ctxExpiry != 0:
			s.claim(first, last, CreditCard, false)
			k = last
		}
	}
}

// dateAround reads a date around the month name at token k: an optional
// day before it ("the 14th of"), an optional day after it ("14th", "the
// fourteenth", "twenty first") and an optional year ("1985", "nineteen
// eighty five", "'85"). day is 0 when there is none.
func (s *scan) dateAround(k, to int) (first, last, day int, hasYear bool) {
	first, last = k, k
	hasDay := false
	// Day first: [the] DAY [of] MONTH.
	b := k - 1
	if b >= 0 && s.toks[b].text == "of" {
		b--
	}
	if b >= 0 {
		if f, ok := s.dayEndingAt(b); ok {
			first, hasDay, day = f, true, s.dayValue(f, b)
			if first > 0 && s.toks[first-1].text == "the" {
				first--
			}
		}
	}
	n := k + 1
	if !hasDay {
		if n < to && s.toks[n].text == "the" {
			n++
		}
		if l, ok := s.dayAt(n, to); ok {
			last, hasDay, day = l, true, s.dayValue(n, l)
			n = l + 1
		}
	}
	for n < to && (s.toks[n].text == "," || s.toks[n].text == "of" || s.toks[n].text == "'") {
		n++
	}
	if n < to {
		if r, ok := s.runAt(n, to); ok {
			d := joinDigits(r.items)
			if (len(d) == 4 && validYear(atoi(d))) || len(d) == 2 {
				last, hasYear = r.last(), true
			}
		}
	}
	if !hasYear {
		// The year first: "nineteen eighty five, june second".
		if f, ok := s.yearEndingBefore(first); ok {
			first, hasYear = f, true
		}
	}
	return first, last, day, hasYear
}

// yearEndingBefore finds a four-digit year, written or said in up to four
// words, that ends right before token k (a comma may sit between).
func (s *scan) yearEndingBefore(k int) (first int, ok bool) {
	end := k
	if end > 0 && s.toks[end-1].text == "," {
		end--
	}
	for back := 4; back >= 1; back-- {
		f := end - back
		if f < 0 {
			continue
		}
		if r, isNum := s.runAt(f, end); isNum && r.first() == f && r.last() == end-1 {
			if d := joinDigits(r.items); len(d) == 4 && validYear(atoi(d)) {
				return f, true
			}
		}
	}
	return 0, false
}

// dayAt reads a day of the month at token i: "14", "14th", "fourteenth",
// "twenty first", "fourteen". last is its last token.
func (s *scan) dayAt(i, to int) (last int, ok bool) {
	if i >= to || s.toks[i].claimed {
		return 0, false
	}
	t := &s.toks[i]
	switch {
	case t.kind == tokNum && len(t.text) <= 2:
		if d := atoi(t.text); d < 1 || d > 31 {
			return 0, false
		}
		if i+1 < to && s.toks[i+1].glued && isOrdinalSuffix(s.toks[i+1].text) {
			return i + 1, true
		}
		return i, true
	case t.info.ordinal != 0 && t.info.num == numNone:
		return i, true
	case t.info.num == numTens && (t.info.value == 20 || t.info.value == 30):
		k := i + 1
		if k < to && s.toks[k].text == "-" {
			k++
		}
		if k < to && s.toks[k].info.ordinal > 0 && s.toks[k].info.ordinal < 10 {
			return k, true
		}
		if t.info.value == 20 {
			return i, true
		}
	case t.info.ordinal != 0 || t.info.num == numTeen || (t.info.num == numDigit && !t.info.ambiguous):
		return i, true
	}
	return 0, false
}

// dayValue is the day of the month tokens first..last (read by dayAt)
// name.
func (s *scan) dayValue(first, last int) int {
	d := 0
	for k := first; k <= last; k++ {
		t := &s.toks[k]
		switch {
		case t.kind == tokNum:
			d += atoi(t.text)
		case t.info.ordinal != 0 && (k > first || t.info.num == numNone):
			d += int(t.info.ordinal)
		case t.info.num != numNone:
			d += int(t.info.value)
		}
	}
	return d
}

// dayEndingAt reads a day of the month whose last token is k, for "the
// 14th of March"; first is its first token.
func (s *scan) dayEndingAt(k int) (first int, ok bool) {
	for f := max(k-1, 0); f <= k; f++ {
		if l, ok := s.dayAt(f, k+1); ok && l == k {
			return f, true
		}
	}
	return 0, false
}
