package call

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// minimal is the smallest valid record.
const minimal = `{"call_id":"c1","agent_id":"sales","ended_at":"2026-11-20T15:00:00Z","ended_reason":"customer-ended-call"}`

// full uses every known field, an unknown one and the opaque ones.
const full = `{
  "call_id": "c-42", "agent_id": "sales-qualifier", "ended_at": "2026-11-20T17:02:15.5+02:00",
  "ended_reason": "pipeline-error-some-new-provider", "status": "completed",
  "direction": "OutBound", "source": "campaign", "campaign_id": "camp-1", "is_test": true,
  "customer_name": "Ada <Lovelace>", "customer_request": "demo", "phone_number": "+1 (415) 555-0100",
  "carrier": "Telco", "did": "+14155550199",
  "started_at": "2026-11-20T15:00:00Z", "answered_at": "2026-11-20T15:00:05Z",
  "ring_ms": 5000, "hold_ms": 0, "talk_ms": 130000.0, "duration": 135.5, "disconnected_by": "Customer",
  "transcript": [
    {"role": "assistant", "text": "Hi, this is Ava.", "t_ms": 0},
    {"role": "Customer", "text": "Hello?", "t_ms": 1500, "confidence": 0.93},
    {"role": "tool", "name": "book", "result": {"ok": true}}
  ],
  "recording_key": "rec/c-42.wav",
  "contact_data": {"plan": "pro",  "seats": 3},
  "function_output": {"email": "ada@example.com"},
  "tool_calls": [{"name": "book"}], "knowledge_retrievals": [], "turn_metrics": [{"turn": 1}],
  "service_errors": [], "transfer": {"to": "+1555"}, "events": [1, 2],
  "crm_lead_id": "L-7", "nested": {"a": [1, {"b": null}]}, "nothing": null
}`

func mustParse(t *testing.T, s string) *Record {
	t.Helper()
	r, err := ParseRecord([]byte(s))
	require.NoError(t, err)
	return r
}

// problems parses s, requires a *ValidationError and returns its problems
// as "field: message" strings.
func problems(t *testing.T, s string) []string {
	t.Helper()
	r, err := ParseRecord([]byte(s))
	require.Error(t, err)
	require.Nil(t, r)
	var ve *ValidationError
	require.True(t, errors.As(err, &ve), "error is %T", err)
	out := make([]string, len(ve.Problems))
	for i, p := range ve.Problems {
		out[i] = p.String()
		require.Contains(t, err.Error(), p.String(), "Error() lists every problem")
	}
	return out
}

// with returns the minimal record with key set to the raw JSON value, or
// removed when value is "".
func with(t *testing.T, key, value string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(minimal), &m))
	if value == "" {
		delete(m, key)
	} else {
		m[key] = json.RawMessage(value)
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b)
}

func TestParseMinimal(t *testing.T) {
	t.Parallel()
	r := mustParse(t, minimal)
	require.Equal(t, &Record{
		CallID: "c1", AgentID: "sales", EndedAt: time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC),
		EndedReason: "customer-ended-call",
	}, r)
}

func TestParseFull(t *testing.T) {
	t.Parallel()
	r := mustParse(t, full)
	require.Equal(t, "c-42", r.CallID)
	require.Equal(t, time.Date(2026, 11, 20, 15, 2, 15, 5e8, time.UTC), r.EndedAt, "stored in UTC")
	require.Equal(t, time.UTC, r.EndedAt.Location())
	require.Equal(t, "pipeline-error-some-new-provider", r.EndedReason)
	require.Equal(t, "outbound", r.Direction, "direction is stored lower case")
	require.True(t, r.IsTest)
	require.Equal(t, "Ada <Lovelace>", r.CustomerName)
	require.Equal(t, "+1 (415) 555-0100", r.PhoneNumber, "phone_number is stored as given")
	require.Equal(t, int64(130000), *r.TalkMs, "an integral float is an integer")
	require.Equal(t, int64(0), *r.HoldMs, "zero is present, not absent")
	require.Equal(t, 135.5, *r.Duration)
	require.Equal(t, ByCustomer, r.DisconnectedBy, "canonical spelling is stored")
	require.Len(t, r.Transcript, 3)
	require.Equal(t, RoleAgent, r.Transcript[0].Role)
	require.Equal(t, RoleUser, r.Transcript[1].Role)
	require.Equal(t, json.RawMessage(`0.93`), r.Transcript[1].Extra["confidence"])
	require.Equal(t, RoleTool, r.Transcript[2].Role)
	require.Empty(t, r.Transcript[2].Text, "a tool entry needs no text")
	require.Equal(t, json.RawMessage(`{"ok":true}`), r.Transcript[2].Extra["result"])
	require.Equal(t, json.RawMessage(`{"plan":"pro","seats":3}`), r.ContactData)
	require.Equal(t, map[string]json.RawMessage{
		"tool_calls": json.RawMessage(`[{"name":"book"}]`), "knowledge_retrievals": json.RawMessage(`[]`),
		"turn_metrics": json.RawMessage(`[{"turn":1}]`), "service_errors": json.RawMessage(`[]`),
		"transfer": json.RawMessage(`{"to":"+1555"}`), "events": json.RawMessage(`[1,2]`),
		"crm_lead_id": json.RawMessage(`"L-7"`), "nested": json.RawMessage(`{"a":[1,{"b":null}]}`),
		"nothing": json.RawMessage(`null`),
	}, r.Extra)
}

