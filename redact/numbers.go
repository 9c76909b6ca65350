package redact

import "strconv"

// item is one part of a number as it was said or written: a digit string
// ("4111"), a digit word ("four"), a compound ("forty one" = "41",
// "nineteen eighty five" is two items, "one hundred" = "100").
type item struct {
	first, last int // token indices
	digits      string
}

// run is a number as a sequence of items with only separators between
// them: "4111 1111-1111 1111", "four one one one, one one ...".
type run struct {
	items []item
	// plus is true when a "+" or "plus" comes right before the number.
	plus bool
	// money is true when a currency sign or word is next to the number: an
	// amount is never anything the redactor looks for.
	money bool
}

func (r *run) first() int { return r.items[0].first }
func (r *run) last() int  { return r.items[len(r.items)-1].last }

// digitCount is the number of digits of items.
func digitCount(items []item) int {
	n := 0
	for _, it := range items {
		n += len(it.digits)
	}
	return n
}

// joinDigits concatenates the items' digits.
func joinDigits(items []item) string {
	if len(items) == 1 {
		return items[0].digits
	}
	b := make([]byte, 0, digitCount(items))
	for _, it := range items {
		b = append(b, it.digits...)
	}
	return string(b)
}

// maxRunItems bounds one number: a card read digit by digit with its
// expiry and CVV has under 30 items. Longer runs are cut, so that a
// megabyte of digits costs linear time.
const maxRunItems = 48

// runAt reads the number starting at token i, up to token end (exclusive);
// ok is false when no number starts there.
func (s *scan) runAt(i, end int) (r run, ok bool) {
	j, seps := i, 0
	for j < end && len(r.items) < maxRunItems {
		tok := &s.toks[j]
		if tok.claimed {
			break
		}
		if it, isNum := s.itemAt(j, end, len(r.items) > 0); isNum {
			r.items = append(r.items, it)
			j, seps = it.last+1, 0
			continue
		}
		if len(r.items) > 0 && seps < 3 && isSeparator(tok) {
			j++
			seps++
			continue
		}
		break
	}
	if len(r.items) == 0 {
		return r, false
	}
	if f := r.first(); f > 0 {
		prev := &s.toks[f-1]
		switch {
		case prev.text == "+" || prev.text == "plus":
			r.plus = true
		case prev.text == "$" || prev.text == "£" || prev.text == "€":
			r.money = true
		}
	}
	if l := r.last(); l+1 < len(s.toks) {
		next := &s.toks[l+1]
		r.money = r.money || next.info.ctx&ctxMoney != 0 || next.text == "%"
	}
	return r, true
}

// itemAt reads one item at token i. inRun says whether a number is already
// being read: an ASR homophone ("for", "to") only counts as a digit between
// numbers, "oh" also at the end of one.
func (s *scan) itemAt(i, end int, inRun bool) (item, bool) {
	tok := &s.toks[i]
	if tok.claimed {
		return item{}, false
	}
	if tok.kind == tokNum {
		if i+1 < end && s.toks[i+1].glued && isOrdinalSuffix(s.toks[i+1].text) {
			return item{}, false // "14th" is a day, not a number
		}
		return item{first: i, last: i, digits: tok.text}, true
	}
	if tok.kind != tokWord || tok.info.num == numNone {
		return item{}, false
	}
	// "the last four of my social": "four" counts digits, it is not one.
	if (tok.text == "four" || tok.text == "for") && i > 0 && s.toks[i-1].text == "last" {
		return item{}, false
	}
	switch tok.info.num {
	case numDigit:
		if tok.info.ambiguous {
			// "oh" ends numbers too ("five oh"); digit by digit, any
			// homophone does ("three three for for").
			zero := tok.info.value == 0
			if !s.numberFollows(i+1, end) && !(inRun && (zero || s.spokenDigitBefore(i))) {
				return item{}, false
			}
			return item{first: i, last: i, digits: strconv.Itoa(int(tok.info.value))}, true
		}
		if v, next, ok := s.cardinal(i, end); ok && next > i+1 {
			return item{first: i, last: next - 1, digits: strconv.Itoa(v)}, true
		}
		return item{first: i, last: i, digits: strconv.Itoa(int(tok.info.value))}, true
	case numDouble, numTriple:
		if i+1 >= end {
			return item{}, false
		}
		d, ok := singleDigit(&s.toks[i+1])
		if !ok {
			return item{}, false
		}
		n := 2
		if tok.info.num == numTriple {
			n = 3
		}
		b := make([]byte, n)
		for k := range b {
			b[k] = d
		}
		return item{first: i, last: i + 1, digits: string(b)}, true
	case numTeen, numTens:
		v, next, ok := s.cardinal(i, end)
		if !ok {
			return item{}, false
		}
		return item{first: i, last: next - 1, digits: strconv.Itoa(v)}, true
	}
	return item{}, false
}

