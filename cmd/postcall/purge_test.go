package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postcall/postcall/recording/s3test"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/internal/dbtest"
)

// retentionCLI runs commands against a schema of its own and a fake bucket.
type retentionCLI struct {
	environ []string
	dir     string
	s3      *s3test.Server
}

type cliResult struct {
	stdout, stderr string
	code           int
}

func setupRetentionCLI(t *testing.T) *retentionCLI {
	t.Helper()
	_, schema := dbtest.Schema(t)
	srv := s3test.NewServer(t, s3test.Options{AccessKey: "AKIDCLI", SecretKey: "cli-secret-key"})
	sep := "?"
	if strings.Contains(dbtest.URL(), "?") {
		sep = "&"
	}
	return &retentionCLI{
		// A small pool per command: tests run side by side against one
		// PostgreSQL. The pause is the default, spelled out because the
		// tests time nothing but must not wait on a pause.
		environ: append(srv.Env(),
			"DATABASE_URL="+dbtest.URL()+sep+"search_path="+schema, "POSTCALL_LOG_LEVEL=warn",
			"POSTCALL_RETENTION_PAUSE=0s", "POSTCALL_DB_MAX_CONNS=6",
		),
		dir: t.TempDir(),
		s3:  srv,
	}
}

func (c *retentionCLI) run(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &env{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr, environ: c.environ})
	return cliResult{stdout.String(), stderr.String(), code}
}

func (c *retentionCLI) ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	res := c.run(t, stdin, args...)
	require.Equal(t, 0, res.code, "%v: %s%s", args, res.stdout, res.stderr)
	return res.stdout
}

func (c *retentionCLI) exists(t *testing.T, key string) bool { return c.s3.Exists(t, key) }

// TestRetentionCommands drives delete, restore, hold, purge (dry run,
// policy, erasure by call and by phone) and audit, as an operator would.
func TestRetentionCommands(t *testing.T) {
	t.Parallel()
	c := setupRetentionCLI(t)
	agents := filepath.Join(c.dir, "agents.yaml")
	require.NoError(t, os.WriteFile(agents, []byte(`
id: ret
retention: {purge_after_days: 1, hard_delete_after_days: 0}
`), 0o600))
	c.ok(t, "", "agents", "apply", agents)
	old := time.Now().Add(-72 * time.Hour).UTC().Format(time.RFC3339)
	fresh := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	var lines []string
	for _, r := range []struct{ id, ended, phone string }{
		{"r-old", old, "+15550123001"}, {"r-fresh", fresh, "+15550123002"},
		{"r-held", old, "+15550123003"}, {"r-gone", fresh, "+15550123004"},
	} {
		key := "rec/" + r.id + ".wav"
		c.s3.Put(t, key, "audio")
		lines = append(lines, fmt.Sprintf(`{"call_id":%q,"agent_id":"ret","ended_at":%q,"ended_reason":"voicemail",`+
			`"phone_number":%q,"customer_name":"Pat Doe","recording_key":%q,"transcript":[{"role":"user","text":"secret words"}]}`,
			r.id, r.ended, r.phone, key))
	}
	c.ok(t, strings.Join(lines, "\n")+"\n", "ingest", "-q")

	require.Contains(t, c.ok(t, "", "hold", "set", "--call", "r-held", "--reason", "case 2026-114"), "on legal hold")
	require.Contains(t, c.ok(t, "", "hold", "list"), "case 2026-114")
	require.Contains(t, c.ok(t, "", "delete", "r-gone"), "deleted r-gone")
	require.Contains(t, c.ok(t, "", "delete", "r-gone"), "was already deleted")
	res := c.run(t, "", "restore", "r-gone")
	require.Equal(t, 1, res.code, "hard_delete_after_days 0: no window to restore in")
	require.Contains(t, res.stderr, "past its retention window")
	res = c.run(t, "", "restore", "nope")
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "not found")

	dry := c.ok(t, "", "purge", "--dry-run")
	require.Contains(t, dry, "purge (dry run: nothing changed), run 1: 1 call would be purged, 1 call on legal hold skipped")
	require.Contains(t, dry, "hard delete (dry run: nothing changed), run 2: 1 call would be hard-deleted")
	require.True(t, c.exists(t, "rec/r-old.wav"))

	out := c.ok(t, "", "purge")
	require.Contains(t, out, "purge, run 3: 1 call purged, 1 call on legal hold skipped, 1 recording object queued for deletion")
	require.Contains(t, out, "ret  after 1 days (plan)")
	require.Contains(t, out, "hard delete, run 4: 1 call hard-deleted")
	require.Contains(t, out, "recordings: 2 objects deleted from bucket recordings")
	require.False(t, c.exists(t, "rec/r-old.wav"))
	require.False(t, c.exists(t, "rec/r-gone.wav"))
	require.True(t, c.exists(t, "rec/r-held.wav"))

	res = c.run(t, "", "show", "r-gone")
	require.Equal(t, 1, res.code, "a hard-deleted call is not found")
	require.Contains(t, res.stderr, "not found")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok(t, "", "show", "r-old", "--json")), &doc))
	for _, k := range []string{"transcript", "phone_number", "customer_name", "recording"} {
		require.Nil(t, doc[k], k)
	}
	require.Equal(t, true, doc["is_purged"])
	require.Equal(t, "voicemail", doc["disposition"])

	require.Contains(t, c.ok(t, "", "purge"), "purge, run 5: 0 calls purged, 1 call on legal hold skipped")

	res = c.run(t, "", "purge", "--call", "r-held")
	require.Equal(t, 1, res.code, "a hold wins over an erasure request, and the command says so")
	require.Contains(t, res.stdout, "1 call on legal hold kept")
	require.Contains(t, res.stderr, "legal hold not erased")
	res = c.run(t, "", "purge", "--call", "nope")
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "not found")
	require.Contains(t, c.ok(t, "", "purge", "--phone", "+1 555 012 3002"), "erasure request, run 8 (phone number): 1 call purged")
	require.False(t, c.exists(t, "rec/r-fresh.wav"))
	res = c.run(t, "", "purge", "--phone", "call me")
	require.Equal(t, 2, res.code)

	audit := c.ok(t, "", "audit")
	require.Contains(t, audit, "erasure")
	require.Contains(t, audit, "recording deletion outbox: empty")
	gone := c.ok(t, "", "audit", "--call", "r-gone")
	require.Contains(t, gone, "no longer stored (hard-deleted)")
	require.Contains(t, gone, "soft_delete")
	require.Contains(t, gone, "hard_delete")
	run3 := c.ok(t, "", "audit", "--run", "3")
	require.Contains(t, run3, `"after_days": 1`)
	require.Contains(t, run3, "transcript, phone_number, customer_name, recording")
	require.NotContains(t, run3+audit+gone, "Pat Doe")
	require.NotContains(t, run3+audit+gone, "5550123")

	require.Contains(t, c.ok(t, "", "hold", "clear", "--call", "r-held"), "legal hold cleared")
	require.Contains(t, c.ok(t, "", "purge", "--call", "r-held"), "1 call purged")
	require.Contains(t, c.ok(t, "", "hold", "list"), "no legal holds")
	res = c.run(t, "", "hold", "set")
	require.Equal(t, 2, res.code)
}
