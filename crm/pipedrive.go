package crm

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// pipedriveTarget adds a note to a Pipedrive person and/or deal (API v1,
// which is where notes live).
type pipedriveTarget struct {
	common
	base     *url.URL
	apiToken string
}

var companyDomainPattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// parsePipedrive reads a pipedrive integration's settings:
//   - api_token (required): the user's personal API token, sent as the
//     api_token query parameter Pipedrive's v1 API expects. Request URLs
//     are therefore never logged or put in errors.
//   - company_domain (optional): the account's subdomain ("acme" or
//     "acme.pipedrive.com"); requests then go to
//     https://acme.pipedrive.com/api/v1/... instead of
//     https://api.pipedrive.com/v1/....
//   - base_url (optional, default https://api.pipedrive.com; overrides
//     company_domain): paths /v1/notes and /v1/persons/search are appended.
func parsePipedrive(s *settings, c common) (Target, error) {
	token, err := s.token("api_token")
	if err != nil {
		return nil, err
	}
	domain, err := s.str("company_domain", false)
	if err != nil {
		return nil, err
	}
	domain = strings.TrimSuffix(strings.ToLower(domain), ".pipedrive.com")
	def := DefaultPipedriveBaseURL
	if domain != "" {
		if !companyDomainPattern.MatchString(domain) {
			return nil, s.errf("company_domain", "must be the account's pipedrive.com subdomain, e.g. acme")
		}
		def = "https://" + domain + ".pipedrive.com/api"
	}
	base, err := s.baseURL("base_url", def)
	if err != nil {
		return nil, err
	}
	return &pipedriveTarget{common: c, base: base, apiToken: token}, nil
}

// String names the integration and its API host, never the token.
func (t *pipedriveTarget) String() string {
	return "pipedrive " + strconv.Quote(t.name) + " -> " + hostOf(t.base)
}

// GoString keeps %#v from printing the secret fields.
func (t *pipedriveTarget) GoString() string { return t.String() }

func (t *pipedriveTarget) secrets() []string { return []string{t.apiToken} }

// deliver attaches an HTML note to contact_data's pipedrive_person_id and/or
// pipedrive_deal_id, else to the person found by exact phone match.
func (t *pipedriveTarget) deliver(d *Deliverer, a *attemptCtx) Attempt {
	note := map[string]any{"content": noteHTML(a.res.noteTitle(), a.res.noteLines(&t.common))}
	personWhere, personID := a.res.contactID(ContactKeyPipedrivePerson)
	dealWhere, dealID := a.res.contactID(ContactKeyPipedriveDeal)
	for _, ref := range []struct{ where, id, field string }{
		{personWhere, personID, "person_id"},
		{dealWhere, dealID, "deal_id"},
	} {
		if ref.id == "" {
			continue
		}
		n, err := strconv.ParseInt(ref.id, 10, 64)
		if err != nil || n <= 0 {
			return permanent(errors.New(ref.where + ": not a Pipedrive id (a positive integer)"))
		}
		note[ref.field] = n
	}
	if personID == "" && dealID == "" {
		id, fail := t.findPerson(d, a)
		if fail != nil {
			return *fail
		}
		note["person_id"] = id
	}
	body, err := jsonBody(note)
	if err != nil {
		return permanent(err)
	}
	const what = "pipedrive create note"
	resp, err := d.do(a.ctx, apiRequest{
		what: what, method: http.MethodPost, body: body,
		url: withPath(t.base, url.Values{"api_token": {t.apiToken}}, "v1", "notes"),
	})
	if err != nil {
		return networkFailure(err)
	}
	if !resp.ok() {
		return d.httpFailure(what, resp)
	}
	var created struct {
		Data struct {
			ID json.Number `json:"id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(resp.body, &created) // the note exists even if its id is unreadable
	return delivered(resp, created.Data.ID.String())
}

// findPerson searches persons by exact phone match (GET
// /v1/persons/search?fields=phone&exact_match=true); exact, because a note
// on the wrong person is worse than none.
func (t *pipedriveTarget) findPerson(d *Deliverer, a *attemptCtx) (int64, *Attempt) {
	phone := strings.TrimSpace(a.res.PhoneNumber)
	// Pipedrive's search needs at least two characters.
	if len(phone) < 2 {
		fail := permanent(ErrNoContact)
		return 0, &fail
	}
	const what = "pipedrive search persons"
	q := url.Values{
		"term": {phone}, "fields": {"phone"}, "exact_match": {"true"},
		"limit": {"1"}, "api_token": {t.apiToken},
	}
	resp, err := d.do(a.ctx, apiRequest{
		what: what, method: http.MethodGet,
		url: withPath(t.base, q, "v1", "persons", "search"),
	})
	if err != nil {
		fail := networkFailure(err)
		return 0, &fail
	}
	if !resp.ok() {
		fail := d.httpFailure(what, resp)
		return 0, &fail
	}
	var found struct {
		Data struct {
			Items []struct {
				Item struct {
					ID int64 `json:"id"`
				} `json:"item"`
			} `json:"items"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.body, &found); err != nil {
		fail := Attempt{StatusCode: resp.status, Outcome: OutcomeRetry, Err: errors.New(what + ": unreadable answer")}
		return 0, &fail
	}
	if len(found.Data.Items) == 0 || found.Data.Items[0].Item.ID <= 0 {
		fail := Attempt{StatusCode: resp.status, Outcome: OutcomePermanent, Err: ErrNoContact}
		return 0, &fail
	}
	return found.Data.Items[0].Item.ID, nil
}
