package call

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxIDLength is the longest call_id or agent_id accepted, in bytes. Ids are
// keys in indexes and URLs; anything longer is a mistake, not an id.
const MaxIDLength = 255

// Problem is one thing wrong with a call record, named by the field it is
// about (a JSON key, or a path such as transcript[2].role; "" for the record
// as a whole).
type Problem struct {
	Field   string
	Message string
}

// String renders the problem as "field: message".
func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// ValidationError lists every problem of one rejected record, so that the
// HTTP API can answer 400 with all field errors at once and ingest can print
// them next to the line number, instead of making the sender fix one field
// per attempt.
type ValidationError struct {
	Problems []Problem
}

// Error lists every problem, each naming its field.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid call record: " + strings.Join(parts, "; ")
}

// The record keys parsed into Record's typed fields. Every other key,
// including the opaque known ones (tool_calls, knowledge_retrievals,
// turn_metrics, service_errors, transfer, events), goes to Record.Extra.
const (
	keyCallID          = "call_id"
	keyAgentID         = "agent_id"
	keyEndedAt         = "ended_at"
	keyEndedReason     = "ended_reason"
	keyStatus          = "status"
	keyDirection       = "direction"
	keySource          = "source"
	keyCampaignID      = "campaign_id"
	keyIsTest          = "is_test"
	keyCustomerName    = "customer_name"
	keyCustomerRequest = "customer_request"
	keyPhoneNumber     = "phone_number"
	keyCarrier         = "carrier"
	keyDID             = "did"
	keyStartedAt       = "started_at"
	keyAnsweredAt      = "answered_at"
	keyRingMs          = "ring_ms"
	keyHoldMs          = "hold_ms"
	keyTalkMs          = "talk_ms"
	keyDuration        = "duration"
	keyDisconnectedBy  = "disconnected_by"
	keyTranscript      = "transcript"
	keyRecordingKey    = "recording_key"
	keyContactData     = "contact_data"
	keyFunctionOutput  = "function_output"
)

// opaqueKeys are known keys whose content postcall stores and returns but
// does not interpret. They live in Extra; like every known key, null means
// absent.
var opaqueKeys = []string{"tool_calls", "knowledge_retrievals", "turn_metrics", "service_errors", "transfer", "events"}

// roleAliases maps the role spellings platforms use onto the three roles.
// "assistant" and "bot" are what OpenAI-style and Vapi transcripts call the
// agent; "customer", "caller" and "human" are the person on the line; the
// tool spellings are Vapi's and Retell's names for tool call entries.
// "system" is deliberately absent: a system prompt is not part of what was
// said, and silently keeping it as a turn would feed it to analysis.
var roleAliases = map[string]Role{
	"agent": RoleAgent, "assistant": RoleAgent, "bot": RoleAgent, "ai": RoleAgent,
	"user": RoleUser, "customer": RoleUser, "caller": RoleUser, "human": RoleUser,
	"tool": RoleTool, "function": RoleTool, "tool_calls": RoleTool, "tool_call": RoleTool,
	"tool_call_result": RoleTool, "tool_call_invocation": RoleTool, "tool_result": RoleTool,
}

// disconnectedByAliases maps accepted spellings (already lower-cased, with
// "-" and " " read as "_") onto the canonical disconnected_by values. The
// agent/user aliases match the transcript roles.
var disconnectedByAliases = map[string]string{
	"bot": ByBot, "agent": ByBot, "assistant": ByBot,
	"customer": ByCustomer, "user": ByCustomer, "caller": ByCustomer,
	"voicemail": ByVoicemail,
	"rnr":       ByRNR, "ring_no_response": ByRNR,
	"timeout":   ByTimeout,
	"error":     ByError,
	"no_answer": ByNoAnswer, "noanswer": ByNoAnswer,
	"rejected": ByRejected,
}

