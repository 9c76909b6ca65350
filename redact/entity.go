// Package redact removes what must never be stored from call transcripts:
// card numbers, social security numbers, IBANs, bank account and routing
// numbers, email addresses, phone numbers and dates of birth. Transcripts are
// speech-to-text output, so detection reads numbers written as digits with
// any separators, spoken as words (with ASR's usual homophones: "for" for
// four, "oh" for zero), and split across two consecutive turns of one
// speaker. Each match is replaced by a placeholder naming its type
// ([CREDIT_CARD]); what it replaced is returned nowhere, only counted.
package redact

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Entity is one kind of personal data the redactor can remove.
type Entity string

// The entities, in the order placeholders and counts list them.
const (
	// CreditCard is a payment card number of 13-19 digits that passes the
	// Luhn check; a CVV or expiry said with it or asked for after it is
	// part of it (replaced, not counted again).
	CreditCard Entity = "credit_card"
	// SSN is a US social security number.
	SSN Entity = "ssn"
	// IBAN is an international bank account number with a valid mod-97
	// check.
	IBAN Entity = "iban"
	// BankAccount is a bank account number or an ABA routing number said
	// near words such as account or routing.
	BankAccount Entity = "bank_account"
	// Email is an email address, written or spoken ("dana at example dot
	// com").
	Email Entity = "email"
	// PhoneNumber is a phone number that is valid in its numbering plan.
	PhoneNumber Entity = "phone_number"
	// DateOfBirth is a date said near born, birthday, date of birth or DOB.
	DateOfBirth Entity = "date_of_birth"
)

// Entities is every entity, in canonical order.
var Entities = []Entity{CreditCard, SSN, IBAN, BankAccount, Email, PhoneNumber, DateOfBirth}

// Placeholder is the text that replaces a redacted entity: its name in
// upper case between brackets, such as [CREDIT_CARD].
func (e Entity) Placeholder() string {
	if i := e.index(); i >= 0 {
		return placeholders[i]
	}
	return "[" + strings.ToUpper(string(e)) + "]"
}

// placeholders are the entities' placeholders, by index in Entities.
var placeholders = func() []string {
	p := make([]string, len(Entities))
	for i, e := range Entities {
		p[i] = "[" + strings.ToUpper(string(e)) + "]"
	}
	return p
}()

// index is e's position in Entities, -1 when e is not an entity.
func (e Entity) index() int {
	return slices.Index(Entities, e)
}

// ParseEntities checks a plan's list of entity names. It returns the
// entities in canonical order, or an error naming every unknown or repeated
// name.
func ParseEntities(names []string) ([]Entity, error) {
	var unknown, repeated []string
	seen := make([]bool, len(Entities))
	for _, n := range names {
		i := Entity(n).index()
		switch {
		case i < 0:
			unknown = append(unknown, fmt.Sprintf("%q", n))
		case seen[i]:
			repeated = append(repeated, fmt.Sprintf("%q", n))
		default:
			seen[i] = true
		}
	}
	var problems []string
	if len(unknown) > 0 {
		problems = append(problems, fmt.Sprintf("unknown %s %s (known: %s)", plural(len(unknown), "entity", "entities"),
			strings.Join(unknown, ", "), known()))
	}
	if len(repeated) > 0 {
		problems = append(problems, fmt.Sprintf("%s listed twice", strings.Join(repeated, ", ")))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	out := make([]Entity, 0, len(names))
	for i, ok := range seen {
		if ok {
			out = append(out, Entities[i])
		}
	}
	return out, nil
}

func known() string {
	s := make([]string, len(Entities))
	for i, e := range Entities {
		s[i] = string(e)
	}
	return strings.Join(s, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Counts is how many entities of each type a redaction replaced. It holds a
// key for every entity the redactor was asked for, zero included, so that a
// document shows what was checked; it never holds a value.
type Counts map[Entity]int

// MarshalJSON writes the counts in the order of Entities (jsonb does not
// keep an object's key order); nil counts are null. encoding/json's own
// decoding of a map reads them back.
func (c Counts) MarshalJSON() ([]byte, error) {
	if c == nil {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for _, e := range Entities {
		n, ok := c[e]
		if !ok {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%d", e, n)
	}
	for e := range c {
		if e.index() < 0 {
			return nil, fmt.Errorf("redaction counts: %q is not an entity", e)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
