package redact

import (
	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/proto"
)

// notCard are the keywords that, closest to a number with no card word
// around, make it something other than a card.
const notCard = ctxNeg | ctxBank | ctxRouting | ctxSSN | ctxPhone

// runs reads every number of tokens [from, to) and classifies it.
func (s *scan) runs(from, to int) {
	for i := from; i < to; {
		r, ok := s.runAt(i, to)
		if !ok {
			i++
			continue
		}
		if !r.money {
			s.classify(r.items, r.plus)
		}
		i = r.last() + 1
	}
}

// classify finds the entity a number (or a part of it) is, claims it, and
// classifies what is left on either side.
func (s *scan) classify(items []item, plus bool) {
	if len(items) == 0 {
		return
	}
	from, to, e, counted := s.match(items, plus)
	if e == "" {
		return
	}
	first := items[from].first
	if e == PhoneNumber && first > 0 {
		// "(415) 867-5309", "+44 20 ...": the bracket or plus is part of it.
		if prev := &s.toks[first-1]; !prev.claimed && (prev.text == "(" || prev.text == "+" || prev.text == "plus") {
			first--
			if first > 0 && s.toks[first].text == "(" && s.toks[first-1].text == "+" && !s.toks[first-1].claimed {
				first--
			}
		}
	}
	s.claim(first, items[to].last, e, counted)
	s.classify(items[:from], plus && from > 0)
	s.classify(items[to+1:], false)
}

// match returns the entity items[from..to] are, "" when none.
func (s *scan) match(items []item, plus bool) (from, to int, e Entity, counted bool) {
	c := s.contextOf(items[0].first, items[len(items)-1].last)
	total := digitCount(items)
	whole := func(e Entity) (int, int, Entity, bool) { return 0, len(items) - 1, e, true }
	turn := s.toks[items[0].first].turn

	if f, t, ok := cardWindow(items, c); ok {
		// A CVV and expiry read out right after the number go with it.
		if rest := digitCount(items[t+1:]); rest >= 3 && rest <= 8 {
			t = len(items) - 1
		}
		s.lastCardTurn = int(s.toks[items[t].last].turn)
		return f, t, CreditCard, true
	}
	if f, ok := ssnGroups(items); ok && (!c.nearestIs(ctxNeg|ctxBank|ctxRouting|ctxPhone|ctxCard) || c.has(ctxSSN)) {
		return f, f + 2, SSN, true
	}
	if c.has(ctxDOB) && !c.nearestIs(ctxSSN|ctxBank|ctxRouting|ctxCard|ctxPhone) {
		if md, ok := numericDate(items); ok {
			s.birth = birth{turn: int(s.toks[items[len(items)-1].last].turn), date: md}
			return whole(DateOfBirth)
		}
	}
	ssnContext := c.has(ctxSSN) && (c.nearestIs(ctxSSN) || !c.nearestIs(ctxNeg|ctxBank|ctxRouting|ctxPhone|ctxCard))
	if ssnContext {
		if f, t, ok := window(items, 9, validSSN); ok {
			return f, t, SSN, true
		}
		if total == 4 && c.has(ctxLast) {
			return whole(SSN)
		}
	}
	// A valid phone number asked for as one is one, even "the phone
	// number on the account"; after a plus it is one whatever came before.
	// The lookup is made once for both places that ask.
	phoneTried, phoneFound, phoneFrom, phoneTo := false, false, 0, 0
	phone := func() bool {
		if !phoneTried {
			phoneTried = true
			phoneFrom, phoneTo, phoneFound = s.phoneWindow(items, plus, c.has(ctxPhone))
		}
		return phoneFound
	}
	if ((c.has(ctxPhone) && !c.nearestIs(ctxNeg|ctxSSN|ctxCard|ctxDOB)) || plus) && phone() {
		return phoneFrom, phoneTo, PhoneNumber, true
	}
	// Not a card (checked above), so "account number for the debit" is
	// an account.
	bank := c.has(ctxBank|ctxRouting) && !c.nearestIs(ctxNeg|ctxPhone|ctxSSN|ctxDOB)
	if bank {
		if f, t, ok := window(items, 9, validRouting); ok {
			return f, t, BankAccount, true
		}
		if total >= 6 && total <= 17 {
			return whole(BankAccount)
		}
	}
	if !c.nearestIs(ctxNeg | ctxBank | ctxRouting | ctxSSN | ctxCard | ctxDOB) {
		if phone() {
			return phoneFrom, phoneTo, PhoneNumber, true
		}
	}
	// A CVV or expiry after a card, asked for or said with it: "expiry
	// 12/27, code 737", "10 28, 552". After a month name the number is the
	// month's year, which monthDates takes with the month.
	if s.cardRecent(int(turn)) && c.wide&(ctxExpiry|ctxCVV) != 0 && c.nearestWide&(ctxExpiry|ctxCVV|ctxCard) != 0 &&
		total >= 3 && total <= 10 && !s.afterMonth(items[0].first) {
		return 0, len(items) - 1, CreditCard, false
	}
	return 0, 0, "", false
}