func TestParseRoundTrip(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{"minimal": minimal, "full": full} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := mustParse(t, in)
			out, err := r.MarshalJSON()
			require.NoError(t, err)
			again := mustParse(t, string(out))
			require.Equal(t, r, again)

			// Unknown fields come back in the written JSON, exactly.
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(out, &m))
			for k, v := range r.Extra {
				require.Equal(t, string(v), string(m[k]), k)
			}

			// encoding/json goes through the same methods.
			viaStd, err := json.Marshal(r)
			require.NoError(t, err)
			var decoded Record
			require.NoError(t, json.Unmarshal(viaStd, &decoded))
			require.Equal(t, *r, decoded)
		})
	}
}

func TestParseRoundTripKeepsHTMLCharactersInExtra(t *testing.T) {
	t.Parallel()
	r := mustParse(t, minimal[:len(minimal)-1]+`,"note":"<b>&amp;</b>"}`)
	require.Equal(t, json.RawMessage(`"<b>&amp;</b>"`), r.Extra["note"])
	out, err := r.MarshalJSON()
	require.NoError(t, err)
	require.Contains(t, string(out), `"note":"<b>&amp;</b>"`)
}

func TestParseRequiredFields(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		record string
		want   string
	}{
		"call_id missing":      {with(t, "call_id", ""), "call_id: required (a non-empty string)"},
		"call_id null":         {with(t, "call_id", "null"), "call_id: required (a non-empty string)"},
		"call_id blank":        {with(t, "call_id", `"  "`), "call_id: required (a non-empty string)"},
		"call_id too long":     {with(t, "call_id", `"`+strings.Repeat("x", 256)+`"`), "call_id: is 256 bytes long, at most 255 allowed"},
		"call_id control":      {with(t, "call_id", `"a\nb"`), `call_id: "a\nb" must not contain control characters`},
		"agent_id missing":     {with(t, "agent_id", ""), "agent_id: required (a non-empty string)"},
		"agent_id empty":       {with(t, "agent_id", `""`), "agent_id: required (a non-empty string)"},
		"ended_at missing":     {with(t, "ended_at", ""), "ended_at: required (an RFC 3339 time)"},
		"ended_at null":        {with(t, "ended_at", "null"), "ended_at: required (an RFC 3339 time)"},
		"ended_at not a time":  {with(t, "ended_at", `"yesterday"`), `ended_at: "yesterday" is not an RFC 3339 time`},
		"ended_at not RFC3339": {with(t, "ended_at", `"2026-11-20 15:00:00"`), `ended_at: "2026-11-20 15:00:00" is not an RFC 3339 time`},
		"ended_at out of range": {with(t, "ended_at", `"0000-01-01T00:00:00+01:00"`),
			`ended_at: "0000-01-01T00:00:00+01:00" is out of range`},
		"no reason or status": {with(t, "ended_reason", ""), "ended_reason: required: give ended_reason or status"},
		"blank reason":        {with(t, "ended_reason", `" "`), "ended_reason: required: give ended_reason or status"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, []string{c.want}, problems(t, c.record))
		})
	}
}

