package crm

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"
)

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
	// Evidence is the checked quote of each field that has one; nil when
	// the plan asks for no evidence (webhooks then carry none).
	Evidence map[string]Evidence
	// Unverified names the fields whose quote was not found.
	Unverified []string
	// EvidenceRequired says the plan's analysis.evidence is require: an
	// unverified field's value is null in Fields and its quote is not sent.
	EvidenceRequired bool
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
