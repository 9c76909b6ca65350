package analysis

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The demo model's reading rules. Each rule is a plain pattern over the
// transcript; none guesses. A value the rules do not find is null, so a demo
// page shows what the call said or a dash, never an invented fact.

// found is one value the demo read from the call, and where it read it, so
// that a quote can be shown or checked for it.
type found struct {
	value any
	// turn indexes demoCall.Turns; -1 when the value came from the call's
	// facts rather than from a turn.
	turn int
	// quote is the part of the turn's text the value came from, verbatim.
	quote string
}

// demoField is one analysis field or checklist item as the request's schema
// describes it.
type demoField struct {
	name        string
	description string
	// kind is string, number, integer, boolean, enum or date.
	kind   string
	values []string
	// quoted is set when the schema asks for a quote (evidence on).
	quoted bool
}

// cue compiles a case-insensitive pattern matched on word boundaries.
func cue(pattern string) *regexp.Regexp {
	return regexp.MustCompile(`(?i)\b(?:` + pattern + `)\b`)
}

// demoOutcome is what the call came to. Customer phrases decide the sales
// outcomes; either side can say a support issue was resolved.
type demoOutcome string

const (
	outcomeAgreed        demoOutcome = "agreed"
	outcomeCallback      demoOutcome = "callback"
	outcomeNotInterested demoOutcome = "not_interested"
	outcomeDeclined      demoOutcome = "declined"
	outcomeResolved      demoOutcome = "resolved"
	outcomeUnresolved    demoOutcome = "unresolved"
	outcomeTransferred   demoOutcome = "transferred"
)

// success is what a boolean field reads from an outcome.
type success int

const (
	successUnknown success = iota // the outcome says neither (a transfer)
	successYes
	successNo
)

type outcomeRule struct {
	outcome  demoOutcome
	userOnly bool
	phrases  *regexp.Regexp
	success  success
	// label is the outcome in the demo summary.
	label string
	// values are the enum values (in preference order) that name it.
	values []string
}

var outcomeRules = []outcomeRule{
	{outcomeAgreed, true, cue(`sounds good|sounds great|sign me up|let'?s do it|that works|works for me|book it|yes,? please|count me in|i'?m in|let'?s book it`),
		successYes, "agreed to the next step", []string{"agreed", "agree", "accepted", "interested", "booked", "converted", "success", "successful", "qualified", "yes"}},
	{outcomeCallback, true, cue(`call me back|call back|call me later|call me tomorrow|call me next \w+|try me later|try again later|another time|bad time|not a good time`),
		successNo, "asked to be called back", []string{"callback", "call_back", "callback_requested", "follow_up", "later"}},
	{outcomeNotInterested, true, cue(`not interested|stop calling|remove me|take (?:me|us) off|don'?t call|do not call`),
		successNo, "not interested", []string{"not_interested", "uninterested", "no_interest", "declined", "rejected"}},
	{outcomeDeclined, true, cue(`(?:we'?ll|i'?ll) pass|no,? thank you|too expensive|not for us|not right now|we already use|we went with`),
		successNo, "declined", []string{"declined", "rejected", "refused", "lost", "no", "not_interested"}},
	{outcomeResolved, false, cue(`refunded|resolved|fixed|all set|taken care of|working now|works now`),
		successYes, "resolved", []string{"resolved", "solved", "fixed"}},
	{outcomeUnresolved, false, cue(`not resolved|still not working|still doesn'?t work|still broken|didn'?t help|not fixed`),
		successNo, "not resolved", []string{"unresolved", "not_resolved", "escalated", "open"}},
	{outcomeTransferred, false, cue(`transfer(?:ring)? you|connect(?:ing)? you (?:to|with)`),
		successUnknown, "transferred", []string{"transferred", "escalated"}},
}