func TestParseStatusAloneIsEnough(t *testing.T) {
	t.Parallel()
	r := mustParse(t, with(t, "ended_reason", "")[:len(with(t, "ended_reason", ""))-1]+`,"status":"voicemail"}`)
	require.Equal(t, "voicemail", r.Status)
	require.Empty(t, r.EndedReason)
}

func TestParseUnknownEndedReasonKept(t *testing.T) {
	t.Parallel()
	r := mustParse(t, with(t, "ended_reason", `"Something-Brand-New"`))
	require.Equal(t, "Something-Brand-New", r.EndedReason)
}

func TestParseTypeErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ key, value, want string }{
		"string field number":   {"source", `5`, "source: must be a string, got a number"},
		"string field object":   {"customer_name", `{}`, "customer_name: must be a string, got an object"},
		"reason not string":     {"ended_reason", `42`, "ended_reason: must be a string, got a number"},
		"nul in string":         {"carrier", `"a\u0000b"`, "carrier: must not contain NUL characters"},
		"is_test string":        {"is_test", `"true"`, "is_test: must be true or false, got a string"},
		"ms negative":           {"ring_ms", `-1`, "ring_ms: -1 must not be negative"},
		"ms fraction":           {"talk_ms", `1.5`, "talk_ms: 1.5 must be a whole number of milliseconds"},
		"ms string":             {"hold_ms", `"5"`, "hold_ms: must be a non-negative integer, got a string"},
		"ms out of range":       {"hold_ms", `1e30`, "hold_ms: 1e30 is out of range"},
		"duration negative":     {"duration", `-0.5`, "duration: -0.5 must not be negative"},
		"duration string":       {"duration", `"12"`, "duration: must be a non-negative number of seconds, got a string"},
		"duration out of range": {"duration", `1e400`, "duration: 1e400 is out of range"},
		"started_at not time":   {"started_at", `"noon"`, `started_at: "noon" is not an RFC 3339 time`},
		"answered_at number":    {"answered_at", `1700000000`, "answered_at: must be an RFC 3339 time string, got a number"},
		"direction":             {"direction", `"sideways"`, `direction: "sideways" must be inbound or outbound`},
		"disconnected_by": {"disconnected_by", `"the dog"`,
			`disconnected_by: "the dog" must be one of bot, customer, voicemail, RNR, timeout, error, no_answer, rejected`},
		"contact_data array":     {"contact_data", `[1]`, "contact_data: must be a JSON object, got an array"},
		"function_output string": {"function_output", `"{}"`, "function_output: must be a JSON object, got a string"},
		"contact_data nul":       {"contact_data", `{"a":"\u0000"}`, `contact_data: must not contain NUL characters (\u0000)`},
		"extra nul":              {"custom", `["\u0000"]`, `custom: must not contain NUL characters (\u0000)`},
		"transcript object":      {"transcript", `{}`, "transcript: must be an array of {role, text, t_ms} turns, got an object"},
		"transcript bad string":  {"transcript", `"hello"`, "transcript: a string transcript must hold a JSON array of turns"},
		"recording_key bool":     {"recording_key", `true`, "recording_key: must be a string, got a boolean"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, []string{c.want}, problems(t, with(t, c.key, c.value)))
		})
	}
}

func TestParseNegativeZeroDuration(t *testing.T) {
	t.Parallel()
	r := mustParse(t, with(t, "duration", `-0`))
	require.False(t, math.Signbit(*r.Duration), "-0 is stored as 0")
}

func TestParseEscapedBackslashIsNotNUL(t *testing.T) {
	t.Parallel()
	r := mustParse(t, with(t, "contact_data", `{"path":"C:\\u0000dir"}`))
	require.Equal(t, json.RawMessage(`{"path":"C:\\u0000dir"}`), r.ContactData)
}