// spokenDigitBefore reports whether the item before token i, past
// separators, is one digit said as a word.
func (s *scan) spokenDigitBefore(i int) bool {
	for k := i - 1; k >= 0 && k >= i-3; k-- {
		t := &s.toks[k]
		if t.kind == tokWord && t.info.num == numDigit {
			return true
		}
		if !isSeparator(t) {
			return false
		}
	}
	return false
}

// numberFollows reports whether a number token or word comes at token i,
// after separators.
func (s *scan) numberFollows(i, end int) bool {
	for k := i; k < end && k < i+3; k++ {
		t := &s.toks[k]
		if t.claimed {
			return false
		}
		if t.kind == tokNum || (t.kind == tokWord && t.info.num != numNone && !t.info.ambiguous) {
			return true
		}
		if !isSeparator(t) {
			return false
		}
	}
	return false
}

// singleDigit is the digit a token stands for when it is one.
func singleDigit(t *token) (byte, bool) {
	switch {
	case t.kind == tokNum && len(t.text) == 1:
		return t.text[0], true
	case t.kind == tokWord && t.info.num == numDigit:
		return '0' + byte(t.info.value), true
	}
	return 0, false
}

// cardinal reads a number said in words at token i: a digit, teen or tens
// word, "forty one", and compounds with hundred and thousand ("one hundred
// twenty", "two thousand three"). next is the token after it.
func (s *scan) cardinal(i, end int) (v, next int, ok bool) {
	v, next, ok = s.belowHundred(i, end)
	if !ok {
		return 0, i, false
	}
	if next < end && s.toks[next].info.num == numHundred && v > 0 {
		v *= 100
		next++
		next = s.skipAnd(next, end)
		if rest, n, ok := s.belowHundred(next, end); ok {
			v += rest
			next = n
		}
	}
	if next < end && s.toks[next].info.num == numThousand && v > 0 && v < 1000 {
		v *= 1000
		next++
		next = s.skipAnd(next, end)
		if rest, n, ok := s.cardinal(next, end); ok && rest < 1000 {
			v += rest
			next = n
		}
	}
	return v, next, true
}

func (s *scan) skipAnd(i, end int) int {
	if i < end && s.toks[i].text == "and" {
		return i + 1
	}
	return i
}

// belowHundred reads a digit, teen or tens word, or tens plus digit.
func (s *scan) belowHundred(i, end int) (v, next int, ok bool) {
	if i >= end {
		return 0, i, false
	}
	t := &s.toks[i]
	if t.claimed || t.kind != tokWord || t.info.ambiguous {
		return 0, i, false
	}
	switch t.info.num {
	case numDigit, numTeen:
		return int(t.info.value), i + 1, true
	case numTens:
		v = int(t.info.value)
		k := i + 1
		if k < end && s.toks[k].text == "-" && s.toks[k].glued {
			k++
		}
		if k < end {
			u := &s.toks[k]
			if !u.claimed && u.kind == tokWord && u.info.num == numDigit && u.info.value > 0 &&
				(!u.info.ambiguous || u.text == "for") {
				return v + int(u.info.value), k + 1, true
			}
		}
		return v, i + 1, true
	}
	return 0, i, false
}

func isOrdinalSuffix(s string) bool {
	return s == "st" || s == "nd" || s == "rd" || s == "th"
}
