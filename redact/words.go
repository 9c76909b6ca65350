package redact

import "strings"

// numKind says how a word reads as a number.
type numKind uint8

const (
	numNone     numKind = iota
	numDigit            // zero..nine: one digit
	numTeen             // ten..nineteen: two digits
	numTens             // twenty..ninety: two digits, or the tens of a compound
	numHundred          // "hundred" after a number
	numThousand         // "thousand" after a number
	numDouble           // "double five" = 55
	numTriple           // "triple zero" = 000
)

// ctxMask is the set of context classes a keyword belongs to.
type ctxMask uint16

const (
	ctxCard    ctxMask = 1 << iota // card, visa, credit ...
	ctxCVV                         // cvv, security code ...
	ctxExpiry                      // expiry, expires ...
	ctxSSN                         // social, ssn
	ctxBank                        // account, checking, savings ...
	ctxRouting                     // routing, aba
	ctxDOB                         // born, birthday, birth, dob
	ctxPhone                       // phone, cell, call me ...
	ctxNeg                         // order, confirmation, zip ...: a number that is none of the above
	ctxLast                        // "last" (four of the social)
	ctxMoney                       // dollars, bucks ...: the number before it is an amount
)

// wordInfo is what the redactor knows about one lower-case word.
type wordInfo struct {
	num   numKind
	value int8 // the digit, teen or tens value
	// ambiguous marks homophones ASR writes for digits ("for", "to", "oh"):
	// they count as digits only next to other numbers.
	ambiguous bool
	// ordinal is the day an ordinal word names (first = 1, twentieth = 20).
	ordinal int8
	// month is 1-12 for month names and their abbreviations.
	month int8
	ctx   ctxMask
	// filler words and spoken separators may sit inside a spoken number
	// without ending it ("four one one one uh one one", "dash").
	filler bool
	// emailJoin is the character a spoken email connector stands for
	// ("dot" = '.', "underscore" = '_').
	emailJoin byte
}

// vocab is one word of the vocabulary: its lower-case spelling, which
// tokens of it in any case share, and what it means.
type vocab struct {
	name string
	info wordInfo
}

// words is the redactor's vocabulary. Words not in it are plain words.
var words = buildWords()