func TestParseTimeline(t *testing.T) {
	t.Parallel()
	got := problems(t, with(t, "started_at", `"2026-11-20T15:00:01Z"`))
	require.Equal(t, []string{"started_at: 2026-11-20T15:00:01Z is after ended_at 2026-11-20T15:00:00Z"}, got)

	got = problems(t, with(t, "answered_at", `"2026-11-20T15:00:01Z"`))
	require.Equal(t, []string{"answered_at: 2026-11-20T15:00:01Z is after ended_at 2026-11-20T15:00:00Z"}, got)

	s := with(t, "started_at", `"2026-11-20T14:59:00Z"`)
	s = s[:len(s)-1] + `,"answered_at":"2026-11-20T14:58:00Z"}`
	require.Equal(t, []string{"answered_at: 2026-11-20T14:58:00Z is before started_at 2026-11-20T14:59:00Z"}, problems(t, s))

	// Equal instants are fine, and offsets are compared as instants.
	s = with(t, "started_at", `"2026-11-20T17:00:00+02:00"`)
	r := mustParse(t, s)
	require.True(t, r.StartedAt.Equal(r.EndedAt))
}

func TestParseManyProblemsInOneError(t *testing.T) {
	t.Parallel()
	got := problems(t, `{"agent_id": 7, "ended_at": "yesterday", "is_test": "yes", "ring_ms": -3,
		"transcript": [{"role": "robot", "text": 1}, {"text": "hi"}, "oops"], "contact_data": []}`)
	require.Equal(t, []string{
		"call_id: required (a non-empty string)",
		"agent_id: must be a string, got a number",
		`ended_at: "yesterday" is not an RFC 3339 time`,
		"ended_reason: required: give ended_reason or status",
		"is_test: must be true or false, got a string",
		"ring_ms: -3 must not be negative",
		`transcript[0].role: "robot" must be agent, user or tool (or assistant, bot, customer, human)`,
		"transcript[0].text: must be a string, got a number",
		"transcript[1].role: required (agent, user or tool)",
		"transcript[2]: must be an object {role, text, t_ms}, got a string",
		"contact_data: must be a JSON object, got an array",
	}, got)
}

func TestParseNullMeansAbsent(t *testing.T) {
	t.Parallel()
	s := `{"call_id":"c1","agent_id":"a","ended_at":"2026-11-20T15:00:00Z","ended_reason":null,"status":"completed",
		"direction":null,"source":null,"campaign_id":null,"is_test":null,"customer_name":null,"customer_request":null,
		"phone_number":null,"carrier":null,"did":null,"started_at":null,"answered_at":null,"ring_ms":null,
		"hold_ms":null,"talk_ms":null,"duration":null,"disconnected_by":null,"transcript":null,"recording_key":null,
		"contact_data":null,"function_output":null,"tool_calls":null,"knowledge_retrievals":null,
		"turn_metrics":null,"service_errors":null,"transfer":null,"events":null}`
	r := mustParse(t, s)
	require.Equal(t, &Record{CallID: "c1", AgentID: "a", EndedAt: time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC),
		Status: "completed"}, r)
}

func TestParseNotAnObject(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"":                       "record is empty: want a JSON object",
		"  ":                     "record is empty: want a JSON object",
		"[1,2]":                  "record must be a JSON object, got an array",
		`"call"`:                 "record must be a JSON object, got a string",
		"null":                   "record must be a JSON object, got null",
		"{":                      "record is not valid JSON: unexpected end of JSON input",
		"nope":                   "record is not valid JSON",
		minimal + " {}":          "record is not valid JSON: invalid character '{' after top-level value",
		"{\"call_id\":\"\xff\"}": "record is not valid UTF-8",
	}
	for in, want := range cases {
		require.Equal(t, []string{want}, problems(t, in), "input %q", in)
	}
}

