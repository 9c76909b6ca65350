package crm

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// newPipedriveFake implements the v1 endpoints postcall uses, authenticated
// by the api_token query parameter as Pipedrive's v1 API is. persons maps a
// phone to a person id (exact match only, as exact_match=true asks).
func newPipedriveFake(t *testing.T, persons map[string]int) *fake {
	f := newFake(t,
		func(r *http.Request) bool { return r.URL.Query().Get("api_token") == testPipedriveKey },
		canned{status: http.StatusUnauthorized, body: `{"success":false,"error":"unauthorized access","errorCode":401,"error_info":"Please check developers.pipedrive.com"}`},
	)
	f.mux.HandleFunc("GET /v1/persons/search", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if len(q.Get("term")) < 2 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "error": "term must be at least 2 characters"})
			return
		}
		items := []any{}
		if id, ok := persons[q.Get("term")]; ok && q.Get("fields") == "phone" && q.Get("exact_match") == "true" {
			items = append(items, map[string]any{"result_score": 1, "item": map[string]any{"id": id, "type": "person", "name": "Jane"}})
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": map[string]any{"items": items}})
	})
	f.mux.HandleFunc("POST /v1/notes", func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req["content"] == "" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "error": "content is required"})
			return
		}
		if req["person_id"] == nil && req["deal_id"] == nil && req["org_id"] == nil && req["lead_id"] == nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "error": "One of deal_id, person_id, org_id or lead_id is required"})
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"success": true, "data": map[string]any{"id": 7001, "content": req["content"]}})
	})
	return f
}

func TestPipedriveDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		apiToken    string
		mutate      func(*CallResult)
		queue       map[string][]canned
		wantOutcome Outcome
		wantStatus  int
		wantErrIs   error
		wantPaths   []string
		wantNoteIDs map[string]any
	}{
		{
			name:        "person and deal from contact_data",
			mutate:      func(r *CallResult) { r.ContactData = []byte(`{"pipedrive_person_id": 12, "pipedrive_deal_id": "34"}`) },
			wantOutcome: OutcomeDelivered,
			wantStatus:  http.StatusCreated,
			wantPaths:   []string{"POST /v1/notes"},
			wantNoteIDs: map[string]any{"person_id": float64(12), "deal_id": float64(34)},
		},
		{
			name:        "person found by phone",
			wantOutcome: OutcomeDelivered,
			wantStatus:  http.StatusCreated,
			wantPaths:   []string{"GET /v1/persons/search", "POST /v1/notes"},
			wantNoteIDs: map[string]any{"person_id": float64(42)},
		},
		{
			name:        "no person for the phone is permanent",
			mutate:      func(r *CallResult) { r.PhoneNumber = "+15550000000" },
			wantOutcome: OutcomePermanent,
			wantStatus:  http.StatusOK,
			wantErrIs:   ErrNoContact,
			wantPaths:   []string{"GET /v1/persons/search"},
		},
		{
			name:        "non-numeric person id is refused before sending",
			mutate:      func(r *CallResult) { r.ContactData = []byte(`{"pipedrive_person_id": "abc"}`) },
			wantOutcome: OutcomePermanent,
		},
		{
			name:        "wrong api_token is permanent",
			apiToken:    "pd-wrong-token-9999",
			wantOutcome: OutcomePermanent,
			wantStatus:  http.StatusUnauthorized,
			wantPaths:   []string{"GET /v1/persons/search"},
		},
		{
			name:        "server error on note is retried",
			mutate:      func(r *CallResult) { r.ContactData = []byte(`{"pipedrive_person_id": 12}`) },
			queue:       map[string][]canned{"POST /v1/notes": {{status: 500, body: `{"success":false,"error":"Internal server error"}`}}},
			wantOutcome: OutcomeRetry,
			wantStatus:  http.StatusInternalServerError,
			wantPaths:   []string{"POST /v1/notes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			f := newPipedriveFake(t, map[string]int{testPhone: 42})
			for p, cs := range tt.queue {
				f.queue(p, cs...)
			}
			token := testPipedriveKey
			if tt.apiToken != "" {
				token = tt.apiToken
			}
			res := sampleResult()
			if tt.mutate != nil {
				tt.mutate(&res)
			}
			tg := b.target(TypePipedrive, map[string]any{"api_token": token, "base_url": f.srv.URL})

			a := b.deliver(tg, res, "dlv-pd")

			require.Equal(t, tt.wantOutcome, a.Outcome, "err: %v", a.Err)
			require.Equal(t, tt.wantStatus, a.StatusCode)
			if tt.wantErrIs != nil {
				require.ErrorIs(t, a.Err, tt.wantErrIs)
			}
			if tt.wantOutcome == OutcomeDelivered {
				require.NoError(t, a.Err)
				require.Equal(t, "7001", a.ExternalID)
			} else {
				require.Error(t, a.Err)
				require.NotContains(t, a.Err.Error(), token)
				require.NotContains(t, a.Err.Error(), "api_token")
			}
			reqs := f.requests()
			var paths []string
			for _, r := range reqs {
				paths = append(paths, r.Method+" "+r.Path)
				require.Equal(t, token, r.Query.Get("api_token"))
				require.Empty(t, r.Header.Get("Authorization"))
				if r.Method == http.MethodGet {
					require.Equal(t, res.PhoneNumber, r.Query.Get("term"))
					require.Equal(t, "phone", r.Query.Get("fields"))
					require.Equal(t, "true", r.Query.Get("exact_match"))
				}
				if r.Method == http.MethodPost && tt.wantNoteIDs != nil {
					note := r.decode(t)
					content := note["content"].(string)
					delete(note, "content")
					require.Equal(t, tt.wantNoteIDs, note)
					require.Contains(t, content, "<p><strong>AI call: agreed</strong></p>")
					require.Contains(t, content, "&lt;next week&gt;")
				}
			}
			require.Equal(t, tt.wantPaths, paths)
		})
	}
}
