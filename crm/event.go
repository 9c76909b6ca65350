package crm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// EventType is the Standard Webhooks event type of every webhook postcall
// sends.
const EventType = "call.analyzed"

// Keys of CallResult.ContactData that name a record in a CRM. Values may be
// JSON strings or numbers. When the key for a CRM is absent the contact is
// looked up by CallResult.PhoneNumber; when that finds nothing the delivery
// fails permanently with ErrNoContact.
const (
	// ContactKeyHubSpot holds a HubSpot contact id (hs_object_id).
	ContactKeyHubSpot = "hubspot_contact_id"
	// ContactKeyHubSpotDeal optionally holds a HubSpot deal id; the call is
	// then associated with the deal too.
	ContactKeyHubSpotDeal = "hubspot_deal_id"
	// ContactKeyGoHighLevel holds a GoHighLevel contact id.
	ContactKeyGoHighLevel = "ghl_contact_id"
	// ContactKeyGeneric is accepted for GoHighLevel when ghl_contact_id is
	// absent, because GHL-driven platforms usually load it as contact_id.
	ContactKeyGeneric = "contact_id"
	// ContactKeyPipedrivePerson holds a Pipedrive person id.
	ContactKeyPipedrivePerson = "pipedrive_person_id"
	// ContactKeyPipedriveDeal holds a Pipedrive deal id; a note may be
	// attached to a deal, a person or both.
	ContactKeyPipedriveDeal = "pipedrive_deal_id"
)

// ErrNoContact means a CRM delivery found no record to attach the call to:
// no id in contact_data and no match for the phone number (or no phone
// number). It is permanent: a CRM note must hang off a record, and an
// unassociated HubSpot call would be invisible on every timeline, so failing
// loudly in the delivery log is more useful than "delivering" it there.
var ErrNoContact = errors.New("no CRM record matches the call (no id in contact_data, no phone match)")

// CallResult is what postcall delivers about one analysed call. It mirrors
// the call document's keys; the webhook payload is built from it and the CRM
// notes are rendered from it.
type CallResult struct {
	// ID is postcall's id of the call.
	ID string
	// CallID is the platform's id of the call.
	CallID string
	// AgentID is the agent whose plan produced the result.
	AgentID string
	// Direction is "inbound" or "outbound", or empty when unknown.
	Direction string
	// Status is the platform's final status (completed, no_answer, busy, ...).
	Status string
	// EndedReason is the platform's raw ended reason.
	EndedReason string
	// Disposition is the call's outcome label.
	Disposition string
	// DispositionSource is "auto" or "analysis".
	DispositionSource string
	// GeneralSuccess is the analysis success flag; nil when absent.
	GeneralSuccess *bool
	// FinalScore is the QC score 1-10; nil when there was no QC.
	FinalScore *int
	// CallSummary is the analysis summary; nil when absent.
	CallSummary *string
	// Fields are the structured analysis fields by name. A nil value (for
	// example a purged PII field) is sent as null in webhooks and left out of
	// CRM notes.
	Fields map[string]any
	// PIIFields names the Fields the plan marks pii: true. They are left out
	// unless an integration's `fields` setting lists them by name.
	PIIFields []string
	// Duration is the call's length; 0 when unknown.
	Duration time.Duration
	// StartedAt is when the call started; zero when unknown.
	StartedAt time.Time
	// EndedAt is when the call ended.
	EndedAt time.Time
	// AnalyzedAt is when the results were final. It is the webhook event's
	// `timestamp`, so keep it identical across retries of one delivery; zero
	// means the time of the attempt.
	AnalyzedAt time.Time
	// PhoneNumber is the customer's number, used only to look up the CRM
	// contact (and sent in webhooks with include_contact). Never logged,
	// never put in an error.
	PhoneNumber string
	// ContactData is the call's contact_data object; see the ContactKey
	// constants for the ids read from it.
	ContactData json.RawMessage
	// RecordingURL is the link put in payloads and notes. Pass a stable link
	// to postcall's own endpoint that signs on demand, not a presigned URL:
	// those die within 7 days while a CRM note lives forever. Only http and
	// https links are ever sent.
	RecordingURL string
	// Demo marks output of a demo model; every payload and note says so.
	Demo bool
}

