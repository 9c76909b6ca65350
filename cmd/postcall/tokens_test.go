package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTokensCommand(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	created := b.run(t, ctx, "", nil, "tokens", "create", "--name", "qa", "--role", "viewer")
	require.Equal(t, 0, created.code, created.stderr)
	secret := strings.TrimSpace(created.stdout)
	require.True(t, strings.HasPrefix(secret, "pct_"), "stdout holds the token alone: %q", created.stdout)
	require.NotContains(t, created.stdout, "\n"+secret, "printed once")
	require.Contains(t, created.stderr, "shown only this once")

	dup := b.run(t, ctx, "", nil, "tokens", "create", "--name", "qa", "--role", "admin")
	require.Equal(t, 1, dup.code)
	require.Contains(t, dup.stderr, "exists")

	bad := b.run(t, ctx, "", nil, "tokens", "create", "--role", "owner")
	require.Equal(t, 2, bad.code)
	require.Contains(t, bad.stderr, "--name is required")
	require.Contains(t, bad.stderr, "want admin or viewer", "every problem at once")

	list := b.run(t, ctx, "", nil, "tokens", "list")
	require.Equal(t, 0, list.code, list.stderr)
	require.Contains(t, list.stdout, "qa")
	require.Contains(t, list.stdout, "viewer")
	require.NotContains(t, list.stdout, secret, "never a token")

	revoked := b.run(t, ctx, "", nil, "tokens", "revoke", "qa")
	require.Equal(t, 0, revoked.code, revoked.stderr)
	require.Contains(t, revoked.stdout, "revoked qa; 0 console sessions ended")
	again := b.run(t, ctx, "", nil, "tokens", "revoke", "qa")
	require.Equal(t, 1, again.code)
	require.Contains(t, again.stderr, "no active token")
}