// outcome is the call's outcome: the last turn saying one decides (what the
// customer ended with counts), the longest phrase within a turn ("not
// resolved" over "resolved"). ok is false when no turn says one.
func (c demoCall) outcome() (rule outcomeRule, at found, ok bool) {
	for i := len(c.Turns) - 1; i >= 0; i-- {
		t := c.Turns[i]
		best := -1
		for _, r := range outcomeRules {
			if r.userOnly && t.Role != "user" {
				continue
			}
			for _, m := range r.phrases.FindAllString(t.Text, -1) {
				if len(m) > best {
					best, rule, at = len(m), r, found{value: string(r.outcome), turn: i, quote: m}
				}
			}
		}
		if best >= 0 {
			return rule, at, true
		}
	}
	return outcomeRule{}, found{}, false
}

// readAnalysis reads every field's value the rules find; fields without
// one are absent from the map.
func readAnalysis(c demoCall, fields []demoField) map[string]found {
	out := make(map[string]found, len(fields))
	rule, at, decided := c.outcome()
	for _, f := range fields {
		var v found
		var ok bool
		switch f.kind {
		case "enum":
			v, ok = c.enumValue(f, rule, at, decided)
		case "boolean":
			v, ok = found{value: rule.success == successYes, turn: at.turn, quote: at.quote}, decided && rule.success != successUnknown
		case "date":
			v, ok = c.date(f)
		case "number", "integer":
			v, ok = c.number(f)
		case "string":
			v, ok = c.text(f, rule, decided)
		}
		if ok {
			out[f.name] = v
		}
	}
	return out
}

// customerSpoke says whether a customer turn holds words.
func (c demoCall) customerSpoke() bool {
	return slices.ContainsFunc(c.Turns, func(t Turn) bool { return t.Role == "user" && strings.TrimSpace(t.Text) != "" })
}

// valueCues are the words that name an enum value beyond the value itself
// (billing: "charged"), for category-like fields.
var valueCues = map[string]string{
	"billing":   `charged?|charges|invoices?|bill|billed|refunds?|payments?|card`,
	"technical": `errors?|not working|doesn'?t work|won'?t (?:work|connect|load)|broken|crash\w*|bugs?|outage|down`,
	"account":   `password|log(?:ged|ging)? ?in|sign(?:ed)? in|accounts?|username|email address`,
}

// enumValue is the value naming the call's outcome when the field has one,
// else the value the customer's words name first (the reason they called),
// by the value itself or its valueCues, else a catch-all value ("other").
func (c demoCall) enumValue(f demoField, rule outcomeRule, at found, decided bool) (found, bool) {
	if decided {
		for _, name := range rule.values {
			if i := slices.IndexFunc(f.values, func(v string) bool { return strings.EqualFold(v, name) }); i >= 0 {
				return found{value: f.values[i], turn: at.turn, quote: at.quote}, true
			}
		}
	}
	patterns := make([]*regexp.Regexp, len(f.values))
	for i, v := range f.values {
		p := regexp.QuoteMeta(strings.ReplaceAll(strings.ToLower(v), "_", " "))
		if extra, ok := valueCues[strings.ToLower(v)]; ok {
			p += "|" + extra
		}
		patterns[i] = cue(p)
	}
	for i, t := range c.Turns {
		if t.Role != "user" {
			continue
		}
		best, pick, quote := -1, 0, ""
		for j, p := range patterns {
			if m := p.FindString(t.Text); m != "" && len(m) > best {
				best, pick, quote = len(m), j, m
			}
		}
		if best >= 0 {
			return found{value: f.values[pick], turn: i, quote: quote}, true
		}
	}
	// The customer spoke but named none of the values: the catch-all value
	// is what the call is, if the field has one.
	if !c.customerSpoke() {
		return found{}, false
	}
	for _, v := range f.values {
		if slices.Contains([]string{"other", "unknown", "general"}, strings.ToLower(v)) {
			return found{value: v, turn: -1}, true
		}
	}
	return found{}, false
}

