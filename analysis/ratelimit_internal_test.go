package analysis

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseResetDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"1s": time.Second, "6m0s": 6 * time.Minute, "20ms": 20 * time.Millisecond, "1h2m3.5s": time.Hour + 2*time.Minute + 3500*time.Millisecond,
		"17.28s": 17280 * time.Millisecond, "0s": 0, "2": 2 * time.Second, "0.5": 500 * time.Millisecond,
	} {
		got, ok := parseResetDuration(in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "soon", "-1s", "-3"} {
		_, ok := parseResetDuration(in)
		require.False(t, ok, in)
	}
}

func TestReadProviderLimit(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("x-ratelimit-limit-tokens", "200000")
	h.Set("x-ratelimit-remaining-tokens", "159976")
	h.Set("x-ratelimit-reset-tokens", "9ms")
	h.Set("x-ratelimit-limit-requests", "-1") // Azure's "unknown"
	h.Set("x-ratelimit-remaining-requests", "abc")
	tok := readProviderLimit(h, "tokens")
	require.Equal(t, providerLimit{limit: 200000, remaining: 159976, reset: 9 * time.Millisecond,
		hasLimit: true, hasRemaining: true, hasReset: true}, tok)
	require.Equal(t, providerLimit{}, readProviderLimit(h, "requests"))
	require.Equal(t, providerLimit{}, readProviderLimit(nil, "tokens"))
}
