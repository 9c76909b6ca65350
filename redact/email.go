package redact

// notLocalPart are words that come before "at" in speech but never are an
// address's local part ("email me at", "I'm at").
var notLocalPart = map[string]bool{
	"me": true, "is": true, "it's": true, "its": true, "it": true, "be": true, "at": true, "home": true,
	"work": true, "there": true, "here": true, "look": true, "looking": true, "arrive": true, "meet": true,
	"him": true, "her": true, "them": true, "us": true, "you": true, "i": true, "we": true, "they": true,
	"that": true, "this": true, "was": true, "were": true, "am": true, "are": true, "and": true, "or": true,
	"the": true, "a": true, "an": true, "email": true, "address": true, "mail": true, "my": true,
	"yeah": true, "yes": true, "sure": true, "okay": true, "ok": true, "so": true, "um": true, "uh": true,
	"number": true, "office": true, "school": true, "store": true, "now": true, "one": true, "just": true,
	"that's": true, "i'm": true, "we're": true, "out": true, "stay": true, "staying": true, "live": true,
	"contact": true, "reach": true, "write": true, "send": true, "to": true, "try": true, "use": true,
	"address's": true, "email's": true, "cc": true, "from": true, "of": true, "on": true,
	"for": true, "with": true, "spoken": true, "it'll": true, "wait": true, "no": true, "called": true,
}

// maxAddressTokens bounds how far the local part and the domain of an
// address are read (an address is at most 254 characters), so that a long
// chain of "a dot a dot ..." costs linear time.
const maxAddressTokens = 64

// emails finds addresses in tokens [from, to): written (dana.smith@example.com)
// or spoken ("dana dot smith at example dot com", "d a n a at gmail.com").
func (s *scan) emails(from, to int) {
	for k := from; k < to; k++ {
		t := &s.toks[k]
		if t.claimed || !(t.text == "@" || (t.kind == tokWord && t.text == "at")) {
			continue
		}
		first, ok := s.localPart(k, from)
		if !ok {
			continue
		}
		last, ok := s.domain(k+1, to)
		if !ok || !s.free(first, last) {
			continue
		}
		s.claim(first, last, Email, true)
		k = last
	}
}

// localPart reads the address before the "at" or "@" at token k.
func (s *scan) localPart(k, from int) (first int, ok bool) {
	j := k - 1
	if j < from || !isAddressPart(&s.toks[j]) {
		return 0, false
	}
	from = max(from, k-maxAddressTokens)
	if s.toks[k].text == "@" && s.toks[k].glued {
		// Written: everything glued to the @.
		for j > from && s.toks[j].glued && (isAddressPart(&s.toks[j-1]) || isAddressPunct(s.toks[j-1].text)) {
			j--
		}
		for isAddressPunct(s.toks[j].text) {
			j++
		}
		return j, j < k
	}
	spelled := j > from && len(s.toks[j].text) == 1 && len(s.toks[j-1].text) == 1 && isAddressPart(&s.toks[j-1])
	if s.toks[j].kind == tokWord && notLocalPart[s.toks[j].text] && !spelled {
		return 0, false
	}
	names := false
	for {
		switch {
		case j-2 >= from && isConnector(&s.toks[j-1]) && isAddressPart(&s.toks[j-2]):
			// "dana dot smith", "dana.smith".
			j -= 2
		case j-1 >= from && len(s.toks[j].text) == 1 && len(s.toks[j-1].text) == 1 && isAddressPart(&s.toks[j-1]):
			// Spelled out: "d a n a".
			j--
		case j-1 >= from && s.toks[j].glued && isAddressPart(&s.toks[j-1]):
			// "dana99": a word glued to digits.
			j--
		case j-1 >= from && s.toks[j].kind == tokNum && s.toks[j-1].kind == tokWord && isAddressPart(&s.toks[j-1]) &&
			!notLocalPart[s.toks[j-1].text]:
			// "lee 77": digits said after the name.
			j--
		case j-1 >= from && s.toks[j].kind == tokWord && len(s.toks[j].text) > 1 && len(s.toks[j-1].text) == 1 &&
			s.toks[j-1].kind == tokWord && s.toks[j-1].text != "a" && s.toks[j-1].text != "i":
			// "j smith": an initial.
			j--
		case !names && j == k-1 && j-1 >= from && s.toks[j].kind == tokWord && s.toks[j-1].kind == tokWord &&
			isAddressPart(&s.toks[j-1]) && !notLocalPart[s.toks[j-1].text] && s.toks[j-1].info.num == numNone:
			// "lena ortiz at ...": speech drops the dot between names.
			j--
			names = true
		default:
			return j, true
		}
	}
}

// domain reads the domain after the "at" at token i: labels joined by dots
// ending in a known top-level domain. last is its last token.
func (s *scan) domain(i, to int) (last int, ok bool) {
	to = min(to, i+maxAddressTokens)
	for k, dots := i, 0; ; {
		end, isLabel := s.label(k, to)
		if !isLabel {
			return last, ok
		}
		if dots == 0 && end+2 < to && isAddressPart(&s.toks[end+1]) && isConnector(&s.toks[end+2]) &&
			!lookupLower(topLevelDomains, s.toks[end+1].text) {
			// Speech has no spaces to drop: "at acme corp dot com".
			end++
		}
		if dots > 0 && end == k && lookupLower(topLevelDomains, s.toks[k].text) {
			last, ok = k, true
		}
		n := end + 1
		if n >= to {
			return last, ok
		}
		if dotTLD[s.toks[n].text] && !s.toks[n].claimed {
			return n, true // "example dotcom"
		}
		if !isConnector(&s.toks[n]) {
			return last, ok
		}
		dots++
		k = n + 1
	}
}

// label reads one label of a domain at token k: a word, a spelled run of
// letters ("g m x"), a letter and a word ("g mail"), or parts glued by
// hyphens ("my-shop").
func (s *scan) label(k, to int) (end int, ok bool) {
	if k >= to || !isAddressPart(&s.toks[k]) {
		return 0, false
	}
	end = k
	for end+1 < to && len(s.toks[end].text) == 1 && isAddressPart(&s.toks[end+1]) {
		end++
	}
	for end+1 < to && s.toks[end+1].glued {
		next := &s.toks[end+1]
		switch {
		case isAddressPart(next):
			end++
		case next.text == "-" && end+2 < to && s.toks[end+2].glued && isAddressPart(&s.toks[end+2]):
			end += 2
		default:
			return end, true
		}
	}
	return end, true
}

// isAddressPart reports whether a token can be part of an address: a word
// or digits that is not a connector.
func isAddressPart(t *token) bool {
	return !t.claimed && (t.kind == tokNum || (t.kind == tokWord && t.info.emailJoin == 0))
}

func isAddressPunct(s string) bool { return s == "." || s == "_" || s == "-" || s == "+" }

// isConnector reports whether a token joins two parts of an address: a
// dot, underscore, dash or plus, written or spoken.
func isConnector(t *token) bool {
	return !t.claimed && ((t.kind == tokPunct && isAddressPunct(t.text)) || t.info.emailJoin != 0)
}
