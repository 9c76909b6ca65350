package call

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestExampleCalls keeps examples/calls.jsonl what `make run` and the README
// promise: every line a valid record, one call with every panel of the call
// page, and each kind of transfer banner.
func TestExampleCalls(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../examples/calls.jsonl")
	require.NoError(t, err)
	defer f.Close()
	calls := map[string]*Record{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		r, err := ParseRecord(sc.Bytes())
		require.NoError(t, err, "line %d", n)
		require.NotContains(t, calls, r.CallID, "line %d: call_id given twice", n)
		calls[r.CallID] = r
	}
	require.NoError(t, sc.Err())

	rich := calls["demo-0001"]
	require.NotNil(t, rich)
	require.NotEmpty(t, rich.Carrier)
	require.NotEmpty(t, rich.DID)
	require.NotEmpty(t, rich.Transcript)
	require.NotEmpty(t, rich.RecordingKey)
	for _, k := range []string{"turn_metrics", "tool_calls", "knowledge_retrievals", "service_errors", "events"} {
		require.Contains(t, rich.Extra, k, "demo-0001 fills the %s panel", k)
	}

	type transfer struct {
		Status     string `json:"status"`
		Target     string `json:"target"`
		Reason     string `json:"reason"`
		ToHuman    bool   `json:"to_human"`
		FromCallID string `json:"from_call_id"`
	}
	seen := map[string]bool{}
	for id, r := range calls {
		raw, ok := r.Extra["transfer"]
		if !ok {
			continue
		}
		var tr transfer
		require.NoError(t, json.Unmarshal(raw, &tr), id)
		switch {
		case tr.FromCallID != "":
			require.Contains(t, calls, tr.FromCallID, "%s: the bot call it came from is an example too", id)
			seen["from bot call"] = true
		case tr.Status == "failed":
			require.NotEmpty(t, tr.Reason, id)
			seen["failed"] = true
		case tr.Status == "transferred" && tr.ToHuman:
			seen["to human"] = true
		case tr.Status == "transferred":
			require.NotEmpty(t, tr.Target, id)
			seen["to target"] = true
		default:
			t.Errorf("%s: transfer %s is none of the banners", id, raw)
		}
	}
	require.Equal(t, map[string]bool{"from bot call": true, "failed": true, "to human": true, "to target": true}, seen)

	for _, id := range []string{"demo-0002", "demo-0003", "demo-0007"} { // voicemail, no answer, a short call
		require.Contains(t, calls, id, "the README shows it")
	}
}