var (
	emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
	phonePattern = regexp.MustCompile(`\+?\(?\d[\d ().-]{5,}\d`)
	// requestCues mark a customer turn asking or telling something.
	requestCues = regexp.MustCompile(`\?|(?i)\b(?:i need|i want|i'?d like|can you|could you|could we|please|our|my|we)\b`)
	// problemCues mark the sentence where the customer says what is wrong.
	problemCues = cue(`los(?:e|es|ing)|waste\w*|problems?|issues?|slow|struggl\w*|hard to|can'?t|cannot|by hand|manual\w*|charged twice|not working|doesn'?t work|broken|frustrat\w*|too expensive`)
)

// text reads a string field by what its name says it holds: a summary, an
// email address, a phone number, the customer's name, or what is wrong
// (pain points, issue, problem). Other free text is left null.
func (c demoCall) text(f demoField, rule outcomeRule, decided bool) (found, bool) {
	about := strings.ToLower(f.name + " " + f.description)
	words := nameWords(f.name)
	switch {
	case strings.Contains(about, "summary"):
		return c.summary(rule, decided), true
	case strings.Contains(about, "email") || strings.Contains(about, "e-mail"):
		return c.firstUserMatch(emailPattern, nil)
	case slices.Contains(words, "phone"):
		return c.firstUserMatch(phonePattern, func(m string) bool {
			// Seven to fifteen digits, as NormalizePhone wants, and not a date.
			digits := 0
			for _, r := range m {
				if r >= '0' && r <= '9' {
					digits++
				}
			}
			return digits >= 7 && digits <= 15 && !isoDate.MatchString(m)
		})
	case slices.Contains([]string{"name", "customer_name", "lead_name", "contact_name", "caller_name"}, f.name):
		return found{value: c.CustomerName, turn: -1}, c.CustomerName != ""
	case slices.ContainsFunc(words, func(w string) bool {
		return slices.Contains([]string{"pain", "problem", "problems", "issue", "issues", "objection", "objections", "concern", "concerns", "complaint", "challenge", "challenges"}, w)
	}):
		for i, t := range c.Turns {
			if t.Role != "user" {
				continue
			}
			for _, s := range sentences(t.Text) {
				if problemCues.MatchString(s) {
					return found{value: s, turn: i, quote: s}, true
				}
			}
		}
	}
	return found{}, false
}

// summary is built from the customer's first request and the outcome, and
// is labelled demo: it is the one text the demo writes itself.
func (c demoCall) summary(rule outcomeRule, decided bool) found {
	who := c.CustomerName
	if who == "" {
		who = "The customer"
	}
	outcome := "no clear outcome"
	if decided {
		outcome = rule.label
	}
	// The request is the first customer turn asking or telling something
	// (a question, "I need", "our team..."); else the first turn of four
	// words or more (a bare "Sure, go ahead." is not a request); else the
	// first.
	req, long, first := -1, -1, -1
	for i, t := range c.Turns {
		if t.Role != "user" || strings.TrimSpace(t.Text) == "" {
			continue
		}
		if first < 0 {
			first = i
		}
		if len(strings.Fields(t.Text)) < 4 {
			continue
		}
		if long < 0 {
			long = i
		}
		if requestCues.MatchString(t.Text) {
			req = i
			break
		}
	}
	if req < 0 {
		req = long
	}
	if req < 0 {
		req = first
	}
	if req < 0 {
		return found{value: fmt.Sprintf("[demo] %s did not speak. Outcome: %s.", who, outcome), turn: -1}
	}
	said := shorten(strings.TrimSpace(c.Turns[req].Text), 160)
	return found{value: fmt.Sprintf("[demo] %s said: %q Outcome: %s.", who, said, outcome), turn: req, quote: c.Turns[req].Text}
}

// firstUserMatch is the first match of p in the customer's turns that ok
// accepts (nil: any).
func (c demoCall) firstUserMatch(p *regexp.Regexp, ok func(string) bool) (found, bool) {
	for i, t := range c.Turns {
		if t.Role != "user" {
			continue
		}
		for _, m := range p.FindAllString(t.Text, -1) {
			if ok == nil || ok(m) {
				return found{value: m, turn: i, quote: m}, true
			}
		}
	}
	return found{}, false
}

