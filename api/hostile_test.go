package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadBytesInReferencesAndParameters: NUL or invalid UTF-8 in a path id
// or a list parameter was a 500 with an ERROR log line (PostgreSQL refused
// the bytes); search=%00 was stripped to an empty search and listed every
// call. A path id is simply not found; a parameter is a 400 naming it.
func TestBadBytesInReferencesAndParameters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, "POST", "/v1/calls", goodCall, testToken)
	for _, path := range []string{"/v1/calls/%00", "/v1/calls/%FF", "/v1/calls/a%00b"} {
		res := b.get(t, path)
		require.Equal(t, http.StatusNotFound, res.status, "%s: %s", path, res.body)
		for _, method := range []string{"DELETE"} {
			res := b.do(t, method, path, "", testToken)
			require.Equal(t, http.StatusNotFound, res.status, "%s %s: %s", method, path, res.body)
		}
		res = b.do(t, "POST", path+"/reanalyze", "", testToken)
		require.Equal(t, http.StatusNotFound, res.status, "reanalyze %s: %s", path, res.body)
	}
	for _, q := range []string{"phone_number=%00", "agent_id=%00", "search=%00", "search=%FF", "agent_id=x%00y", "cursor=%00"} {
		res := b.get(t, "/v1/calls?"+q)
		require.Equal(t, http.StatusBadRequest, res.status, "%s: %s", q, res.body)
		require.Contains(t, string(res.body), strings.SplitN(q, "=", 2)[0], q)
	}
}

// TestCallIDEqualToAnotherCallsID: a record whose call_id is another call's
// postcall id is refused (400 naming call_id); a UUID reference always
// names the call with that id first (postcall's id wins).
func TestCallIDEqualToAnotherCallsID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.do(t, "POST", "/v1/calls", goodCall, testToken).json(t)
	id := first["id"].(string)

	res := b.do(t, "POST", "/v1/calls", strings.Replace(goodCall, `"api-1"`, `"`+id+`"`, 1), testToken)
	require.Equal(t, http.StatusBadRequest, res.status, "%s", res.body)
	require.Contains(t, string(res.body), `"field":"call_id"`)

	// A call_id that is a UUID no call has is fine, and found by it.
	other := "0190f0c2-1b7e-7e3a-9d5e-3c1f2a4b5c6d"
	res = b.do(t, "POST", "/v1/calls", strings.Replace(goodCall, `"api-1"`, `"`+other+`"`, 1), testToken)
	require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
	require.Equal(t, other, b.get(t, "/v1/calls/"+other).json(t)["call_id"])
	require.Equal(t, "api-1", b.get(t, "/v1/calls/"+id).json(t)["call_id"])
}

// TestCreateCallRefusesWhatPostgreSQLCannotStore: a lone UTF-16 surrogate
// in an unknown key made PostgreSQL fail (22P02) and the API answer 500; a
// duplicate key was accepted with the last value. Both are 400s naming the
// field, and nothing is stored.
func TestCreateCallRefusesWhatPostgreSQLCannotStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for body, field := range map[string]string{
		strings.Replace(goodCall, `{`, `{"x": "\udfff", `, 1):                            `"field":"x"`,
		strings.Replace(goodCall, `{`, `{"contact_data": {"a": ["\ud800"]}, `, 1):        `"field":"contact_data.a[0]"`,
		strings.Replace(goodCall, `"call_id":"api-1"`, `"call_id":"A","call_id":"B"`, 1): `"field":"call_id"`,
	} {
		res := b.do(t, "POST", "/v1/calls", body, testToken)
		require.Equal(t, http.StatusBadRequest, res.status, "%s", res.body)
		require.Contains(t, string(res.body), field)
	}
	ids, _ := b.list(t, "include_deleted=true")
	require.Empty(t, ids)
}