// contactID returns the first of keys present in ContactData with a
// non-empty value, as "contact_data.KEY" and the value as a string (JSON
// strings and numbers are accepted). A malformed ContactData is treated as
// empty: lookup by phone still works.
func (r *CallResult) contactID(keys ...string) (where, id string) {
	if len(bytes.TrimSpace(r.ContactData)) == 0 {
		return "", ""
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.ContactData, &m); err != nil {
		return "", ""
	}
	for _, k := range keys {
		raw, ok := m[k]
		if !ok {
			continue
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			continue
		}
		switch v := v.(type) {
		case string:
			if s := strings.TrimSpace(v); s != "" {
				return "contact_data." + k, s
			}
		case json.Number:
			return "contact_data." + k, v.String()
		}
	}
	return "", ""
}

// recordingLink is RecordingURL when the target sends links and the URL is
// http(s): anything else (javascript:, data:) must never become a link in a
// CRM's HTML.
func (r *CallResult) recordingLink(c *common) string {
	if !c.recording || r.RecordingURL == "" {
		return ""
	}
	u, err := url.Parse(r.RecordingURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return r.RecordingURL
}

// selectedField is one analysis field chosen for a payload.
type selectedField struct {
	name  string
	value any
}

// selectFields applies the `fields` setting: the listed fields in that order
// (absent ones skipped), or by default every non-PII field sorted by name so
// payloads are deterministic.
func (r *CallResult) selectFields(c *common) []selectedField {
	var names []string
	if c.fields != nil {
		for _, n := range c.fields {
			if _, ok := r.Fields[n]; ok {
				names = append(names, n)
			}
		}
	} else {
		for n := range r.Fields {
			if !slices.Contains(r.PIIFields, n) {
				names = append(names, n)
			}
		}
		slices.Sort(names)
	}
	out := make([]selectedField, len(names))
	for i, n := range names {
		out[i] = selectedField{name: n, value: r.Fields[n]}
	}
	return out
}

// webhookData is the `data` object of a call.analyzed webhook: the call
// document's keys, snake_case, null where absent.
type webhookData struct {
	ID                string          `json:"id"`
	CallID            string          `json:"call_id"`
	AgentID           string          `json:"agent_id"`
	Direction         *string         `json:"direction"`
	Status            *string         `json:"status"`
	EndedReason       *string         `json:"ended_reason"`
	Disposition       *string         `json:"disposition"`
	DispositionSource *string         `json:"disposition_source"`
	GeneralSuccess    *bool           `json:"general_success"`
	FinalScore        *int            `json:"final_score"`
	CallSummary       *string         `json:"call_summary"`
	Duration          *float64        `json:"duration"`
	StartedAt         *time.Time      `json:"started_at"`
	EndedAt           *time.Time      `json:"ended_at"`
	Analysis          webhookAnalysis `json:"analysis"`
	RecordingURL      *string         `json:"recording_url"`
	Demo              bool            `json:"demo"`
	// PhoneNumber and ContactData are only sent with include_contact.
	PhoneNumber *string         `json:"phone_number,omitempty"`
	ContactData json.RawMessage `json:"contact_data,omitempty"`
}

type webhookAnalysis struct {
	Fields orderedFields `json:"fields"`
}

// orderedFields marshals as a JSON object keeping the selection's order.
type orderedFields []selectedField

func (f orderedFields) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, sf := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(sf.name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(sf.value)
		if err != nil {
			return nil, fmt.Errorf("analysis field %q: %w", sf.name, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type webhookEvent struct {
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Data      webhookData `json:"data"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// webhookBody renders the Standard Webhooks body. It depends only on the
// result and the target (not on the attempt time when AnalyzedAt is set), so
// every retry of a delivery sends the same bytes.
func webhookBody(r *CallResult, c *common, includeContact bool, now time.Time) ([]byte, error) {
	at := r.AnalyzedAt
	if at.IsZero() {
		at = now
	}
	data := webhookData{
		ID:                r.ID,
		CallID:            r.CallID,
		AgentID:           r.AgentID,
		Direction:         optString(r.Direction),
		Status:            optString(r.Status),
		EndedReason:       optString(r.EndedReason),
		Disposition:       optString(r.Disposition),
		DispositionSource: optString(r.DispositionSource),
		GeneralSuccess:    r.GeneralSuccess,
		FinalScore:        r.FinalScore,
		CallSummary:       r.CallSummary,
		StartedAt:         optTime(r.StartedAt),
		EndedAt:           optTime(r.EndedAt),
		Analysis:          webhookAnalysis{Fields: r.selectFields(c)},
		RecordingURL:      optString(r.recordingLink(c)),
		Demo:              r.Demo,
	}
	if r.Duration > 0 {
		secs := r.Duration.Seconds()
		data.Duration = &secs
	}
	if includeContact {
		data.PhoneNumber = optString(r.PhoneNumber)
		if json.Valid(r.ContactData) {
			data.ContactData = r.ContactData
		}
	}
	body, err := json.Marshal(webhookEvent{
		Type:      EventType,
		Timestamp: at.UTC().Format(time.RFC3339),
		Data:      data,
	})
	if err != nil {
		return nil, fmt.Errorf("encode webhook body: %w", err)
	}
	return body, nil
}

// demoNotice opens every CRM note of a demo result.
const demoNotice = "DEMO: produced by a demo model, not a real analysis."

// noteLine is one "Label: value" line of a CRM note.
type noteLine struct {
	label string
	value string
	link  bool // value is an http(s) URL to render as a link
}

// maxFieldChars bounds one value in a note; maxNoteChars bounds the whole
// note (HubSpot's hs_call_body holds 65,536 characters).
const (
	maxFieldChars = 2000
	maxNoteChars  = 60000
)

// noteTitle is the one-line title of a CRM call or note.
func (r *CallResult) noteTitle() string {
	t := "AI call"
	if r.Disposition != "" {
		t += ": " + r.Disposition
	}
	if r.Demo {
		t = "[DEMO] " + t
	}
	return t
}

// noteLines is the content of a CRM note, shared by every CRM so that they
// read alike.
func (r *CallResult) noteLines(c *common) []noteLine {
	var lines []noteLine
	add := func(label, value string) {
		if value != "" {
			lines = append(lines, noteLine{label: label, value: truncate(value, maxFieldChars)})
		}
	}
	if r.Demo {
		add("Notice", demoNotice)
	}
	if r.CallSummary != nil {
		add("Summary", *r.CallSummary)
	}
	disp := r.Disposition
	if disp != "" && r.DispositionSource != "" {
		disp += " (" + r.DispositionSource + ")"
	}
	add("Disposition", disp)
	if r.GeneralSuccess != nil {
		add("Success", yesNo(*r.GeneralSuccess))
	}
	if r.FinalScore != nil {
		add("QC score", strconv.Itoa(*r.FinalScore)+"/10")
	}
	add("Direction", r.Direction)
	if r.Duration > 0 {
		add("Duration", r.Duration.Round(time.Second).String())
	}
	add("Ended reason", r.EndedReason)
	for _, f := range r.selectFields(c) {
		add(f.name, formatValue(f.value))
	}
	if link := r.recordingLink(c); link != "" {
		lines = append(lines, noteLine{label: "Recording", value: link, link: true})
	}
	add("Call ID", r.CallID)
	return lines
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// formatValue renders an analysis value for a human; nil renders empty, and
// empty lines are dropped.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return yesNo(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// noteText renders lines as plain text (GoHighLevel notes).
func noteText(title string, lines []noteLine) string {
	var b strings.Builder
	b.WriteString(title)
	b.WriteString("\n")
	for _, l := range lines {
		b.WriteString(l.label)
		b.WriteString(": ")
		b.WriteString(l.value)
		b.WriteString("\n")
	}
	return truncate(strings.TrimSuffix(b.String(), "\n"), maxNoteChars)
}

// noteHTML renders lines as escaped HTML (HubSpot call bodies and Pipedrive
// notes, which both take rich text). Truncation happens per line so that a
// cut never leaves a broken tag.
func noteHTML(title string, lines []noteLine) string {
	var b strings.Builder
	if title != "" {
		b.WriteString("<p><strong>" + html.EscapeString(title) + "</strong></p>")
	}
	for _, l := range lines {
		var line string
		if l.link {
			esc := html.EscapeString(l.value)
			line = "<p><strong>" + html.EscapeString(l.label) + ":</strong> <a href=\"" + esc + "\">" + esc + "</a></p>"
		} else {
			line = "<p><strong>" + html.EscapeString(l.label) + ":</strong> " +
				strings.ReplaceAll(html.EscapeString(l.value), "\n", "<br>") + "</p>"
		}
		if b.Len()+len(line) > maxNoteChars {
			break
		}
		b.WriteString(line)
	}
	return b.String()
}
