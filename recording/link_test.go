package recording_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/recording"
)

func TestLinks(t *testing.T) {
	t.Parallel()
	links, err := recording.NewLinks("https://postcall.example.com/", strings.Repeat("s", 32))
	require.NoError(t, err)

	link := links.Link("0193a7c2-0000-7000-8000-000000000001")
	u, err := url.Parse(link)
	require.NoError(t, err)
	require.Equal(t, "/r/0193a7c2-0000-7000-8000-000000000001", u.Path)
	sig := u.Query().Get("sig")
	require.True(t, links.Valid("0193a7c2-0000-7000-8000-000000000001", sig))
	require.False(t, links.Valid("0193a7c2-0000-7000-8000-000000000002", sig), "a signature is bound to its call")
	require.False(t, links.Valid("0193a7c2-0000-7000-8000-000000000001", sig[:len(sig)-1]+"x"))

	other, err := recording.NewLinks("https://postcall.example.com", strings.Repeat("t", 32))
	require.NoError(t, err)
	require.False(t, other.Valid("0193a7c2-0000-7000-8000-000000000001", sig), "rotating the secret revokes links")

	_, err = recording.NewLinks("postcall.example.com", strings.Repeat("s", 32))
	require.ErrorContains(t, err, "POSTCALL_PUBLIC_URL")
	_, err = recording.NewLinks("https://postcall.example.com", "short")
	require.ErrorContains(t, err, "POSTCALL_LINK_SECRET")
}
