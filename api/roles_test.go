package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/access"
	"github.com/postcall/postcall/api"
)

// rolesBundle is the API with named tokens: an admin and a viewer token
// besides POSTCALL_API_TOKEN (testToken), and one ingested call.
type rolesBundle struct {
	*testBundle
	admin, viewer string
	access        *access.Service
	callID        string
}

func setupRoles(t *testing.T) *rolesBundle {
	t.Helper()
	var svc *access.Service
	b := setup(t, func(s *api.Server) {
		svc = &access.Service{DB: s.Pool, APIToken: testToken}
		s.Access = svc
	})
	// setup's pool is the schema's; the service was given it before start.
	ctx := context.Background()
	rb := &rolesBundle{testBundle: b, access: svc}
	var err error
	rb.admin, err = svc.CreateToken(ctx, "ops", access.RoleAdmin)
	require.NoError(t, err)
	rb.viewer, err = svc.CreateToken(ctx, "qa", access.RoleViewer)
	require.NoError(t, err)
	res := b.do(t, "POST", "/v1/calls", goodCall, rb.admin)
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	rb.callID = res.json(t)["id"].(string)
	return rb
}

func TestViewerReadsOnly(t *testing.T) {
	b := setupRoles(t)
	id := b.callID
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/v1/calls", "", 200},
		{"GET", "/v1/calls/" + id, "", 200},
		{"GET", "/v1/calls/api-1", "", 200},
		{"POST", "/v1/calls", goodCall, 403},
		{"DELETE", "/v1/calls/" + id, "", 403},
		{"POST", "/v1/calls/" + id + "/reanalyze", "", 403},
		{"POST", "/v1/calls/" + id + "/purge", "", 403},
		{"GET", "/metrics", "", 403},
	} {
		res := b.do(t, tc.method, tc.path, tc.body, b.viewer)
		require.Equal(t, tc.want, res.status, "viewer %s %s: %s", tc.method, tc.path, res.body)
	}
	// Nothing a viewer tried changed anything: the call is not deleted.
	doc := b.do(t, "GET", "/v1/calls/"+id, "", b.admin).json(t)
	require.Nil(t, doc["deleted_at"])
	require.Len(t, b.retention.deleted, 0)
}

func TestViewerDocumentHasNoTokens(t *testing.T) {
	b := setupRoles(t)
	admin := b.do(t, "GET", "/v1/calls/"+b.callID, "", b.admin).json(t)
	require.Contains(t, admin, "tokens")
	runs := admin["runs"].([]any)
	require.NotEmpty(t, runs)
	require.Contains(t, runs[0].(map[string]any), "tokens")
	require.Contains(t, runs[0].(map[string]any), "cost_usd")

	viewer := b.do(t, "GET", "/v1/calls/"+b.callID, "", b.viewer).json(t)
	require.NotContains(t, viewer, "tokens")
	require.NotContains(t, viewer, "cost")
	require.Equal(t, admin["call_id"], viewer["call_id"])
	require.Contains(t, viewer, "my_field", "the record's other keys stay")
	for _, r := range viewer["runs"].([]any) {
		run := r.(map[string]any)
		require.NotContains(t, run, "tokens")
		require.NotContains(t, run, "cost_usd")
		require.NotContains(t, run, "llm_requests")
		require.Contains(t, run, "status")
	}
}

func TestAdminTokensAndRevocation(t *testing.T) {
	b := setupRoles(t)
	ctx := context.Background()
	require.Equal(t, 200, b.do(t, "GET", "/metrics", "", b.admin).status)
	require.Equal(t, 200, b.do(t, "GET", "/metrics", "", testToken).status, "POSTCALL_API_TOKEN stays an admin token")
	require.Equal(t, 401, b.do(t, "GET", "/v1/calls", "", "pct_wrong").status)
	require.Equal(t, 401, b.do(t, "GET", "/v1/calls", "", "").status)

	_, err := b.access.RevokeToken(ctx, "qa")
	require.NoError(t, err)
	require.Equal(t, 401, b.do(t, "GET", "/v1/calls", "", b.viewer).status, "a revoked token is refused")
	require.Equal(t, 200, b.do(t, "GET", "/v1/calls", "", b.admin).status)

	tokens, err := b.access.Tokens(ctx)
	require.NoError(t, err)
	require.Len(t, tokens, 2)
	require.Equal(t, "ops", tokens[0].Name)
	require.NotNil(t, tokens[0].LastUsedAt, "ops was used")
	require.Nil(t, tokens[0].RevokedAt)
	require.Equal(t, "qa", tokens[1].Name)
	require.Nil(t, tokens[1].LastUsedAt, "qa was never let in")
	require.NotNil(t, tokens[1].RevokedAt)
}