// ParseRecord parses and validates one call record: one ingest line or one
// POST /v1/calls body. On failure it returns a *ValidationError listing every
// problem found.
//
// Rules, beyond the contract's required fields and types:
//   - JSON null for any known field means absent.
//   - Times are RFC 3339 and stored in UTC; started_at <= answered_at <=
//     ended_at where present.
//   - direction is inbound or outbound and disconnected_by one of bot,
//     customer, voicemail, RNR, timeout, error, no_answer, rejected, both in
//     any case (and the aliases in disconnectedByAliases); the canonical
//     spelling is stored.
//   - transcript is an array of {role, text, t_ms?} (or, as seed 004's API
//     returns it, a string holding that array); role aliases are mapped (see
//     roleAliases); text is required except on tool entries; other keys of
//     an entry are kept in Turn.Extra.
//   - ended_reason is stored as given, in or out of the catalogue; a blank
//     ended_reason or status counts as absent.
//   - Strings must not contain NUL characters, which PostgreSQL text and
//     jsonb cannot store; the input must be valid UTF-8 for the same reason.
//   - Unknown keys and the opaque known ones go to Extra with insignificant
//     whitespace removed, otherwise exactly as sent (unknown keys keep an
//     explicit null).
func ParseRecord(data []byte) (*Record, error) {
	p := &parser{}
	r := p.record(data)
	if len(p.problems) > 0 {
		return nil, &ValidationError{Problems: p.problems}
	}
	return r, nil
}

// UnmarshalJSON parses and validates like ParseRecord, so that decoding a
// Record through encoding/json can never yield a record ParseRecord would
// reject.
func (r *Record) UnmarshalJSON(data []byte) error {
	rec, err := ParseRecord(data)
	if err != nil {
		return err
	}
	*r = *rec
	return nil
}

// parser collects problems while it turns the record's keys into fields.
type parser struct {
	fields   map[string]json.RawMessage
	problems []Problem
	// asked collects every key the parser looked up, when set (typedKeys).
	asked map[string]bool
}