func buildWords() map[string]*vocab {
	w := map[string]wordInfo{}
	add := func(info wordInfo, names ...string) {
		for _, n := range names {
			cur := w[n]
			if info.num != numNone {
				cur.num, cur.value, cur.ambiguous = info.num, info.value, info.ambiguous
			}
			if info.ordinal != 0 {
				cur.ordinal = info.ordinal
			}
			if info.month != 0 {
				cur.month = info.month
			}
			cur.ctx |= info.ctx
			cur.filler = cur.filler || info.filler
			if info.emailJoin != 0 {
				cur.emailJoin = info.emailJoin
			}
			w[n] = cur
		}
	}
	digits := [][]string{
		{"zero", "nought", "nil"}, {"one"}, {"two"}, {"three"}, {"four"}, {"five"},
		{"six"}, {"seven"}, {"eight"}, {"nine", "niner"},
	}
	for v, names := range digits {
		add(wordInfo{num: numDigit, value: int8(v)}, names...)
	}
	// ASR homophones of digits: only read as digits next to other numbers.
	for v, names := range map[int8][]string{
		0: {"oh", "o"}, 1: {"won"}, 2: {"to", "too"}, 3: {"tree"}, 4: {"for", "fore"}, 8: {"ate"},
	} {
		add(wordInfo{num: numDigit, value: v, ambiguous: true}, names...)
	}
	for v, n := range []string{"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
		"seventeen", "eighteen", "nineteen"} {
		add(wordInfo{num: numTeen, value: int8(10 + v)}, n)
	}
	for v, n := range []string{"twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"} {
		add(wordInfo{num: numTens, value: int8(20 + 10*v)}, n)
	}
	add(wordInfo{num: numTens, value: 40}, "fourty")
	add(wordInfo{num: numHundred}, "hundred")
	add(wordInfo{num: numThousand}, "thousand")
	add(wordInfo{num: numDouble}, "double")
	add(wordInfo{num: numTriple}, "triple")

	ordinals := []string{"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
		"tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
		"eighteenth", "nineteenth", "twentieth"}
	for i, n := range ordinals {
		add(wordInfo{ordinal: int8(i + 1)}, n)
	}
	add(wordInfo{ordinal: 30}, "thirtieth")
	add(wordInfo{ordinal: 8}, "eight") // "march eight": ASR drops the "th"

	months := [][]string{
		{"january", "jan"}, {"february", "feb"}, {"march", "mar"}, {"april", "apr"}, {"may"}, {"june", "jun"},
		{"july", "jul"}, {"august", "aug"}, {"september", "sept", "sep"}, {"october", "oct"},
		{"november", "nov"}, {"december", "dec"},
	}
	for i, names := range months {
		add(wordInfo{month: int8(i + 1)}, names...)
	}

	add(wordInfo{ctx: ctxCard}, "card", "cards", "credit", "debit", "visa", "mastercard", "amex", "discover",
		"american", "express", "cc", "payment", "pay", "charge")
	add(wordInfo{ctx: ctxCVV}, "cvv", "cvc", "cvv2", "cvc2", "csc", "cid", "security", "digits", "back", "code")
	add(wordInfo{ctx: ctxExpiry}, "expiry", "expiration", "expire", "expires", "expiring", "exp", "expiry's",
		"valid", "thru", "through")
	add(wordInfo{ctx: ctxSSN}, "social", "ssn", "socials", "social's")
	add(wordInfo{ctx: ctxBank}, "account", "acct", "accounts", "account's", "checking", "savings", "bank",
		"deposit", "wire")
	add(wordInfo{ctx: ctxRouting}, "routing", "aba", "transit", "routing's")
	add(wordInfo{ctx: ctxDOB}, "born", "birthday", "birth", "dob", "birthdate", "bday", "birthday's")
	add(wordInfo{ctx: ctxPhone}, "phone", "cell", "mobile", "call", "reach", "text", "callback", "landline",
		"fax", "dial", "telephone", "tel")
	add(wordInfo{ctx: ctxNeg}, "order", "confirmation", "reference", "ref", "ticket", "tracking",
		"invoice", "zip", "zipcode", "postal", "extension", "ext", "policy", "claim", "serial", "model",
		"flight", "room", "pin", "member", "membership", "id", "reservation", "booking", "receipt",
		"transaction", "sku", "item", "part", "version", "unit", "apartment", "suite", "street", "avenue",
		"passcode", "otp", "verification", "year", "years", "minutes", "seconds", "hours", "miles",
		"am", "pm", "o'clock", "percent", "ending", "ends")
	add(wordInfo{ctx: ctxLast}, "last")
	add(wordInfo{ctx: ctxMoney}, "dollars", "dollar", "bucks", "cents", "euros", "euro", "pounds", "usd",
		"grand", "k")

	add(wordInfo{filler: true}, "uh", "um", "umm", "uhh", "er", "erm", "ah", "hmm", "mm", "dash", "hyphen",
		"space", "slash")
	add(wordInfo{emailJoin: '.'}, "dot", "period", "point")
	add(wordInfo{emailJoin: '_'}, "underscore")
	add(wordInfo{emailJoin: '-'}, "dash", "hyphen")
	add(wordInfo{emailJoin: '+'}, "plus")
	// Words the detectors compare tokens with.
	add(wordInfo{}, "at", "of", "the", "and", "a", "i", "st", "nd", "rd", "th")
	out := make(map[string]*vocab, len(w))
	for n, info := range w {
		out[n] = &vocab{name: n, info: info}
	}
	return out
}

// lookupLower looks s up in a set of lower-case words, whatever its case.
func lookupLower(set map[string]bool, s string) bool {
	if set[s] {
		return true
	}
	return set[strings.ToLower(s)]
}

// topLevelDomains end a spoken or written email domain. A spoken address
// must end in one of them ("at home dot ..." is not an address otherwise).
var topLevelDomains = map[string]bool{
	"com": true, "net": true, "org": true, "edu": true, "gov": true, "mil": true, "io": true, "co": true,
	"uk": true, "us": true, "ca": true, "de": true, "fr": true, "es": true, "it": true, "nl": true,
	"au": true, "nz": true, "in": true, "mx": true, "br": true, "jp": true, "ie": true, "ch": true,
	"be": true, "se": true, "no": true, "dk": true, "fi": true, "pl": true, "info": true, "biz": true,
	"me": true, "ai": true, "app": true, "dev": true, "tv": true, "us.com": true, "online": true,
	"xyz": true, "pro": true,
}

// dotTLD are words ASR writes for a dot and a top-level domain together.
var dotTLD = map[string]bool{"dotcom": true, "dotnet": true, "dotorg": true, "dotedu": true}
