// Package call is the domain of one ended phone call: the record the platform
// sends when a call ends (record.go), how it is parsed and validated
// (parse.go) and written back (encode.go), the catalogue of ended reasons,
// and the rules that dispose of a call without a model. A new field of the
// call record starts here.
package call

import (
	"encoding/json"
	"math"
	"strings"
	"time"
)

// Role is who said or did a transcript entry.
type Role string

// The transcript roles. Parsing maps common aliases onto these three (see
// ParseRecord), so code reading a Record only ever sees these values.
const (
	// RoleAgent is the voice agent (the bot).
	RoleAgent Role = "agent"
	// RoleUser is the customer on the line.
	RoleUser Role = "user"
	// RoleTool is a tool or function call the agent made during the call.
	RoleTool Role = "tool"
)

// Turn is one transcript entry.
type Turn struct {
	Role Role   `json:"role"`
	Text string `json:"text"`
	// TMs is the offset from the start of the call in milliseconds, when
	// known.
	TMs *int64 `json:"t_ms,omitempty"`
	// Extra holds the entry's other keys (for example a tool call's name and
	// result) exactly as sent: a record's transcript loses nothing either.
	Extra map[string]json.RawMessage `json:"-"`
}

// Record is one call record as the platform sends it when a call ends (one
// ingest line, one POST /v1/calls body). Optional values are nil or empty when
// absent.
type Record struct {
	// CallID is the platform's id, unique across calls. Required.
	CallID string `json:"call_id"`
	// AgentID names the agent whose plan processes the call. Required.
	AgentID string `json:"agent_id"`
	// EndedAt is when the call ended. Required.
	EndedAt time.Time `json:"ended_at"`
	// EndedReason is the platform's raw reason value, stored as given even
	// when not in the catalogue. EndedReason or Status is required.
	EndedReason string `json:"ended_reason,omitempty"`
	// Status is the platform's final status (completed, failed, voicemail,
	// no_answer, ...).
	Status string `json:"status,omitempty"`

	Direction       string     `json:"direction,omitempty"` // inbound or outbound
	Source          string     `json:"source,omitempty"`
	CampaignID      string     `json:"campaign_id,omitempty"`
	IsTest          bool       `json:"is_test,omitempty"`
	CustomerName    string     `json:"customer_name,omitempty"`
	CustomerRequest string     `json:"customer_request,omitempty"`
	PhoneNumber     string     `json:"phone_number,omitempty"`
	Carrier         string     `json:"carrier,omitempty"`
	DID             string     `json:"did,omitempty"`
	StartedAt       *time.Time `json:"started_at,omitempty"`
	AnsweredAt      *time.Time `json:"answered_at,omitempty"`
	RingMs          *int64     `json:"ring_ms,omitempty"`
	HoldMs          *int64     `json:"hold_ms,omitempty"`
	TalkMs          *int64     `json:"talk_ms,omitempty"`
	// Duration is the call's length in seconds.
	Duration *float64 `json:"duration,omitempty"`
	// DisconnectedBy is bot, customer, voicemail, RNR, timeout, error,
	// no_answer or rejected.
	DisconnectedBy string `json:"disconnected_by,omitempty"`
	Transcript     []Turn `json:"transcript,omitempty"`
	// RecordingKey is the S3 object key of the recording.
	RecordingKey string `json:"recording_key,omitempty"`
	// ContactData is the custom data loaded on the contact (a JSON object).
	ContactData json.RawMessage `json:"contact_data,omitempty"`
	// FunctionOutput is the data the agent's functions saved (a JSON object).
	FunctionOutput json.RawMessage `json:"function_output,omitempty"`
	// Extra holds every other key of the record, known (tool_calls,
	// knowledge_retrievals, turn_metrics, service_errors, transfer, events)
	// or not, exactly as sent, so that nothing the platform sends is lost.
	Extra map[string]json.RawMessage `json:"-"`
}

// UserTurns counts the customer's turns that hold words: a user entry whose
// text is blank (a transcription of noise or silence) is not the customer
// speaking.
func UserTurns(r *Record) int {
	n := 0
	for _, t := range r.Transcript {
		if t.Role == RoleUser && strings.TrimSpace(t.Text) != "" {
			n++
		}
	}
	return n
}

// EffectiveDuration is how long the call lasted, from the best source the
// record has: duration, else talk_ms, else ended_at - answered_at. ok is
// false when the record says nothing about its length, so that a missing
// value is never mistaken for a zero-length call.
func EffectiveDuration(r *Record) (d time.Duration, ok bool) {
	switch {
	case r.Duration != nil:
		return saturate(*r.Duration * float64(time.Second)), true
	case r.TalkMs != nil:
		return saturate(float64(*r.TalkMs) * float64(time.Millisecond)), true
	case r.AnsweredAt != nil && !r.EndedAt.IsZero():
		if d := r.EndedAt.Sub(*r.AnsweredAt); d >= 0 {
			return d, true
		}
	}
	return 0, false
}

// saturate converts nanoseconds to a Duration, clamping values a Duration
// cannot hold instead of overflowing into nonsense.
func saturate(ns float64) time.Duration {
	switch {
	case ns >= math.MaxInt64:
		return math.MaxInt64
	case ns <= math.MinInt64:
		return math.MinInt64
	}
	return time.Duration(ns)
}

// NormalizePhone returns the key phone numbers are looked up and erased by:
// "+" and digits, with the punctuation people write numbers with (spaces,
// dashes, dots, parentheses, slashes) removed, a "tel:" prefix dropped and a
// leading international "00" read as "+". It returns "" when s is not a
// plausible number (letters such as "anonymous", an extension, fewer than 7
// or more than 15 digits). The record keeps phone_number as given; only the
// key is normalised, because a caller id like "anonymous" is a real value.
//
// Without a country code the key is still "+" and the digits as written:
// postcall has no default country, so "(415) 555-0100" and "+1 415 555 0100"
// are different keys. Platforms send E.164, where this never matters.
func NormalizePhone(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 4 && strings.EqualFold(s[:4], "tel:") {
		s = s[4:]
	}
	digits := make([]byte, 0, 16)
	plus := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == '+':
			// A plus is only meaningful in front of the number.
			if plus || len(digits) > 0 {
				return ""
			}
			plus = true
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/' || c == '\t':
		default:
			return ""
		}
	}
	if !plus && len(digits) > 2 && digits[0] == '0' && digits[1] == '0' {
		digits = digits[2:]
	}
	if len(digits) < 7 || len(digits) > 15 {
		return ""
	}
	return "+" + string(digits)
}