func (p *parser) addf(field, format string, args ...any) {
	p.problems = append(p.problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) record(data []byte) *Record {
	if !utf8.Valid(data) {
		p.addf("", "record is not valid UTF-8")
		return nil
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		p.addf("", "record is empty: want a JSON object")
		return nil
	}
	if data[0] != '{' {
		if json.Valid(data) {
			p.addf("", "record must be a JSON object, got %s", kind(data))
		} else {
			p.addf("", "record is not valid JSON")
		}
		return nil
	}
	if err := json.Unmarshal(data, &p.fields); err != nil {
		p.addf("", "record is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
		return nil
	}
	if problems := structureProblems(data); len(problems) > 0 {
		p.problems = append(p.problems, problems...)
		return nil
	}

	r := &Record{}
	r.CallID = p.id(keyCallID)
	r.AgentID = p.id(keyAgentID)
	endedSent := p.present(keyEndedAt)
	if t, ok := p.time(keyEndedAt); ok {
		r.EndedAt = *t
	} else if !endedSent {
		p.addf(keyEndedAt, "required (an RFC 3339 time)")
	}
	r.EndedReason = p.optionalString(keyEndedReason)
	r.Status = p.optionalString(keyStatus)
	if strings.TrimSpace(r.EndedReason) == "" && strings.TrimSpace(r.Status) == "" && !p.failed(keyEndedReason) && !p.failed(keyStatus) {
		p.addf(keyEndedReason, "required: give ended_reason or status")
	}
	if strings.TrimSpace(r.EndedReason) == "" {
		r.EndedReason = ""
	}
	if strings.TrimSpace(r.Status) == "" {
		r.Status = ""
	}

	if s := p.optionalString(keyDirection); s != "" {
		switch d := strings.ToLower(strings.TrimSpace(s)); d {
		case "inbound", "outbound":
			r.Direction = d
		default:
			p.addf(keyDirection, "%s must be inbound or outbound", quote(s))
		}
	}
	r.Source = p.optionalString(keySource)
	r.CampaignID = p.optionalString(keyCampaignID)
	if raw, ok := p.value(keyIsTest); ok {
		switch string(raw) {
		case "true":
			r.IsTest = true
		case "false":
		default:
			p.addf(keyIsTest, "must be true or false, got %s", kind(raw))
		}
	}
	r.CustomerName = p.optionalString(keyCustomerName)
	r.CustomerRequest = p.optionalString(keyCustomerRequest)
	r.PhoneNumber = p.optionalString(keyPhoneNumber)
	r.Carrier = p.optionalString(keyCarrier)
	r.DID = p.optionalString(keyDID)
	r.StartedAt, _ = p.time(keyStartedAt)
	r.AnsweredAt, _ = p.time(keyAnsweredAt)
	r.RingMs = p.millis(keyRingMs)
	r.HoldMs = p.millis(keyHoldMs)
	r.TalkMs = p.millis(keyTalkMs)
	r.Duration = p.seconds(keyDuration)
	if s := p.optionalString(keyDisconnectedBy); s != "" {
		if v, ok := disconnectedByAliases[aliasKey(s)]; ok {
			r.DisconnectedBy = v
		} else {
			p.addf(keyDisconnectedBy, "%s must be one of bot, customer, voicemail, RNR, timeout, error, no_answer, rejected", quote(s))
		}
	}
	r.Transcript = p.transcript()
	r.RecordingKey = p.optionalString(keyRecordingKey)
	r.ContactData = p.object(keyContactData)
	r.FunctionOutput = p.object(keyFunctionOutput)
	p.checkOrder(r)
	r.Extra = p.extra()
	return r
}

// failed reports whether a problem was already recorded for field, so that
// one mistake is not reported twice.
func (p *parser) failed(field string) bool {
	for _, pr := range p.problems {
		if pr.Field == field {
			return true
		}
	}
	return false
}

func (p *parser) ask(key string) {
	if p.asked != nil {
		p.asked[key] = true
	}
}

// present reports whether key was sent with a non-null value.
func (p *parser) present(key string) bool {
	p.ask(key)
	raw, ok := p.fields[key]
	return ok && string(raw) != "null"
}

// value removes key from the remaining fields and returns its raw value;
// ok is false when the key is absent or null.
func (p *parser) value(key string) (json.RawMessage, bool) {
	p.ask(key)
	raw, ok := p.fields[key]
	if !ok {
		return nil, false
	}
	delete(p.fields, key)
	if string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// id parses a required identifier: a non-blank string of at most
// MaxIDLength bytes without control characters, stored as given.
func (p *parser) id(key string) string {
	present := p.present(key)
	s, ok := p.str(key, p.takeString(key))
	if !ok {
		if !present {
			p.addf(key, "required (a non-empty string)")
		}
		return ""
	}
	switch {
	case strings.TrimSpace(s) == "":
		p.addf(key, "required (a non-empty string)")
	case len(s) > MaxIDLength:
		p.addf(key, "is %d bytes long, at most %d allowed", len(s), MaxIDLength)
	case strings.IndexFunc(s, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0:
		p.addf(key, "%s must not contain control characters", quote(s))
	default:
		return s
	}
	return ""
}

// takeString removes key and returns its raw value, nil when absent or null.
func (p *parser) takeString(key string) json.RawMessage {
	raw, _ := p.value(key)
	return raw
}

// str decodes raw (nil = absent) as a string.
func (p *parser) str(key string, raw json.RawMessage) (string, bool) {
	if raw == nil {
		return "", false
	}
	if raw[0] != '"' {
		p.addf(key, "must be a string, got %s", kind(raw))
		return "", false
	}
	s, err := unquote(raw)
	if err != nil {
		p.addf(key, "is not a valid JSON string")
		return "", false
	}
	if strings.IndexByte(s, 0) >= 0 {
		p.addf(key, "must not contain NUL characters")
		return "", false
	}
	return s, true
}

// unquote decodes a JSON string token. Raw values here come out of an
// already validated document, so a string without escapes is its bytes:
// that shortcut saves a second scan of every transcript text, the bulk of a
// record. Invalid UTF-8 goes the slow way, which replaces it as
// encoding/json does.
func unquote(raw json.RawMessage) (string, error) {
	if n := len(raw); n >= 2 && raw[n-1] == '"' {
		body := raw[1 : n-1]
		if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
			return string(body), nil
		}
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// optionalString parses an optional string field; "" when absent.
func (p *parser) optionalString(key string) string {
	s, _ := p.str(key, p.takeString(key))
	return s
}

// time parses an RFC 3339 time and stores it in UTC, so that equal instants
// compare equal whatever offset the platform wrote them with.
func (p *parser) time(key string) (*time.Time, bool) {
	raw, ok := p.value(key)
	if !ok {
		return nil, false
	}
	if raw[0] != '"' {
		p.addf(key, "must be an RFC 3339 time string, got %s", kind(raw))
		return nil, false
	}
	s, ok := p.str(key, raw)
	if !ok {
		return nil, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		p.addf(key, "%s is not an RFC 3339 time", quote(s))
		return nil, false
	}
	t = t.UTC()
	// Years outside 1-9999 in UTC cannot be written back as RFC 3339.
	if t.Year() < 1 || t.Year() > 9999 {
		p.addf(key, "%s is out of range", quote(s))
		return nil, false
	}
	return &t, true
}

// millis parses a non-negative integer number of milliseconds. An integral
// number written with a fraction or exponent (1500.0, 1.5e3) is accepted,
// because JSON encoders of float-typed languages write integers that way.
func (p *parser) millis(key string) *int64 {
	raw, ok := p.value(key)
	if !ok {
		return nil
	}
	n, ok := p.nonNegInt(key, raw)
	if !ok {
		return nil
	}
	return &n
}

func (p *parser) nonNegInt(key string, raw json.RawMessage) (int64, bool) {
	if !isNumber(raw) {
		p.addf(key, "must be a non-negative integer, got %s", kind(raw))
		return 0, false
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		if n < 0 {
			p.addf(key, "%d must not be negative", n)
			return 0, false
		}
		return n, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	switch {
	case err != nil || f >= math.MaxInt64:
		p.addf(key, "%s is out of range", raw)
	case f < 0:
		p.addf(key, "%s must not be negative", raw)
	case f != math.Trunc(f):
		p.addf(key, "%s must be a whole number of milliseconds", raw)
	default:
		return int64(f), true
	}
	return 0, false
}

// seconds parses a non-negative number of seconds.
func (p *parser) seconds(key string) *float64 {
	raw, ok := p.value(key)
	if !ok {
		return nil
	}
	if !isNumber(raw) {
		p.addf(key, "must be a non-negative number of seconds, got %s", kind(raw))
		return nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	switch {
	case err != nil:
		p.addf(key, "%s is out of range", raw)
		return nil
	case f < 0:
		p.addf(key, "%s must not be negative", raw)
		return nil
	}
	if f == 0 {
		f = 0 // store -0 as 0
	}
	return &f
}

// object parses an optional JSON object, stored compacted.
func (p *parser) object(key string) json.RawMessage {
	raw, ok := p.value(key)
	if !ok {
		return nil
	}
	if raw[0] != '{' {
		p.addf(key, "must be a JSON object, got %s", kind(raw))
		return nil
	}
	if hasNULEscape(raw) {
		p.addf(key, "must not contain NUL characters (\\u0000)")
		return nil
	}
	return compact(raw)
}

// transcript parses the transcript: an array of turns, or a string holding
// one (seed 004's API returns the transcript as a JSON string).
func (p *parser) transcript() []Turn {
	raw, ok := p.value(keyTranscript)
	if !ok {
		return nil
	}
	if raw[0] == '"' {
		s, ok := p.str(keyTranscript, raw)
		if !ok {
			return nil
		}
		inner := bytes.TrimSpace([]byte(s))
		if len(inner) == 0 || string(inner) == "null" {
			return nil
		}
		if !json.Valid(inner) || inner[0] != '[' {
			p.addf(keyTranscript, "a string transcript must hold a JSON array of turns")
			return nil
		}
		// The record's scan saw this array as one string: scan it too.
		if problems := structureProblems(inner); len(problems) > 0 {
			for _, pr := range problems {
				pr.Field = keyTranscript + pr.Field
				p.problems = append(p.problems, pr)
			}
			return nil
		}
		raw = inner
	}
	if raw[0] != '[' {
		p.addf(keyTranscript, "must be an array of {role, text, t_ms} turns, got %s", kind(raw))
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		p.addf(keyTranscript, "is not a valid JSON array")
		return nil
	}
	if len(items) == 0 {
		return nil
	}
	turns := make([]Turn, 0, len(items))
	for i, item := range items {
		if t, ok := p.turn(fmt.Sprintf("%s[%d]", keyTranscript, i), item); ok {
			turns = append(turns, t)
		}
	}
	return turns
}

// turn parses one transcript entry; path prefixes the field names of its
// problems.
func (p *parser) turn(path string, raw json.RawMessage) (Turn, bool) {
	field := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	if raw[0] != '{' {
		p.addf(path, "must be an object {role, text, t_ms}, got %s", kind(raw))
		return Turn{}, false
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		p.addf(path, "is not a valid JSON object")
		return Turn{}, false
	}
	before := len(p.problems)
	take := func(k string) json.RawMessage {
		v := keys[k]
		delete(keys, k)
		if string(v) == "null" {
			return nil
		}
		return v
	}
	var t Turn
	roleRaw := take("role")
	if role, ok := p.str(field("role"), roleRaw); ok {
		if r, known := roleAliases[strings.ToLower(strings.TrimSpace(role))]; known {
			t.Role = r
		} else {
			p.addf(field("role"), "%s must be agent, user or tool (or assistant, bot, customer, human)", quote(role))
		}
	} else if roleRaw == nil {
		p.addf(field("role"), "required (agent, user or tool)")
	}
	textRaw := take("text")
	if text, ok := p.str(field("text"), textRaw); ok {
		t.Text = text
	} else if textRaw == nil && t.Role != RoleTool && t.Role != "" {
		p.addf(field("text"), "required (a string)")
	}
	if v := take("t_ms"); v != nil {
		if n, ok := p.nonNegInt(field("t_ms"), v); ok {
			t.TMs = &n
		}
	}
	if len(keys) > 0 {
		t.Extra = make(map[string]json.RawMessage, len(keys))
		for k, v := range keys {
			if hasNULEscape(v) || strings.IndexByte(k, 0) >= 0 {
				p.addf(field(k), "must not contain NUL characters (\\u0000)")
				continue
			}
			t.Extra[k] = compact(v)
		}
	}
	return t, len(p.problems) == before
}

// checkOrder rejects timelines that run backwards: they make every duration
// derived from them negative.
func (p *parser) checkOrder(r *Record) {
	ended := r.EndedAt
	if r.EndedAt.IsZero() {
		return
	}
	if r.StartedAt != nil && r.StartedAt.After(ended) {
		p.addf(keyStartedAt, "%s is after ended_at %s", r.StartedAt.Format(time.RFC3339Nano), ended.Format(time.RFC3339Nano))
	}
	if r.AnsweredAt != nil {
		if r.AnsweredAt.After(ended) {
			p.addf(keyAnsweredAt, "%s is after ended_at %s", r.AnsweredAt.Format(time.RFC3339Nano), ended.Format(time.RFC3339Nano))
		}
		if r.StartedAt != nil && r.AnsweredAt.Before(*r.StartedAt) {
			p.addf(keyAnsweredAt, "%s is before started_at %s", r.AnsweredAt.Format(time.RFC3339Nano), r.StartedAt.Format(time.RFC3339Nano))
		}
	}
}

// extra returns the keys no typed field took: unknown keys exactly as sent
// (null included) and the opaque known keys unless null.
func (p *parser) extra() map[string]json.RawMessage {
	for _, k := range opaqueKeys {
		if string(p.fields[k]) == "null" {
			delete(p.fields, k)
		}
	}
	if len(p.fields) == 0 {
		return nil
	}
	extra := make(map[string]json.RawMessage, len(p.fields))
	for k, v := range p.fields {
		if hasNULEscape(v) || strings.IndexByte(k, 0) >= 0 {
			p.addf(k, "must not contain NUL characters (\\u0000)")
			continue
		}
		extra[k] = compact(v)
	}
	return extra
}

// UnmarshalJSON parses and validates one transcript entry with the rules of
// ParseRecord (role aliases, Extra keys kept).
func (t *Turn) UnmarshalJSON(data []byte) error {
	p := &parser{}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return &ValidationError{Problems: []Problem{{Message: "transcript entry is not valid JSON"}}}
	}
	// turn decodes data, which rejects invalid JSON; called from
	// json.Unmarshal it has been validated already.
	turn, ok := p.turn("", data)
	if !ok {
		return &ValidationError{Problems: p.problems}
	}
	*t = turn
	return nil
}

// kind names the JSON type of a raw value for error messages.
func kind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}

// quote renders a sent value for a message, shortened so that a huge value
// cannot flood a log line or a 400 response.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

// aliasKey is the lookup form of an enumerated value: lower case, with "-"
// and " " read as "_".
func aliasKey(s string) string {
	return strings.NewReplacer("-", "_", " ", "_").Replace(strings.ToLower(strings.TrimSpace(s)))
}

// compact removes insignificant whitespace from valid JSON. It does not
// escape HTML characters, unlike json.Marshal, so values stay as sent.
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		// raw came out of encoding/json's own decoder, so it is valid.
		return append(json.RawMessage(nil), raw...)
	}
	return b.Bytes()
}

// hasNULEscape reports whether raw JSON holds a \u0000 escape, which
// PostgreSQL jsonb rejects. An escaped backslash followed by "u0000" is
// text, not an escape, hence the walk instead of bytes.Contains.
func hasNULEscape(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		if raw[i+1] == 'u' && i+5 < len(raw) && string(raw[i+2:i+6]) == "0000" {
			return true
		}
		i++ // skip the escaped character
	}
	return false
}