// afterMonth reports whether the token before i is a month name.
func (s *scan) afterMonth(i int) bool {
	return i > 0 && s.toks[i-1].info.month != 0
}

// cardLengthRank orders card lengths (13-19, by index) by how common they
// are, so that a number followed by more digits is cut where a real card
// ends.
var cardLengthRank = [20]int8{13: 4, 14: 3, 15: 1, 16: 0, 17: 5, 18: 6, 19: 2}

// cardWindow finds the first item-aligned window of 13-19 digits that
// passes the Luhn check and either has card words around it or starts like
// a card (2-6: Mastercard, Amex, Visa, Discover, ...).
func cardWindow(items []item, c context) (from, to int, ok bool) {
	if c.nearestIs(notCard) && !c.has(ctxCard) {
		return 0, 0, false
	}
	for f := range items {
		if first := items[f].digits[0]; !c.has(ctxCard) && (first < '2' || first > '6') {
			continue
		}
		best, bestRank := -1, int8(len(cardLengthRank))
		n := 0
		for t := f; t < len(items); t++ {
			n += len(items[t].digits)
			if n > 19 {
				break
			}
			if rank := cardLengthRank[n]; n >= 13 && rank < bestRank && luhn(items[f:t+1]) {
				best, bestRank = t, rank
			}
		}
		if best >= 0 {
			return f, best, true
		}
	}
	return 0, 0, false
}

// luhn checks the digits of items with the Luhn algorithm.
func luhn(items []item) bool {
	sum, double := 0, false
	for i := len(items) - 1; i >= 0; i-- {
		d := items[i].digits
		for k := len(d) - 1; k >= 0; k-- {
			v := int(d[k] - '0')
			if double {
				v *= 2
				if v > 9 {
					v -= 9
				}
			}
			sum += v
			double = !double
		}
	}
	return sum%10 == 0
}

// ssnGroups finds three items grouped 3-2-4 that make a valid SSN.
func ssnGroups(items []item) (int, bool) {
	for f := 0; f+2 < len(items); f++ {
		if len(items[f].digits) == 3 && len(items[f+1].digits) == 2 && len(items[f+2].digits) == 4 &&
			validSSN(joinDigits(items[f:f+3])) {
			return f, true
		}
	}
	return 0, false
}

