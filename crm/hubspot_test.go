package crm

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newHubSpotFake implements the CRM v3 endpoints postcall uses, with
// private-app bearer auth and HubSpot's error shape. contacts maps a phone
// (as stored in `phone` or `mobilephone`) to a contact id.
func newHubSpotFake(t *testing.T, contacts map[string]string) *fake {
	f := newFake(t,
		func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+testHubSpotToken },
		canned{status: http.StatusUnauthorized, body: `{"status":"error","message":"Authentication credentials not found.","category":"INVALID_AUTHENTICATION"}`},
	)
	f.mux.HandleFunc("POST /crm/v3/objects/contacts/search", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			FilterGroups []struct {
				Filters []struct {
					PropertyName string `json:"propertyName"`
					Operator     string `json:"operator"`
					Value        string `json:"value"`
				} `json:"filters"`
			} `json:"filterGroups"`
			Limit int `json:"limit"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.FilterGroups) == 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "message": "Invalid input JSON", "category": "VALIDATION_ERROR"})
			return
		}
		results := []map[string]any{}
		for _, g := range req.FilterGroups { // groups are ORed
			for _, fl := range g.Filters {
				if fl.Operator != "EQ" || (fl.PropertyName != "phone" && fl.PropertyName != "mobilephone") {
					continue
				}
				if id, ok := contacts[fl.Value]; ok && len(results) == 0 {
					results = append(results, map[string]any{"id": id, "properties": map[string]any{"hs_object_id": id}})
				}
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"total": len(results), "results": results})
	})
	f.mux.HandleFunc("POST /crm/v3/objects/calls", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Properties   map[string]string `json:"properties"`
			Associations []struct {
				To struct {
					ID string `json:"id"`
				} `json:"to"`
				Types []struct {
					Category string `json:"associationCategory"`
					TypeID   int    `json:"associationTypeId"`
				} `json:"types"`
			} `json:"associations"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Properties["hs_timestamp"] == "" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "message": "Property values were not valid", "category": "VALIDATION_ERROR"})
			return
		}
		for _, a := range req.Associations {
			if a.To.ID == "" || len(a.Types) != 1 || a.Types[0].Category != "HUBSPOT_DEFINED" {
				writeJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "message": "invalid association", "category": "VALIDATION_ERROR"})
				return
			}
		}
		writeJSON(w, http.StatusCreated, map[string]any{"id": "90001", "properties": req.Properties, "archived": false})
	})
	return f
}

func TestHubSpotDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		token       string
		settings    map[string]any
		mutate      func(*CallResult)
		queue       map[string][]canned
		wantOutcome Outcome
		wantErrIs   error
		wantStatus  int
		wantPaths   []string
		// wantAssoc is contact id -> association type id on the created call.
		wantAssoc  map[string]float64
		wantRetry  bool
		checkProps func(t *testing.T, p map[string]any)
	}{
		{
			name:        "contact id from contact_data, deal associated too",
			mutate:      func(r *CallResult) { r.ContactData = []byte(`{"hubspot_contact_id": 501, "hubspot_deal_id": "777"}`) },
			wantOutcome: OutcomeDelivered,
			wantStatus:  http.StatusCreated,
			wantPaths:   []string{"POST /crm/v3/objects/calls"},
			wantAssoc:   map[string]float64{"501": 194, "777": 206},
			checkProps: func(t *testing.T, p map[string]any) {
				require.Equal(t, "2026-03-01T10:00:00Z", p["hs_timestamp"])
				require.Equal(t, "125000", p["hs_call_duration"])
				require.Equal(t, "OUTBOUND", p["hs_call_direction"])
				require.Equal(t, "COMPLETED", p["hs_call_status"])
				require.Equal(t, "AI call: agreed", p["hs_call_title"])
				require.Equal(t, "https://postcall.example.com/v1/calls/pc_01/recording", p["hs_call_recording_url"])
				body := p["hs_call_body"].(string)
				require.Contains(t, body, "<strong>Summary:</strong> Customer agreed to a demo &lt;next week&gt; &amp; asked for pricing.")
				require.Contains(t, body, "<strong>QC score:</strong> 8/10")
				require.Contains(t, body, "<strong>budget:</strong> 5000")
				require.Contains(t, body, `<a href="https://postcall.example.com/v1/calls/pc_01/recording">`)
				require.NotContains(t, body, "jane@example.com", "PII field not listed in fields")
				require.NotContains(t, body, testPhone)
			},
		},
		{
			name:        "contact found by phone search",
			mutate:      func(r *CallResult) { r.Demo = true; r.Disposition = "no_answer"; r.Direction = "inbound" },
			settings:    map[string]any{"recording_link": "none"},
			wantOutcome: OutcomeDelivered,
			wantStatus:  http.StatusCreated,
			wantPaths:   []string{"POST /crm/v3/objects/contacts/search", "POST /crm/v3/objects/calls"},
			wantAssoc:   map[string]float64{"301": 194},
			checkProps: func(t *testing.T, p map[string]any) {
				require.Equal(t, "[DEMO] AI call: no_answer", p["hs_call_title"])
				require.Contains(t, p["hs_call_body"], demoNotice)
				require.Equal(t, "NO_ANSWER", p["hs_call_status"])
				require.Equal(t, "INBOUND", p["hs_call_direction"])
				require.NotContains(t, p, "hs_call_recording_url")
			},
		},
		{
			name:        "no contact for the phone is permanent and creates nothing",
			mutate:      func(r *CallResult) { r.PhoneNumber = "+15550000000" },
			wantOutcome: OutcomePermanent,
			wantErrIs:   ErrNoContact,
			wantStatus:  http.StatusOK,
			wantPaths:   []string{"POST /crm/v3/objects/contacts/search"},
		},
		{
			name:        "no phone and no id: nothing sent",
			mutate:      func(r *CallResult) { r.PhoneNumber = "" },
			wantOutcome: OutcomePermanent,
			wantErrIs:   ErrNoContact,
		},
		{
			name:        "bad token is permanent",
			token:       "pat-wrong-token",
			mutate:      func(r *CallResult) { r.ContactData = []byte(`{"hubspot_contact_id":"501"}`) },
			wantOutcome: OutcomePermanent,
			wantStatus:  http.StatusUnauthorized,
			wantPaths:   []string{"POST /crm/v3/objects/calls"},
		},
		{
			name:        "rate-limited search is retried and creates nothing",
			queue:       map[string][]canned{"POST /crm/v3/objects/contacts/search": {{status: 429, header: map[string]string{"Retry-After": "10"}, body: `{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT"}`}}},
			wantOutcome: OutcomeRetry,
			wantStatus:  http.StatusTooManyRequests,
			wantPaths:   []string{"POST /crm/v3/objects/contacts/search"},
			wantRetry:   true,
		},
		{
			name:        "contact_data id that is not an id is refused before sending",
			mutate:      func(r *CallResult) { r.ContactData = []byte(`{"hubspot_contact_id":"../owners"}`) },
			wantOutcome: OutcomePermanent,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			f := newHubSpotFake(t, map[string]string{testPhone: "301"})
			for p, cs := range tt.queue {
				f.queue(p, cs...)
			}
			token := testHubSpotToken
			if tt.token != "" {
				token = tt.token
			}
			s := map[string]any{"token": token, "base_url": f.srv.URL}
			for k, v := range tt.settings {
				s[k] = v
			}
			res := sampleResult()
			if tt.mutate != nil {
				tt.mutate(&res)
			}

			a := b.deliver(b.target(TypeHubSpot, s), res, "dlv-1")

			require.Equal(t, tt.wantOutcome, a.Outcome, "err: %v", a.Err)
			require.Equal(t, tt.wantStatus, a.StatusCode)
			if tt.wantErrIs != nil {
				require.ErrorIs(t, a.Err, tt.wantErrIs)
			}
			if tt.wantOutcome == OutcomeDelivered {
				require.NoError(t, a.Err)
				require.Equal(t, "90001", a.ExternalID)
			} else {
				require.Error(t, a.Err)
				require.Empty(t, a.ExternalID)
			}
			if tt.wantRetry {
				require.Equal(t, 10*time.Second, a.RetryAfter)
			}
			reqs := f.requests()
			var paths []string
			for _, r := range reqs {
				paths = append(paths, r.Method+" "+r.Path)
				require.Equal(t, "Bearer "+token, r.Header.Get("Authorization"))
				require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			}
			require.Equal(t, tt.wantPaths, paths)
			for _, r := range reqs {
				if r.Path == "/crm/v3/objects/contacts/search" {
					body := r.decode(t)
					groups := body["filterGroups"].([]any)
					require.Len(t, groups, 2)
					f0 := groups[0].(map[string]any)["filters"].([]any)[0].(map[string]any)
					require.Equal(t, map[string]any{"propertyName": "phone", "operator": "EQ", "value": res.PhoneNumber}, f0)
				}
				if r.Path == "/crm/v3/objects/calls" && tt.wantAssoc != nil {
					body := r.decode(t)
					got := map[string]float64{}
					for _, a := range body["associations"].([]any) {
						am := a.(map[string]any)
						typ := am["types"].([]any)[0].(map[string]any)
						require.Equal(t, "HUBSPOT_DEFINED", typ["associationCategory"])
						got[am["to"].(map[string]any)["id"].(string)] = typ["associationTypeId"].(float64)
					}
					require.Equal(t, tt.wantAssoc, got)
					if tt.checkProps != nil {
						tt.checkProps(t, body["properties"].(map[string]any))
					}
				}
			}
		})
	}
}