func TestParseTranscript(t *testing.T) {
	t.Parallel()
	roles := map[string]Role{
		"agent": RoleAgent, "Assistant": RoleAgent, "BOT": RoleAgent, "ai": RoleAgent,
		"user": RoleUser, "customer": RoleUser, "Human": RoleUser, "caller": RoleUser,
		"tool": RoleTool, "function": RoleTool, "tool_call_result": RoleTool,
	}
	for alias, want := range roles {
		r := mustParse(t, with(t, "transcript", `[{"role":"`+alias+`","text":"x"}]`))
		require.Equal(t, want, r.Transcript[0].Role, alias)
	}

	got := problems(t, with(t, "transcript", `[{"role":"system","text":"You are a bot"}]`))
	require.Equal(t, []string{`transcript[0].role: "system" must be agent, user or tool (or assistant, bot, customer, human)`}, got)

	got = problems(t, with(t, "transcript", `[{"role":"user"}]`))
	require.Equal(t, []string{"transcript[0].text: required (a string)"}, got)

	got = problems(t, with(t, "transcript", `[{"role":"user","text":"hi","t_ms":-5}]`))
	require.Equal(t, []string{"transcript[0].t_ms: -5 must not be negative"}, got)

	// Seed 004's API returns the transcript as a JSON string.
	r := mustParse(t, with(t, "transcript", `"[{\"role\":\"agent\",\"text\":\"Hi\"},{\"role\":\"user\",\"text\":\"Yo\",\"t_ms\":900}]"`))
	nine := int64(900)
	require.Equal(t, []Turn{{Role: RoleAgent, Text: "Hi"}, {Role: RoleUser, Text: "Yo", TMs: &nine}}, r.Transcript)

	// An empty transcript is absent.
	require.Nil(t, mustParse(t, with(t, "transcript", `[]`)).Transcript)
	require.Nil(t, mustParse(t, with(t, "transcript", `""`)).Transcript)
}

func TestParseDisconnectedBySpellings(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"bot": ByBot, "Agent": ByBot, "CUSTOMER": ByCustomer, "user": ByCustomer, "voicemail": ByVoicemail,
		"rnr": ByRNR, "RNR": ByRNR, "Ring No Response": ByRNR, "timeout": ByTimeout, "Error": ByError,
		"no_answer": ByNoAnswer, "No-Answer": ByNoAnswer, "no answer": ByNoAnswer, "Rejected": ByRejected,
	}
	for in, want := range cases {
		r := mustParse(t, with(t, "disconnected_by", `"`+in+`"`))
		require.Equal(t, want, r.DisconnectedBy, in)
	}
}

func TestTurnJSON(t *testing.T) {
	t.Parallel()
	var turns []Turn
	require.NoError(t, json.Unmarshal([]byte(`[{"role":"bot","text":"Hi","t_ms":0,"words":[1]}]`), &turns))
	zero := int64(0)
	require.Equal(t, []Turn{{Role: RoleAgent, Text: "Hi", TMs: &zero, Extra: map[string]json.RawMessage{"words": json.RawMessage(`[1]`)}}}, turns)
	out, err := json.Marshal(turns)
	require.NoError(t, err)
	require.JSONEq(t, `[{"role":"agent","text":"Hi","t_ms":0,"words":[1]}]`, string(out))

	err = json.Unmarshal([]byte(`[{"role":"martian","text":"Hi"}]`), &turns)
	require.ErrorContains(t, err, `role: "martian" must be agent, user or tool`)
}

func TestMarshalRejectsInvalidExtra(t *testing.T) {
	t.Parallel()
	r := mustParse(t, minimal)
	r.Extra = map[string]json.RawMessage{"bad": json.RawMessage(`{`)}
	_, err := r.MarshalJSON()
	require.ErrorContains(t, err, "encode bad: invalid JSON value")

	// An Extra key named like a typed field is never written twice.
	r.Extra = map[string]json.RawMessage{"call_id": json.RawMessage(`"other"`)}
	out, err := r.MarshalJSON()
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(out), `"call_id"`))
}

// FuzzParseRecord checks that ParseRecord never panics, and that every
// record it accepts survives MarshalJSON and ParseRecord unchanged.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		minimal, full, "", "{}", "null", "[]", `{"call_id":1}`,
		`{"call_id":"c","agent_id":"a","ended_at":"2026-01-01T00:00:00-07:00","status":"busy","duration":-0}`,
		`{"call_id":"c","agent_id":"a","ended_at":"9999-12-31T23:59:59Z","ended_reason":"x","talk_ms":1e3}`,
		`{"call_id":"c","agent_id":"a","ended_at":"2026-01-01T00:00:00Z","ended_reason":"x","transcript":"[{\"role\":\"user\",\"text\":\"\"}]"}`,
		`{"call_id":"c","agent_id":"a","ended_at":"2026-01-01T00:00:00Z","ended_reason":"x","u":"\u2028<>&","v":{"z":1,"a":[]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.NotEmpty(t, ve.Problems)
			return
		}
		out, err := r.MarshalJSON()
		require.NoError(t, err)
		again, err := ParseRecord(out)
		require.NoError(t, err, "re-parse of %s", out)
		require.Equal(t, r, again)
	})
}
