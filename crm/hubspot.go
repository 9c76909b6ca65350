package crm

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// HubSpot association type ids (category HUBSPOT_DEFINED) from a call.
const (
	hubspotCallToContact = 194
	hubspotCallToDeal    = 206
)

// hubspotTarget logs calls as HubSpot call engagements (CRM v3 objects API)
// with a private-app token.
type hubspotTarget struct {
	common
	base  *url.URL
	token string
}

// parseHubSpot reads a hubspot integration's settings:
//   - token (required): a private app access token with the
//     crm.objects.contacts.read and crm.objects.contacts.write scopes (calls
//     are governed by the contacts scopes), sent as a Bearer token.
//   - base_url (optional, default https://api.hubapi.com).
func parseHubSpot(s *settings, c common) (Target, error) {
	token, err := s.token("token")
	if err != nil {
		return nil, err
	}
	base, err := s.baseURL("base_url", DefaultHubSpotBaseURL)
	if err != nil {
		return nil, err
	}
	return &hubspotTarget{common: c, base: base, token: token}, nil
}

// String names the integration and its API host, never the token.
func (t *hubspotTarget) String() string {
	return "hubspot " + strconv.Quote(t.name) + " -> " + hostOf(t.base)
}

// GoString keeps %#v from printing the secret fields.
func (t *hubspotTarget) GoString() string { return t.String() }

func (t *hubspotTarget) secrets() []string { return []string{t.token} }

func (t *hubspotTarget) header() http.Header {
	return http.Header{"Authorization": {"Bearer " + t.token}}
}

// deliver finds the contact (contact_data's hubspot_contact_id, else a
// search by phone) and creates one call engagement associated with it, and
// with hubspot_deal_id's deal when given.
func (t *hubspotTarget) deliver(d *Deliverer, a *attemptCtx) Attempt {
	key, contactID := a.res.contactID(ContactKeyHubSpot)
	if contactID != "" {
		if err := checkID(key, contactID); err != nil {
			return permanent(err)
		}
	} else {
		var fail *Attempt
		contactID, fail = t.searchContact(d, a)
		if fail != nil {
			return *fail
		}
	}
	assoc := []hubspotAssociation{newHubSpotAssociation(contactID, hubspotCallToContact)}
	if key, dealID := a.res.contactID(ContactKeyHubSpotDeal); dealID != "" {
		if err := checkID(key, dealID); err != nil {
			return permanent(err)
		}
		assoc = append(assoc, newHubSpotAssociation(dealID, hubspotCallToDeal))
	}
	body, err := jsonBody(hubspotCreate{Properties: t.callProperties(a.res), Associations: assoc})
	if err != nil {
		return permanent(err)
	}
	const what = "hubspot create call"
	resp, err := d.do(a.ctx, apiRequest{
		what: what, method: http.MethodPost, header: t.header(), body: body,
		url: withPath(t.base, nil, "crm", "v3", "objects", "calls"),
	})
	if err != nil {
		return networkFailure(err)
	}
	if !resp.ok() {
		return d.httpFailure(what, resp)
	}
	var created struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(resp.body, &created) // the call exists even if its id is unreadable
	return delivered(resp, created.ID)
}

type hubspotCreate struct {
	Properties   map[string]string    `json:"properties"`
	Associations []hubspotAssociation `json:"associations"`
}

type hubspotAssociation struct {
	To struct {
		ID string `json:"id"`
	} `json:"to"`
	Types []hubspotAssociationType `json:"types"`
}

type hubspotAssociationType struct {
	Category string `json:"associationCategory"`
	TypeID   int    `json:"associationTypeId"`
}

func newHubSpotAssociation(id string, typeID int) hubspotAssociation {
	var a hubspotAssociation
	a.To.ID = id
	a.Types = []hubspotAssociationType{{Category: "HUBSPOT_DEFINED", TypeID: typeID}}
	return a
}

// callProperties are the call engagement's properties. hs_call_body holds
// the shared note as HTML, which HubSpot renders on the timeline.
func (t *hubspotTarget) callProperties(r *CallResult) map[string]string {
	at := r.StartedAt
	if at.IsZero() {
		at = r.EndedAt
	}
	p := map[string]string{
		"hs_timestamp":   at.UTC().Format(time.RFC3339Nano),
		"hs_call_title":  r.noteTitle(),
		"hs_call_body":   noteHTML("", r.noteLines(&t.common)),
		"hs_call_status": hubspotCallStatus(r),
	}
	if r.Duration > 0 {
		p["hs_call_duration"] = strconv.FormatInt(r.Duration.Milliseconds(), 10)
	}
	switch strings.ToLower(r.Direction) {
	case "inbound":
		p["hs_call_direction"] = "INBOUND"
	case "outbound":
		p["hs_call_direction"] = "OUTBOUND"
	}
	// HubSpot only plays (and may refuse) non-HTTPS recording URLs; an
	// http link still appears in the body.
	if link := r.recordingLink(&t.common); strings.HasPrefix(link, "https://") {
		p["hs_call_recording_url"] = link
	}
	return p
}

// hubspotCallStatus maps the call's disposition or status onto HubSpot's
// hs_call_status values; a call that connected, voicemail included, is
// COMPLETED.
func hubspotCallStatus(r *CallResult) string {
	for _, v := range []string{r.Disposition, r.Status} {
		switch strings.ReplaceAll(strings.ToLower(v), "-", "_") {
		case "no_answer", "noanswer", "rnr":
			return "NO_ANSWER"
		case "busy":
			return "BUSY"
		case "failed", "error":
			return "FAILED"
		case "canceled", "cancelled":
			return "CANCELED"
		}
	}
	return "COMPLETED"
}

// searchContact finds a contact whose phone or mobile phone equals the
// call's number exactly (HubSpot's EQ filter does not normalise formats, so
// contacts should store E.164, or carry hubspot_contact_id). The first match
// wins. A failed search returns the Attempt to report.
func (t *hubspotTarget) searchContact(d *Deliverer, a *attemptCtx) (string, *Attempt) {
	phone := strings.TrimSpace(a.res.PhoneNumber)
	if phone == "" {
		fail := permanent(ErrNoContact)
		return "", &fail
	}
	filter := func(prop string) map[string]any {
		return map[string]any{"filters": []map[string]string{{"propertyName": prop, "operator": "EQ", "value": phone}}}
	}
	body, err := jsonBody(map[string]any{
		"filterGroups": []map[string]any{filter("phone"), filter("mobilephone")},
		"properties":   []string{"hs_object_id"},
		"limit":        1,
	})
	if err != nil {
		fail := permanent(err)
		return "", &fail
	}
	const what = "hubspot search contacts"
	resp, err := d.do(a.ctx, apiRequest{
		what: what, method: http.MethodPost, header: t.header(), body: body,
		url: withPath(t.base, nil, "crm", "v3", "objects", "contacts", "search"),
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
		Results []struct {
			ID string `json:"id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(resp.body, &found); err != nil {
		// A 2xx that is not the search answer (a proxy's page) is transient.
		fail := Attempt{StatusCode: resp.status, Outcome: OutcomeRetry, Err: errors.New(what + ": unreadable answer")}
		return "", &fail
	}
	if len(found.Results) == 0 || found.Results[0].ID == "" {
		fail := Attempt{StatusCode: resp.status, Outcome: OutcomePermanent, Err: ErrNoContact}
		return "", &fail
	}
	id := found.Results[0].ID
	if err := checkID("hubspot search result", id); err != nil {
		fail := permanent(err)
		return "", &fail
	}
	return id, nil
}