var (
	isoDate     = regexp.MustCompile(`\b(\d{4}-\d{2}-\d{2})\b`)
	weekdayDate = cue(`(?:next |this |on )?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)`)
	tomorrow    = cue(`tomorrow`)
	monthDay    = cue(`(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? (\d{1,2})(?:st|nd|rd|th)?`)
	dayOfMonth  = cue(`(?:the )?(\d{1,2})(?:st|nd|rd|th)? of (jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*`)
	months      = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
)

// dateAt is a date the customer said, and the words that said it.
type dateAt struct {
	day   time.Time
	at    int // byte offset in the turn, to keep a turn's dates in order
	quote string
}

// date reads a date field from the customer's turns: an ISO date, a month
// and day, a weekday (the next one after the call's day: "next Tuesday" and
// "Tuesday" alike) or "tomorrow". A field named for something (demo_date,
// callback_date) takes the first date said where that thing is mentioned in
// the turn or the agent's turn before it; a plain "date" field the first
// date said.
func (c demoCall) date(f demoField) (found, bool) {
	subject := subjectPattern(contextWords(f.name, "date", "day", "when", "on", "at"))
	for i, t := range c.Turns {
		if t.Role != "user" {
			continue
		}
		dates := c.datesIn(t.Text)
		if len(dates) == 0 || !c.mentionedAround(i, subject) {
			continue
		}
		d := dates[0]
		return found{value: d.day.Format(time.DateOnly), turn: i, quote: d.quote}, true
	}
	return found{}, false
}

func (c demoCall) datesIn(text string) []dateAt {
	var out []dateAt
	for _, m := range isoDate.FindAllStringSubmatchIndex(text, -1) {
		if d, err := time.Parse(time.DateOnly, text[m[2]:m[3]]); err == nil {
			out = append(out, dateAt{d, m[0], text[m[0]:m[1]]})
		}
	}
	if !c.Day.IsZero() {
		for _, m := range weekdayDate.FindAllStringSubmatchIndex(text, -1) {
			want := weekday(strings.ToLower(text[m[2]:m[3]]))
			ahead := (int(want)-int(c.Day.Weekday())+6)%7 + 1
			out = append(out, dateAt{c.Day.AddDate(0, 0, ahead), m[0], text[m[0]:m[1]]})
		}
		for _, m := range tomorrow.FindAllStringIndex(text, -1) {
			out = append(out, dateAt{c.Day.AddDate(0, 0, 1), m[0], text[m[0]:m[1]]})
		}
		for _, m := range monthDay.FindAllStringSubmatchIndex(text, -1) {
			if d, ok := c.monthDate(text[m[2]:m[3]], text[m[4]:m[5]]); ok {
				out = append(out, dateAt{d, m[0], text[m[0]:m[1]]})
			}
		}
		for _, m := range dayOfMonth.FindAllStringSubmatchIndex(text, -1) {
			if d, ok := c.monthDate(text[m[4]:m[5]], text[m[2]:m[3]]); ok {
				out = append(out, dateAt{d, m[0], text[m[0]:m[1]]})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b dateAt) int { return a.at - b.at })
	return out
}

// monthDate is month and day in the call's year, or the next year when that
// is already past: people name the next such day.
func (c demoCall) monthDate(month, day string) (time.Time, bool) {
	mi := slices.Index(months, strings.ToLower(month)[:3])
	n, err := strconv.Atoi(day)
	if mi < 0 || err != nil || n < 1 || n > 31 {
		return time.Time{}, false
	}
	d := time.Date(c.Day.Year(), time.Month(mi+1), n, 0, 0, 0, 0, time.UTC)
	if d.Month() != time.Month(mi+1) { // 31 of a 30-day month
		return time.Time{}, false
	}
	if d.Before(c.Day) {
		d = d.AddDate(1, 0, 0)
	}
	return d, true
}

func weekday(name string) time.Weekday {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(d.String(), name) {
			return d
		}
	}
	return time.Sunday
}