// validSSN rejects numbers the SSA never issues: area 000, 666 or 900-999,
// group 00, serial 0000.
func validSSN(d string) bool {
	if len(d) != 9 {
		return false
	}
	area, group, serial := d[:3], d[3:5], d[5:]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// window finds the first item-aligned window of n digits valid says is
// one.
func window(items []item, n int, valid func(string) bool) (from, to int, ok bool) {
	for f := range items {
		total := 0
		for t := f; t < len(items); t++ {
			total += len(items[t].digits)
			if total > n {
				break
			}
			if total == n && valid(joinDigits(items[f:t+1])) {
				return f, t, true
			}
		}
	}
	return 0, 0, false
}

// validRouting checks an ABA routing number: a Federal Reserve prefix and
// the 3-7-1 checksum.
func validRouting(d string) bool {
	if len(d) != 9 {
		return false
	}
	prefix := int(d[0]-'0')*10 + int(d[1]-'0')
	if !(prefix <= 12 || (prefix >= 21 && prefix <= 32) || (prefix >= 61 && prefix <= 72) || prefix == 80) {
		return false
	}
	sum := 0
	for i := 0; i < 9; i += 3 {
		sum += 3*int(d[i]-'0') + 7*int(d[i+1]-'0') + int(d[i+2]-'0')
	}
	return sum%10 == 0
}

// phoneStarts is how many items into a number a phone number may start:
// one told among other numbers starts near the front of what is left once
// those are classified.
const phoneStarts = 4

// phoneWindow finds an item-aligned window that is a valid phone number:
// E.164 after "+", "plus" or "00", otherwise a North American number.
func (s *scan) phoneWindow(items []item, plus, intl bool) (from, to int, ok bool) {
	for f := range min(len(items), phoneStarts) {
		valid := func(d string) bool { return s.validPhone(d, plus && f == 0, intl) }
		total := 0
		for t := f; t < len(items); t++ {
			total += len(items[t].digits)
			if total > 15 {
				break
			}
			if total >= 8 && valid(joinDigits(items[f:t+1])) {
				// Take the longest valid reading ending later, if any.
				to = t
				for u := t + 1; u < len(items); u++ {
					total += len(items[u].digits)
					if total > 15 {
						break
					}
					if valid(joinDigits(items[f : u+1])) {
						to = u
					}
				}
				return f, to, true
			}
		}
	}
	return 0, 0, false
}

// phoneLookupsPerToken sets how many numbering-plan lookups one transcript
// may make: 64, plus one per this many tokens. A lookup costs about 4-7 µs
// for a North American number and about 20 µs for an international one
// (parsed from its string) on the development machine; a transcript of
// nothing but numbers would otherwise cost seconds.
const phoneLookupsPerToken = 8

// validPhone checks a number against the numbering plans (libphonenumber's
// metadata): as an international number after a plus or 00, else as a
// North American one, else, with phone words around it, as an
// international number whose plus was not said. Once the transcript's
// lookups are spent, a number of the right shape counts as valid: the
// redactor errs on the side of removing.
func (s *scan) validPhone(d string, plus, intl bool) bool {
	switch {
	case plus:
		return s.lookup(len(d) >= 8, func() bool { return validIn("+"+d, "") })
	case len(d) > 2 && d[:2] == "00":
		return s.lookup(len(d) >= 10, func() bool { return validIn("+"+d[2:], "") })
	case len(d) < 10:
		return false
	}
	if nanpShaped(d) && s.lookup(true, func() bool { return validNANP(d) }) {
		return true
	}
	return intl && len(d) >= 11 && d[0] != '1' && s.lookup(true, func() bool { return validIn("+"+d, "") })
}

// lookup runs check while the transcript has lookups left, else answers
// shaped.
func (s *scan) lookup(shaped bool, check func() bool) bool {
	if !shaped {
		return false
	}
	if s.phoneLookups <= 0 {
		return true
	}
	s.phoneLookups--
	return check()
}

// nanpShaped reports whether d can be a North American number: ten digits
// (after an optional 1) whose area code and exchange start with 2-9.
func nanpShaped(d string) bool {
	if len(d) == 11 && d[0] == '1' {
		d = d[1:]
	}
	return len(d) == 10 && d[0] >= '2' && d[3] >= '2'
}

// validNANP checks a ten- or eleven-digit number against the United
// States' and Canada's numbering plans. It hands the library the parsed
// number itself: parsing the string and finding which of calling code 1's
// two dozen regions it belongs to costs three times as much as the check.
func validNANP(d string) bool {
	if len(d) == 11 {
		d = d[1:]
	}
	num := &phonenumbers.PhoneNumber{CountryCode: proto.Int32(1), NationalNumber: proto.Uint64(uint64(atoi(d)))}
	return phonenumbers.IsValidNumberForRegion(num, "US") || phonenumbers.IsValidNumberForRegion(num, "CA")
}

func validIn(number, region string) bool {
	num, err := phonenumbers.Parse(number, region)
	return err == nil && phonenumbers.IsValidNumber(num)
}

// numericDate reads a number said near a birth keyword as a date: m d y or
// y m d parts, or 6 or 8 digits run together (MMDDYY, MMDDYYYY, YYYYMMDD).
// It returns the month and day (read US-style, month first, when both
// orders are possible).
func numericDate(items []item) (monthDay, bool) {
	md := func(m, d int) (monthDay, bool) { return monthDay{m, d}, validDay(m, d) }
	short := func(i int) bool { return len(items[i].digits) <= 2 }
	switch {
	case len(items) == 2 && short(0) && short(1):
		return md(atoi(items[0].digits), atoi(items[1].digits))
	case len(items) == 3:
		a, b, c := atoi(items[0].digits), atoi(items[1].digits), atoi(items[2].digits)
		switch {
		case len(items[0].digits) == 4 && validYear(a):
			return md(b, c)
		case (len(items[2].digits) == 4 || len(items[2].digits) == 2) && short(0) && short(1):
			if validDay(a, b) {
				return md(a, b)
			}
			return md(b, a)
		}
	}
	d := joinDigits(items)
	switch len(d) {
	case 6:
		return md(atoi(d[:2]), atoi(d[2:4]))
	case 8:
		if validYear(atoi(d[4:])) && validDay(atoi(d[:2]), atoi(d[2:4])) {
			return md(atoi(d[:2]), atoi(d[2:4]))
		}
		if validYear(atoi(d[:4])) {
			return md(atoi(d[4:6]), atoi(d[6:]))
		}
	}
	return monthDay{}, false
}

// monthDay is a date's month (1-12) and day (1-31).
type monthDay struct{ month, day int }

func validDay(month, day int) bool { return month >= 1 && month <= 12 && day >= 1 && day <= 31 }
func validYear(y int) bool         { return y >= 1900 && y <= 2099 }

func atoi(d string) int {
	n := 0
	for i := 0; i < len(d); i++ {
		n = n*10 + int(d[i]-'0')
	}
	return n
}
