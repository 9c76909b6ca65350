package redact

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/call"
)

// all redacts every entity.
var all = New(Entities)

// user is one customer turn.
func user(text string) call.Turn { return call.Turn{Role: call.RoleUser, Text: text} }

// agent is one agent turn.
func agent(text string) call.Turn { return call.Turn{Role: call.RoleAgent, Text: text} }

func redactOne(t *testing.T, turns ...call.Turn) []string {
	t.Helper()
	out, _ := all.Transcript(turns)
	texts := make([]string, len(out))
	for i, turn := range out {
		texts[i] = turn.Text
	}
	return texts
}

func TestEntities(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		turns []call.Turn
		want  []string
	}{
		// Cards.
		{"card spaced", []call.Turn{user("my card is 4111 1111 1111 1111 thanks")}, []string{"my card is [CREDIT_CARD] thanks"}},
		{"card dashed", []call.Turn{user("4111-1111-1111-1111")}, []string{"[CREDIT_CARD]"}},
		{"card run together", []call.Turn{user("it's 5555555555554444.")}, []string{"it's [CREDIT_CARD]."}},
		{"amex 15", []call.Turn{user("amex 3782 822463 10005")}, []string{"amex [CREDIT_CARD]"}},
		{"card spoken", []call.Turn{user("four one one one one one one one one one one one one one one one")}, []string{"[CREDIT_CARD]"}},
		{"card spoken with for", []call.Turn{user("sure it's for one one one, one one one one, one one one one, one one one one")}, []string{"sure it's [CREDIT_CARD]"}},
		{"card split across turns", []call.Turn{user("the card is 4111 1111"), user("1111 1111 okay")}, []string{"the card is [CREDIT_CARD]", "[CREDIT_CARD] okay"}},
		{"card fails luhn", []call.Turn{user("order number 4111 1111 1111 1112")}, []string{"order number 4111 1111 1111 1112"}},
		{"card with cvv and expiry", []call.Turn{user("4111 1111 1111 1111 12/27 123")}, []string{"[CREDIT_CARD]"}},
		{"expiry and cvv in later turns", []call.Turn{
			user("card number 4111 1111 1111 1111"), agent("And the expiration date?"), user("oh nine twenty seven"),
			agent("And the security code on the back?"), user("one two three"),
		}, []string{"card number [CREDIT_CARD]", "And the expiration date?", "[CREDIT_CARD]", "And the security code on the back?", "[CREDIT_CARD]"}},
		{"expiry month name", []call.Turn{user("visa 4012 8888 8888 1881 expires September 2027")}, []string{"visa [CREDIT_CARD] expires [CREDIT_CARD]"}},
		{"cvv without card stays", []call.Turn{agent("What's the security code?"), user("one two three")}, []string{"What's the security code?", "one two three"}},
		// SSNs.
		{"ssn dashed", []call.Turn{user("123-45-6789")}, []string{"[SSN]"}},
		{"ssn spaced", []call.Turn{user("it is 123 45 6789")}, []string{"it is [SSN]"}},
		{"ssn together needs context", []call.Turn{user("my social is 123456789")}, []string{"my social is [SSN]"}},
		{"ssn together without context", []call.Turn{user("ticket 123456789")}, []string{"ticket 123456789"}},
		{"ssn spoken after question", []call.Turn{agent("What is your social security number?"), user("one two three four five six seven eight nine")}, []string{"What is your social security number?", "[SSN]"}},
		{"ssn area 666", []call.Turn{user("666-45-6789")}, []string{"666-45-6789"}},
		{"ssn area 000", []call.Turn{user("my social is 000-45-6789")}, []string{"my social is 000-45-6789"}},
		{"ssn area 9xx", []call.Turn{user("my ssn is 912-45-6789")}, []string{"my ssn is 912-45-6789"}},
		{"ssn last four", []call.Turn{user("the last four of my social are 6789")}, []string{"the last four of my social are [SSN]"}},
		// IBAN.
		{"iban grouped", []call.Turn{user("my IBAN is DE89 3704 0044 0532 0130 00 ok")}, []string{"my IBAN is [IBAN] ok"}},
		{"iban compact", []call.Turn{user("GB82WEST12345698765432")}, []string{"[IBAN]"}},
		{"iban bad check", []call.Turn{user("GB82WEST12345698765433")}, []string{"GB82WEST12345698765433"}},
		// Bank.
		{"account", []call.Turn{user("my account number is 12345678901")}, []string{"my account number is [BANK_ACCOUNT]"}},
		{"routing", []call.Turn{user("routing number 021000021 and account 000123456789")}, []string{"routing number [BANK_ACCOUNT] and account [BANK_ACCOUNT]"}},
		{"routing bad checksum alone", []call.Turn{user("the routing is 021000022")}, []string{"the routing is [BANK_ACCOUNT]"}},
		{"account balance", []call.Turn{user("my account has $1,250.00 in it")}, []string{"my account has $1,250.00 in it"}},
		// Email.
		{"email written", []call.Turn{user("send it to dana.smith@example.com please")}, []string{"send it to [EMAIL] please"}},
		{"email spoken", []call.Turn{user("it's dana at example dot com")}, []string{"it's [EMAIL]"}},
		{"email spoken dotted", []call.Turn{user("dana dot smith at gmail dot co dot uk")}, []string{"[EMAIL]"}},
		{"email spelled", []call.Turn{user("d a n a at gmail.com")}, []string{"[EMAIL]"}},
		{"at not email", []call.Turn{user("I'll be at home at five")}, []string{"I'll be at home at five"}},
		// Phone.
		{"phone", []call.Turn{user("call me at (415) 867-5309")}, []string{"call me at [PHONE_NUMBER]"}},
		{"phone spoken", []call.Turn{user("it's four one five eight six seven five three oh nine")}, []string{"it's [PHONE_NUMBER]"}},
		{"phone international", []call.Turn{user("+44 20 7946 0958")}, []string{"[PHONE_NUMBER]"}},
		{"phone invalid", []call.Turn{user("my number is 123 456 7890")}, []string{"my number is 123 456 7890"}},
		// Dates of birth.
		{"dob numeric", []call.Turn{user("my date of birth is 03/14/1985")}, []string{"my date of birth is [DATE_OF_BIRTH]"}},
		{"dob words", []call.Turn{user("I was born on March 14th, 1985")}, []string{"I was born on [DATE_OF_BIRTH]"}},
		{"dob spoken", []call.Turn{agent("And your date of birth?"), user("the fourteenth of march nineteen eighty five")}, []string{"And your date of birth?", "[DATE_OF_BIRTH]"}},
		{"date without birth", []call.Turn{user("the appointment is March 14th, 2027")}, []string{"the appointment is March 14th, 2027"}},
		// Negatives.
		{"price", []call.Turn{user("it was $4,111.11 last month")}, []string{"it was $4,111.11 last month"}},
		{"zip", []call.Turn{user("my zip code is 94107")}, []string{"my zip code is 94107"}},
		{"year", []call.Turn{user("I've been a customer since 2019")}, []string{"I've been a customer since 2019"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, redactOne(t, tt.turns...))
		})
	}
}

