package analysis

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRewriteSplicesFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ex   exchange
		body string
		want map[string]any
	}{
		{
			name: "all fields",
			ex:   exchange{temperatureZero: true, cacheKey: "postcall-k", cacheRetention: "24h"},
			body: `{"model":"m","messages":[]}`,
			want: map[string]any{"model": "m", "messages": []any{}, "temperature": 0.0, "prompt_cache_key": "postcall-k", "prompt_cache_retention": "24h"},
		},
		{
			name: "only the key",
			ex:   exchange{cacheKey: `quote"and\backslash`},
			body: " {\n\"model\":\"m\"}",
			want: map[string]any{"model": "m", "prompt_cache_key": `quote"and\backslash`},
		},
		{
			name: "empty object",
			ex:   exchange{temperatureZero: true},
			body: `{ }`,
			want: map[string]any{"temperature": 0.0},
		},
		{
			name: "nothing to add",
			body: `{"model":"m"}`,
			want: map[string]any{"model": "m"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := tc.ex.rewrite([]byte(tc.body))
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(out, &got), "rewritten body %s", out)
			require.Equal(t, tc.want, got)
		})
	}

	_, err := (&exchange{cacheKey: "k"}).rewrite([]byte(`["not", "an", "object"]`))
	require.ErrorContains(t, err, "not a JSON object")
}

// TestDefaultClientReusesConnections sends rounds of requests as wide as the
// concurrency cap: the default client must keep that many idle connections
// to the endpoint instead of net/http's 2 per host, or every round would
// dial (and, against a real provider, handshake TLS) again.
func TestDefaultClientReusesConnections(t *testing.T) {
	t.Parallel()
	const width, rounds = 8, 5
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,` +
			`"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],` +
			`"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL + "/v1", RPM: -1, TPM: -1, Concurrency: width})
	require.NoError(t, err)
	for range rounds {
		var wg sync.WaitGroup
		for range width {
			wg.Go(func() {
				_, err := c.Complete(context.Background(), Request{Model: "m", Messages: []Message{{Role: RoleUser, Content: "Say ok."}}})
				require.NoError(t, err)
			})
		}
		wg.Wait()
	}
	// With net/http's 2 idle connections per host every round after the
	// first would dial 6 more (32 in all). A loaded machine can have a
	// request of the next round start a moment before a finished one's
	// connection is back in the pool, so a few extra dials are tolerated.
	require.LessOrEqual(t, dials.Load(), int64(width+width/2), "connections opened for %d rounds of %d requests", rounds, width)
}