var numberWords = map[string]float64{
	"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
	"eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100,
}

// number reads a number the customer said within three words of a word of
// the field's name ("a team of 40 agents" for team_size), or the only number
// in an answer to an agent turn mentioning it. Integers must be whole.
func (c demoCall) number(f demoField) (found, bool) {
	subject := subjectPattern(contextWords(f.name, "number", "num", "count", "total", "amount", "of"))
	if subject == nil {
		return found{}, false
	}
	for i, t := range c.Turns {
		if t.Role != "user" {
			continue
		}
		tokens := strings.FieldsFunc(t.Text, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == ',' || r == '$' || r == '\'')
		})
		var nums []int
		var named []int
		for j, tok := range tokens {
			if _, ok := tokenNumber(tok); ok {
				nums = append(nums, j)
			}
			if subject.MatchString(tok) {
				named = append(named, j)
			}
		}
		for _, n := range nums {
			for _, w := range named {
				if n-w <= 3 && w-n <= 3 {
					return numberFound(f, tokens[n], i)
				}
			}
		}
		if len(nums) == 1 && i > 0 && c.Turns[i-1].Role == "agent" && subject.MatchString(c.Turns[i-1].Text) {
			return numberFound(f, tokens[nums[0]], i)
		}
	}
	return found{}, false
}

func numberFound(f demoField, tok string, turn int) (found, bool) {
	x, _ := tokenNumber(tok)
	quote := strings.TrimRight(tok, ".,")
	if f.kind == "integer" {
		if x != float64(int64(x)) {
			return found{}, false
		}
		return found{value: int64(x), turn: turn, quote: quote}, true
	}
	return found{value: x, turn: turn, quote: quote}, true
}

// tokenNumber reads "40", "$5,000", "2.5" or a number word.
func tokenNumber(tok string) (float64, bool) {
	tok = strings.TrimRight(strings.TrimPrefix(strings.ToLower(tok), "$"), ".,")
	if x, ok := numberWords[tok]; ok {
		return x, true
	}
	if tok == "" || tok[0] < '0' || tok[0] > '9' {
		return 0, false
	}
	x, err := strconv.ParseFloat(strings.ReplaceAll(tok, ",", ""), 64)
	return x, err == nil
}

// qcRule judges the checklist items whose id or description matches keys
// by the first agent turn matching cues (the last one for closing items).
type qcRule struct {
	keys    *regexp.Regexp
	cues    *regexp.Regexp
	fromEnd bool
}

var qcRules = []qcRule{
	{cue(`greet\w*|introduc\w*|intro|hello|identif\w*`), cue(`this is \w+(?: \w+)? (?:from|with|at)|my name is|calling from|thanks? (?:you )?for calling|how (?:can|may) i help|welcome to`), false},
	{cue(`consent\w*|record\w*`), cue(`recorded|recording|record (?:this|the) call`), false},
	{cue(`next|step|book\w*|schedul\w*|follow\w*|propos\w*|appointment|demo`), cue(`book\w*|schedul\w*|calendar|invite|follow[- ]up|send you|call you back|demo`), false},
	{cue(`clos\w*|goodbye|bye|polite\w*|farewell`), cue(`thanks?|thank you|have a (?:great|good|nice|wonderful) (?:day|evening|afternoon|one|week)|goodbye|bye|take care`), true},
	{cue(`verif\w*|identity|authenticat\w*|security`), cue(`confirm your|verify|date of birth|last four|security question|zip code`), false},
	{cue(`empath\w*|apolog\w*|sorry`), cue(`sorry|apologi[sz]e|i understand|i hear you|frustrating`), false},
	{cue(`resolv\w*|resolution|solve\w*|fix\w*`), cue(`refunded|resolved|fixed|all set|taken care of`), false},
	{cue(`disclos\w*|ai|virtual|automated|bot`), cue(`virtual assistant|ai assistant|an ai|automated`), false},
	{cue(`transfer\w*|escalat\w*|hand ?off`), cue(`transfer\w*|connect you|specialist|colleague|escalat\w*`), false},
}