func TestOnlyListedEntitiesAreRedacted(t *testing.T) {
	t.Parallel()
	r := New([]Entity{SSN})
	out, counts := r.Transcript([]call.Turn{user("card 4111 1111 1111 1111, social 123-45-6789")})
	require.Equal(t, "card 4111 1111 1111 1111, social [SSN]", out[0].Text)
	require.Equal(t, Counts{SSN: 1}, counts)
}

func TestCountsAndInputUnchanged(t *testing.T) {
	t.Parallel()
	in := []call.Turn{user("4111 1111 1111 1111 and 5555 5555 5555 4444"), agent("thanks")}
	out, counts := all.Transcript(in)
	require.Equal(t, "[CREDIT_CARD] and [CREDIT_CARD]", out[0].Text)
	require.Equal(t, "4111 1111 1111 1111 and 5555 5555 5555 4444", in[0].Text, "the input is not changed")
	require.Equal(t, 2, counts[CreditCard])
	require.Equal(t, 0, counts[Email])
	require.Len(t, counts, len(Entities))
}

func TestNoEntitiesRedactsNothing(t *testing.T) {
	t.Parallel()
	in := []call.Turn{user("123-45-6789")}
	out, counts := New(nil).Transcript(in)
	require.Equal(t, in, out)
	require.Nil(t, counts)
}

func TestParseEntities(t *testing.T) {
	t.Parallel()
	got, err := ParseEntities([]string{"email", "credit_card"})
	require.NoError(t, err)
	require.Equal(t, []Entity{CreditCard, Email}, got)

	_, err = ParseEntities([]string{"email", "cc", "social", "email"})
	require.Error(t, err)
	require.Contains(t, err.Error(), `unknown entities "cc", "social"`)
	require.Contains(t, err.Error(), `"email" listed twice`)
	require.True(t, strings.Contains(err.Error(), "known: credit_card, ssn, iban, bank_account, email, phone_number, date_of_birth"))
}

func TestPlaceholder(t *testing.T) {
	t.Parallel()
	require.Equal(t, "[DATE_OF_BIRTH]", DateOfBirth.Placeholder())
}

