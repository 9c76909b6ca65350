package crm

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newGHLFake implements the GoHighLevel v2 endpoints postcall uses: bearer
// auth, the mandatory Version header (the real API answers 400 without
// it), the duplicate-contact search scoped to a location, contact update
// and note creation. contacts maps a phone to a contact id.
func newGHLFake(t *testing.T, contacts map[string]string) *fake {
	f := newFake(t,
		func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+testGHLToken },
		canned{status: http.StatusUnauthorized, body: `{"statusCode":401,"message":"Invalid JWT"}`},
	)
	versioned := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Version") != GoHighLevelVersion {
				writeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "message": "version header was not found"})
				return
			}
			h(w, r)
		}
	}
	f.mux.HandleFunc("GET /contacts/search/duplicate", versioned(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("locationId") != testGHLLocation {
			writeJSON(w, http.StatusForbidden, map[string]any{"statusCode": 403, "message": "The token does not have access to this location"})
			return
		}
		id, ok := contacts[r.URL.Query().Get("number")]
		if !ok {
			writeJSON(w, http.StatusOK, map[string]any{"contact": nil})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"contact": map[string]any{"id": id, "locationId": testGHLLocation}})
	}))
	f.mux.HandleFunc("PUT /contacts/{contactId}", versioned(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			CustomFields []map[string]any `json:"customFields"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"statusCode": 422, "message": []string{"invalid body"}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"succeded": true, "contact": map[string]any{"id": r.PathValue("contactId")}})
	}))
	f.mux.HandleFunc("POST /contacts/{contactId}/notes", versioned(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Body string `json:"body"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Body == "" {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"statusCode": 422, "message": []string{"body should not be empty"}})
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"note": map[string]any{
			"id": "note-55", "body": req.Body, "contactId": r.PathValue("contactId"), "dateAdded": "2026-03-01T10:03:00.000Z",
		}})
	}))
	return f
}

func TestGoHighLevelDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		token        string
		customFields map[string]any
		mutate       func(*CallResult)
		queue        map[string][]canned
		wantOutcome  Outcome
		wantStatus   int
		wantErrIs    error
		wantPaths    []string
		wantCustom   []any
		wantRetry    time.Duration
	}{
		{
			name:        "ghl_contact_id from contact_data",
			mutate:      func(r *CallResult) { r.ContactData = []byte(`{"ghl_contact_id":"cAbC123"}`) },
			wantOutcome: OutcomeDelivered,
			wantStatus:  http.StatusCreated,
			wantPaths:   []string{"POST /contacts/cAbC123/notes"},
		},
		{
			name:        "generic contact_id key",
			mutate:      func(r *CallResult) { r.ContactData = []byte(`{"contact_id":"cXyz9"}`) },
			wantOutcome: OutcomeDelivered,
			wantStatus:  http.StatusCreated,
			wantPaths:   []string{"POST /contacts/cXyz9/notes"},
		},
		{
			name:         "lookup by phone, custom fields updated before the note",
			customFields: map[string]any{"outcome": "contact.call_outcome", "budget": "Xy12AbCdEf", "purged": "nullfield1"},
			wantOutcome:  OutcomeDelivered,
			wantStatus:   http.StatusCreated,
			wantPaths:    []string{"GET /contacts/search/duplicate", "PUT /contacts/cPhone1", "POST /contacts/cPhone1/notes"},
			wantCustom: []any{
				map[string]any{"id": "Xy12AbCdEf", "field_value": float64(5000)},
				map[string]any{"key": "contact.call_outcome", "field_value": "agreed"},
			},
		},
		{
			name:        "unknown phone is permanent",
			mutate:      func(r *CallResult) { r.PhoneNumber = "+15550000000" },
			wantOutcome: OutcomePermanent,
			wantStatus:  http.StatusOK,
			wantErrIs:   ErrNoContact,
			wantPaths:   []string{"GET /contacts/search/duplicate"},
		},
		{
			name:         "failed custom field update is retried without creating the note",
			customFields: map[string]any{"outcome": "contact.call_outcome"},
			mutate:       func(r *CallResult) { r.ContactData = []byte(`{"ghl_contact_id":"cAbC123"}`) },
			queue:        map[string][]canned{"PUT /contacts/{contactId}": {{status: 502, body: `<html>bad gateway</html>`}}},
			wantOutcome:  OutcomeRetry,
			wantStatus:   http.StatusBadGateway,
			wantPaths:    []string{"PUT /contacts/cAbC123"},
			wantCustom:   []any{map[string]any{"key": "contact.call_outcome", "field_value": "agreed"}},
		},
		{
			name:        "rate limited note with Retry-After",
			mutate:      func(r *CallResult) { r.ContactData = []byte(`{"ghl_contact_id":"cAbC123"}`) },
			queue:       map[string][]canned{"POST /contacts/{contactId}/notes": {{status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"statusCode":429,"message":"Too many requests"}`}}},
			wantOutcome: OutcomeRetry,
			wantStatus:  http.StatusTooManyRequests,
			wantPaths:   []string{"POST /contacts/cAbC123/notes"},
			wantRetry:   7 * time.Second,
		},
		{
			name:        "invalid token is permanent",
			token:       "pit-wrong",
			mutate:      func(r *CallResult) { r.ContactData = []byte(`{"ghl_contact_id":"cAbC123"}`) },
			wantOutcome: OutcomePermanent,
			wantStatus:  http.StatusUnauthorized,
			wantPaths:   []string{"POST /contacts/cAbC123/notes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			f := newGHLFake(t, map[string]string{testPhone: "cPhone1"})
			for p, cs := range tt.queue {
				f.queue(p, cs...)
			}
			token := testGHLToken
			if tt.token != "" {
				token = tt.token
			}
			s := map[string]any{"token": token, "location_id": testGHLLocation, "base_url": f.srv.URL}
			if tt.customFields != nil {
				s["custom_fields"] = tt.customFields
			}
			res := sampleResult()
			if tt.mutate != nil {
				tt.mutate(&res)
			}

			a := b.deliver(b.target(TypeGoHighLevel, s), res, "dlv-ghl")

			require.Equal(t, tt.wantOutcome, a.Outcome, "err: %v", a.Err)
			require.Equal(t, tt.wantStatus, a.StatusCode)
			require.Equal(t, tt.wantRetry, a.RetryAfter)
			if tt.wantErrIs != nil {
				require.ErrorIs(t, a.Err, tt.wantErrIs)
			}
			if tt.wantOutcome == OutcomeDelivered {
				require.NoError(t, a.Err)
				require.Equal(t, "note-55", a.ExternalID)
			} else {
				require.Error(t, a.Err)
				require.NotContains(t, a.Err.Error(), token)
			}
			reqs := f.requests()
			var paths []string
			for _, r := range reqs {
				paths = append(paths, r.Method+" "+r.Path)
				require.Equal(t, "Bearer "+token, r.Header.Get("Authorization"))
				require.Equal(t, "2021-07-28", r.Header.Get("Version"))
				switch {
				case r.Method == http.MethodGet:
					require.Equal(t, testGHLLocation, r.Query.Get("locationId"))
					require.Equal(t, res.PhoneNumber, r.Query.Get("number"))
				case r.Method == http.MethodPut:
					require.Equal(t, map[string]any{"customFields": tt.wantCustom}, r.decode(t))
				default:
					note := r.decode(t)["body"].(string)
					require.Contains(t, note, "AI call: agreed\n")
					require.Contains(t, note, "Summary: Customer agreed to a demo <next week> & asked for pricing.\n")
					require.Contains(t, note, "Recording: https://postcall.example.com/v1/calls/pc_01/recording")
					require.NotContains(t, note, "jane@example.com")
				}
			}
			require.Equal(t, tt.wantPaths, paths)
		})
	}
}