// readChecklist judges each item: passed, with the agent turn that
// satisfied it as evidence, when an agent turn matches the item's cues. An
// item no rule covers matches on the longer words of its own id and
// description.
func readChecklist(c demoCall, items []demoField) map[string]found {
	out := make(map[string]found, len(items))
	for _, it := range items {
		about := strings.ReplaceAll(it.name, "_", " ") + " " + it.description
		var patterns []string
		fromEnd := false
		for _, r := range qcRules {
			if r.keys.MatchString(about) {
				patterns = append(patterns, r.cues.String())
				fromEnd = fromEnd || r.fromEnd
			}
		}
		if len(patterns) == 0 {
			for _, w := range nameWords(about) {
				if len(w) >= 5 && !slices.Contains(stopWords, w) {
					patterns = append(patterns, `(?i)\b`+regexp.QuoteMeta(w[:len(w)-2]))
				}
			}
		}
		out[it.name] = found{value: false, turn: -1}
		if len(patterns) == 0 {
			continue
		}
		p := regexp.MustCompile(strings.Join(patterns, "|"))
		for k := range c.Turns {
			i := k
			if fromEnd {
				i = len(c.Turns) - 1 - k
			}
			if t := c.Turns[i]; t.Role == "agent" && p.MatchString(t.Text) {
				out[it.name] = found{value: true, turn: i, quote: t.Text}
				break
			}
		}
	}
	return out
}

var stopWords = []string{"about", "after", "asked", "before", "customer", "customers", "their", "there", "which", "while", "would", "should", "agent", "whether", "during"}

// evidence is a verdict's evidence: the turn that satisfied the item, or
// that none did.
func (c demoCall) evidence(f found) string {
	if f.turn < 0 {
		return "[demo] not found in the transcript"
	}
	t := c.Turns[f.turn]
	where := t.Role
	if t.TMs != nil {
		where += " at " + clock(*t.TMs)
	}
	return fmt.Sprintf("[demo] %s: %q", where, f.quote)
}

// nameWords splits a field name or text into lower-case words.
func nameWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
}

// contextWords are the words of a field name that say what it is about,
// without the generic ones.
func contextWords(name string, generic ...string) []string {
	return slices.DeleteFunc(nameWords(name), func(w string) bool { return slices.Contains(generic, w) || len(w) < 3 })
}

// mentionedAround says whether turn i or the agent turn right before it
// mentions the subject; with no subject, any turn qualifies.
func (c demoCall) mentionedAround(i int, subject *regexp.Regexp) bool {
	if subject == nil || subject.MatchString(c.Turns[i].Text) {
		return true
	}
	return i > 0 && c.Turns[i-1].Role == "agent" && subject.MatchString(c.Turns[i-1].Text)
}

// subjectPattern matches a word starting with one of words ("team" in
// "teams"); "callback" is also said "call (me|you|us) back". It is nil for
// no words.
func subjectPattern(words []string) *regexp.Regexp {
	if len(words) == 0 {
		return nil
	}
	alts := make([]string, len(words))
	for i, w := range words {
		alts[i] = regexp.QuoteMeta(w) + `\w*`
		if w == "callback" {
			alts[i] += `|call (?:me |you |us )?back`
		}
	}
	return cue(strings.Join(alts, "|"))
}

// sentences splits text after ".", "?" and "!".
func sentences(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); i++ {
		if c := text[i]; (c == '.' || c == '?' || c == '!') && (i+1 == len(text) || text[i+1] == ' ') {
			if s := strings.TrimSpace(text[start : i+1]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(text[start:]); s != "" {
		out = append(out, s)
	}
	return out
}
