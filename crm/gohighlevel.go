package crm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// GoHighLevelVersion is the API version header every GoHighLevel v2 request
// carries.
const GoHighLevelVersion = "2021-07-28"

// ghlTarget writes a note on a GoHighLevel contact (API v2) and optionally
// copies analysis fields into the contact's custom fields.
type ghlTarget struct {
	common
	base       *url.URL
	token      string
	locationID string
	// customFields maps an analysis field to a GHL custom field id or key;
	// customKeys are its keys sorted, for deterministic requests.
	customFields map[string]string
	customKeys   []string
}

// parseGoHighLevel reads a gohighlevel integration's settings:
//   - token (required): a Private Integration token (or OAuth access token)
//     of the sub-account with contacts.readonly, contacts.write and notes
//     scopes, sent as a Bearer token with "Version: 2021-07-28".
//   - location_id (required): the sub-account (location) id, used to look
//     contacts up by phone.
//   - base_url (optional, default https://services.leadconnectorhq.com).
//   - custom_fields (optional): map of analysis field name to a GHL custom
//     field. A value starting with "contact." is sent as the field's key
//     (e.g. contact.lead_score), anything else as its id. Mapped fields are
//     written with the value as analysed (string, number or boolean), even
//     PII ones: naming a field in the mapping is the opt-in. Fields absent
//     or null in the result are not written.
func parseGoHighLevel(s *settings, c common) (Target, error) {
	token, err := s.token("token")
	if err != nil {
		return nil, err
	}
	loc, err := s.str("location_id", true)
	if err != nil {
		return nil, err
	}
	if !idPattern.MatchString(loc) {
		return nil, s.errf("location_id", "must be a GoHighLevel location id (letters, digits, _ or -)")
	}
	base, err := s.baseURL("base_url", DefaultGoHighLevelBaseURL)
	if err != nil {
		return nil, err
	}
	cf, keys, err := s.stringMap("custom_fields")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if !fieldNamePattern.MatchString(k) {
			return nil, s.errf("custom_fields", "%q is not an analysis field name", k)
		}
		if strings.TrimSpace(cf[k]) == "" || !validHeaderValue(cf[k]) {
			return nil, s.errf("custom_fields."+k, "must be a GoHighLevel custom field id or key")
		}
	}
	return &ghlTarget{common: c, base: base, token: token, locationID: loc, customFields: cf, customKeys: keys}, nil
}

// String names the integration, its API host and location, never the token.
func (t *ghlTarget) String() string {
	return "gohighlevel " + strconv.Quote(t.name) + " -> " + hostOf(t.base) + " location " + t.locationID
}

// GoString keeps %#v from printing the secret fields.
func (t *ghlTarget) GoString() string { return t.String() }

func (t *ghlTarget) secrets() []string { return []string{t.token} }

func (t *ghlTarget) header() http.Header {
	return http.Header{
		"Authorization": {"Bearer " + t.token},
		"Version":       {GoHighLevelVersion},
	}
}

// deliver finds the contact (contact_data's ghl_contact_id or contact_id,
// else the duplicate-contact search by phone), updates mapped custom fields,
// then creates the note. The idempotent update goes first so that a retry
// after a failed update never duplicates the note.
func (t *ghlTarget) deliver(d *Deliverer, a *attemptCtx) Attempt {
	where, contactID := a.res.contactID(ContactKeyGoHighLevel, ContactKeyGeneric)
	if contactID != "" {
		if err := checkID(where, contactID); err != nil {
			return permanent(err)
		}
	} else {
		var fail *Attempt
		if contactID, fail = t.findContact(d, a); fail != nil {
			return *fail
		}
	}
	if fail := t.updateCustomFields(d, a, contactID); fail != nil {
		return *fail
	}
	body, err := jsonBody(map[string]string{
		"body": noteText(a.res.noteTitle(), a.res.noteLines(&t.common)),
	})
	if err != nil {
		return permanent(err)
	}
	const what = "gohighlevel create note"
	resp, err := d.do(a.ctx, apiRequest{
		what: what, method: http.MethodPost, header: t.header(), body: body,
		url: withPath(t.base, nil, "contacts", contactID, "notes"),
	})
	if err != nil {
		return networkFailure(err)
	}
	if !resp.ok() {
		return d.httpFailure(what, resp)
	}
	var created struct {
		Note struct {
			ID string `json:"id"`
		} `json:"note"`
	}
	_ = json.Unmarshal(resp.body, &created) // the note exists even if its id is unreadable
	return delivered(resp, created.Note.ID)
}

// findContact looks the contact up with GET /contacts/search/duplicate,
// which matches the location's contacts by phone number.
func (t *ghlTarget) findContact(d *Deliverer, a *attemptCtx) (string, *Attempt) {
	phone := strings.TrimSpace(a.res.PhoneNumber)
	if phone == "" {
		fail := permanent(ErrNoContact)
		return "", &fail
	}
	const what = "gohighlevel find contact"
	resp, err := d.do(a.ctx, apiRequest{
		what: what, method: http.MethodGet, header: t.header(),
		url: withPath(t.base, url.Values{"locationId": {t.locationID}, "number": {phone}}, "contacts", "search", "duplicate"),
	})
	if err != nil {
		fail := networkFailure(err)
		return "", &fail
	}
	if !resp.ok() {
		fail := d.httpFailure(what, resp)
		return "", &fail
	}
	var found struct {
		Contact *struct {
			ID string `json:"id"`
		} `json:"contact"`
	}
	if err := json.Unmarshal(resp.body, &found); err != nil {
		fail := Attempt{StatusCode: resp.status, Outcome: OutcomeRetry, Err: errors.New(what + ": unreadable answer")}
		return "", &fail
	}
	if found.Contact == nil || found.Contact.ID == "" {
		fail := Attempt{StatusCode: resp.status, Outcome: OutcomePermanent, Err: ErrNoContact}
		return "", &fail
	}
	if err := checkID("gohighlevel contact search", found.Contact.ID); err != nil {
		fail := permanent(err)
		return "", &fail
	}
	return found.Contact.ID, nil
}

// ghlCustomField is one entry of an update's customFields.
type ghlCustomField struct {
	ID         string `json:"id,omitempty"`
	Key        string `json:"key,omitempty"`
	FieldValue any    `json:"field_value"`
}

// updateCustomFields writes the mapped analysis fields with PUT
// /contacts/{id}; nothing is sent when no mapped field has a value.
func (t *ghlTarget) updateCustomFields(d *Deliverer, a *attemptCtx, contactID string) *Attempt {
	var fields []ghlCustomField
	for _, name := range t.customKeys {
		v, ok := a.res.Fields[name]
		if !ok || v == nil {
			continue
		}
		f := ghlCustomField{FieldValue: v}
		if ref := t.customFields[name]; strings.HasPrefix(ref, "contact.") {
			f.Key = ref
		} else {
			f.ID = ref
		}
		fields = append(fields, f)
	}
	if len(fields) == 0 {
		return nil
	}
	body, err := jsonBody(map[string]any{"customFields": fields})
	if err != nil {
		fail := permanent(fmt.Errorf("gohighlevel update contact: %w", err))
		return &fail
	}
	const what = "gohighlevel update contact"
	resp, err := d.do(a.ctx, apiRequest{
		what: what, method: http.MethodPut, header: t.header(), body: body,
		url: withPath(t.base, nil, "contacts", contactID),
	})
	if err != nil {
		fail := networkFailure(err)
		return &fail
	}
	if !resp.ok() {
		fail := d.httpFailure(what, resp)
		return &fail
	}
	return nil
}