// FuzzTranscript feeds arbitrary text, in one turn or split over two turns
// of one speaker, to every detector: redaction must never panic, keep the
// turns, and count no more entities than it placed placeholders.
func FuzzTranscript(f *testing.F) {
	for _, seed := range []string{
		"my card is 4111 1111 1111 1111 expiry 12/27 code 123", "social 123-45-6789", "dana at example dot com",
		"GB82WEST12345698765432", "routing 021000021 account 12345678", "+44 20 7946 0958",
		"born the fourteenth of march nineteen eighty five", "a.b@c.d@e.f at at at", "for for oh oh double triple",
		"\u00e9\u00e8 1\u00a02 \u2013 3", "", "@", "$", "march", "of march", "the 31st of",
	} {
		f.Add(seed, 3)
	}
	f.Fuzz(func(t *testing.T, text string, cut int) {
		turns := []call.Turn{agent("what's the number?"), user(text)}
		if cut > 0 && cut < len(text) {
			turns = []call.Turn{agent("what's the number?"), user(text[:cut]), user(text[cut:])}
		}
		out, counts := all.Transcript(turns)
		require.Len(t, out, len(turns))
		placeholders, total := 0, 0
		for _, turn := range out {
			for _, e := range Entities {
				placeholders += strings.Count(turn.Text, e.Placeholder())
			}
		}
		for _, e := range Entities {
			require.GreaterOrEqual(t, counts[e], 0)
			total += counts[e]
		}
		for _, turn := range turns {
			for _, e := range Entities {
				placeholders -= strings.Count(turn.Text, e.Placeholder())
			}
		}
		require.LessOrEqual(t, total, placeholders)
	})
}

// TestLongInputIsLinear redacts megabytes of sentences, one endless number
// and one endless address: bounded runs and addresses keep it linear (a
// quadratic pass over this input would run past the test timeout).
func TestLongInputIsLinear(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("my social is 123-45-6789 and ", 30000) + strings.Repeat("1 ", 100000) +
		strings.Repeat("a dot ", 30000) + "at x dot com"
	out, counts := all.Transcript([]call.Turn{user(long)})
	require.GreaterOrEqual(t, counts[SSN], 30000)
	require.NotContains(t, out[0].Text, "123-45-6789")
}

func TestCountsJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Counts{Email: 2, CreditCard: 1, SSN: 0})
	require.NoError(t, err)
	require.Equal(t, `{"credit_card":1,"ssn":0,"email":2}`, string(b), "canonical order, zeros kept")
	b, err = json.Marshal(Counts(nil))
	require.NoError(t, err)
	require.Equal(t, "null", string(b))
	var back Counts
	require.NoError(t, json.Unmarshal([]byte(`{"email":2,"credit_card":1,"ssn":0}`), &back))
	require.Equal(t, Counts{Email: 2, CreditCard: 1, SSN: 0}, back)
	_, err = json.Marshal(Counts{"cvv": 1})
	require.Error(t, err)
}

func TestDateOfBirthYearFirst(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"born [DATE_OF_BIRTH], thanks"}, redactOne(t, user("born nineteen eighty five, june second, thanks")))
	require.Equal(t, []string{"my birthday is [DATE_OF_BIRTH]"}, redactOne(t, user("my birthday is 1990 May 3rd")))
	require.Equal(t, []string{"I moved in 2019, june second"}, redactOne(t, user("I moved in 2019, june second")), "no birth word")
}

// TestPhoneLookupBudget: a transcript of nothing but phone numbers spends
// its numbering-plan lookups, after which numbers of the right shape are
// redacted without one (erring on the side of removing), so that such a
// transcript costs linear time.
func TestPhoneLookupBudget(t *testing.T) {
	t.Parallel()
	// 211 is not an area code: invalid, yet North American in shape.
	require.Equal(t, []string{"call 211 555 0100"}, redactOne(t, user("call 211 555 0100")))
	flood := strings.Repeat("call 415 555 0100 ", 3000)
	out, counts := all.Transcript([]call.Turn{user(flood + "call 211 555 0100")})
	require.Equal(t, 3001, counts[PhoneNumber])
	require.NotContains(t, out[0].Text, "211 555 0100")
}

func TestDateOfBirthReadBack(t *testing.T) {
	t.Parallel()
	got := redactOne(t,
		agent("What's your date of birth?"), user("ten fifteen eighty two"),
		agent("Sorry, was that October 15th?"), user("yes, October 15th, 1982"),
		agent("Great. Your renewal is on October 16th."))
	require.Equal(t, []string{"What's your date of birth?", "[DATE_OF_BIRTH]", "Sorry, was that [DATE_OF_BIRTH]?",
		"yes, [DATE_OF_BIRTH]", "Great. Your renewal is on October 16th."}, got, "only the same month and day is the birth date again")
}

func TestExpirySpokenWithSlash(t *testing.T) {
	t.Parallel()
	got := redactOne(t, user("card 5425 2334 3010 9903"), agent("expiration?"), user("oh six slash twenty nine"))
	require.Equal(t, "[CREDIT_CARD]", got[2])
}
