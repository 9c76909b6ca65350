package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis/openaitest"
	"github.com/postcall/postcall/internal/dbtest"
)

type testBundle struct {
	pool    *pgxpool.Pool
	environ []string
	dir     string
}

// setup gives a test a migrated schema of its own and the environment that
// points the commands at it.
func setup(t *testing.T) *testBundle {
	t.Helper()
	pool, schema := dbtest.Schema(t)
	sep := "?"
	if strings.Contains(dbtest.URL(), "?") {
		sep = "&"
	}
	b := &testBundle{
		pool: pool,
		// A small pool per command: many tests run workers side by side
		// against one PostgreSQL.
		environ: []string{"DATABASE_URL=" + dbtest.URL() + sep + "search_path=" + schema, "POSTCALL_LOG_LEVEL=warn", "POSTCALL_DB_MAX_CONNS=6"},
		dir:     t.TempDir(),
	}
	return b
}

// setupWithAgents is setup with testAgents applied.
func setupWithAgents(t *testing.T) (context.Context, *testBundle) {
	t.Helper()
	ctx := context.Background()
	b := setup(t)
	require.Zero(t, b.run(t, ctx, "", nil, "agents", "apply", b.file(t, "a.yaml", testAgents)).code)
	return ctx, b
}

type result struct {
	stdout, stderr string
	code           int
}

func (b *testBundle) run(t *testing.T, ctx context.Context, stdin string, extraEnv []string, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := run(ctx, args, &env{
		stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
		environ: append(append([]string{}, b.environ...), extraEnv...),
	})
	return result{stdout.String(), stderr.String(), code}
}

// startWorker runs `postcall worker` with extraEnv in the background.
// stop ends it as SIGTERM would and returns its result, failing the test
// when it does not stop within 30 s; it also runs when the test ends.
func (b *testBundle) startWorker(t *testing.T, extraEnv []string) (stop func() result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- b.run(t, ctx, "", extraEnv, "worker") }()
	var once sync.Once
	var res result
	stop = func() result {
		once.Do(func() {
			cancel()
			select {
			case res = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("worker did not stop")
			}
		})
		return res
	}
	t.Cleanup(func() { stop() })
	return stop
}

func (b *testBundle) file(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(b.dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// syncBuffer is a bytes.Buffer safe for the worker's concurrent logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

const testAgents = `
- id: sales
  analysis:
    prompt: "You review sales calls."
    fields:
      - {name: summary, type: string}
      - {name: outcome, type: enum, values: [agreed, declined]}
    summary_field: summary
    disposition_field: outcome
  qc:
    prompt: "Judge the agent."
    checklist:
      - {id: greeting, description: "Introduced itself"}
`

const goodCall = `{"call_id":"c-1","agent_id":"sales","ended_at":"2026-11-20T10:00:00Z","ended_reason":"customer-ended-call","phone_number":"+15550100001","duration":60,"transcript":[{"role":"agent","text":"Hello from ACME"},{"role":"user","text":"Hi, I want the demo"}],"tool_calls":[{"name":"x"}],"my_field":{"a":1}}`

func TestAgentsApplyAndList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	path := b.file(t, "agents.yaml", testAgents)

	res := b.run(t, ctx, "", nil, "agents", "apply", path)
	require.Equal(t, 0, res.code, res.stderr)
	require.Equal(t, "sales: created (plan version 1)\n", res.stdout)

	res = b.run(t, ctx, "", nil, "agents", "apply", path)
	require.Equal(t, "sales: unchanged (plan version 1)\n", res.stdout)

	res = b.run(t, ctx, "", nil, "agents", "apply", b.file(t, "v2.yaml", testAgents+"  model: gpt-4.1\n"))
	require.Equal(t, "sales: updated (plan version 2)\n", res.stdout)

	res = b.run(t, ctx, "", nil, "agents", "list")
	require.Equal(t, 0, res.code)
	require.Contains(t, res.stdout, "sales")
	require.Regexp(t, `sales\s+sales\s+2\s+0`, res.stdout)
}

func TestAgentsApplyBadFileChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	// The second agent is invalid: the first must not be stored either.
	bad := testAgents + `
- id: broken
  analysis:
    prompt: "x"
    fields: [{name: colour, type: colour}, {name: outcome, type: enum}]
`
	res := b.run(t, ctx, "", nil, "agents", "apply", b.file(t, "bad.yaml", bad))
	require.Equal(t, 1, res.code)
	// Every problem of the file, each with its agent and key.
	require.Contains(t, res.stderr, "bad.yaml: 2 problems:")
	require.Contains(t, res.stderr, `agent "broken": analysis.fields[0].type: "colour" must be string, number, integer, boolean, enum or date`)
	require.Contains(t, res.stderr, `agent "broken": analysis.fields[1].values: required for an enum (at least one value)`)

	res = b.run(t, ctx, "", nil, "agents", "list")
	require.Contains(t, res.stdout, "no agents yet")

	// Integration settings are checked before anything is stored too.
	badHook := testAgents + `
- id: hooked
  integrations: [{name: hook1, type: webhook}]
`
	res = b.run(t, ctx, "", nil, "agents", "apply", b.file(t, "hook.yaml", badHook))
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, `agent "hooked": integrations[hook1].url: required`)
	res = b.run(t, ctx, "", nil, "agents", "list")
	require.Contains(t, res.stdout, "no agents yet")
}

func TestIngestReportsBadLinesStoresGoodOnes(t *testing.T) {
	t.Parallel()
	ctx, b := setupWithAgents(t)

	input := strings.Join([]string{
		goodCall,
		`{"call_id": "c-2", "agent_id": "sales"`, // broken JSON
		``,                                       // blank lines are skipped
		`{"call_id":"c-3","agent_id":"sales","ended_at":"yesterday","ended_reason":"voicemail"}`,
		`{"call_id":"c-4","agent_id":"nobody","ended_at":"2026-11-20T10:00:00Z","status":"completed"}`,
		`{"call_id":"c-5","agent_id":"sales","ended_at":"2026-11-20T10:00:00Z","ended_reason":"voicemail"}`,
	}, "\n")
	res := b.run(t, ctx, input, nil, "ingest")
	require.Equal(t, 1, res.code, "a rejected line makes the exit status non-zero")
	require.Contains(t, res.stderr, "stdin line 2: rejected")
	require.Contains(t, res.stderr, "stdin line 4: rejected")
	require.Contains(t, res.stderr, "ended_at")
	require.Contains(t, res.stderr, "stdin line 5: rejected")
	require.Contains(t, res.stderr, `agent_id "nobody"`)
	require.Contains(t, res.stdout, "line 1: c-1 -> ")
	require.Contains(t, res.stdout, "line 6: c-5 -> ")
	require.Contains(t, res.stdout, "(auto disposition: voicemail)")
	require.Contains(t, res.stdout, "5 lines: 1 queued for analysis, 1 auto-disposed, 0 already ingested, 3 rejected")

	for _, id := range []string{"c-2", "c-3", "c-4"} {
		res := b.run(t, ctx, "", nil, "show", id)
		require.Equal(t, 1, res.code, id)
		require.Contains(t, res.stderr, "not found", "nothing of a rejected line is stored")
	}

	// Re-ingesting accepted lines duplicates nothing and exits 0.
	res = b.run(t, ctx, goodCall+"\n", nil, "ingest", "-")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "already ingested")
	var runs int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM analysis_runs`).Scan(&runs))
	require.Equal(t, 2, runs, "one analysis and one QC run, not four")
}

func TestShowJSONDocument(t *testing.T) {
	t.Parallel()
	ctx, b := setupWithAgents(t)
	require.Zero(t, b.run(t, ctx, goodCall, nil, "ingest", "-q").code)

	res := b.run(t, ctx, "", nil, "show", "c-1", "--json")
	require.Equal(t, 0, res.code, res.stderr)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &doc))
	for _, key := range []string{
		"id", "call_id", "agent_id", "direction", "status", "ended_reason", "ended_reason_label", "disconnected_by",
		"duration", "done", "general_success", "disposition", "disposition_source", "call_summary", "final_score",
		"analysis", "qc", "tokens", "cost", "integrations", "recording", "transcript", "phone_number", "contact_data",
		"function_output", "is_purged", "purged_at", "deleted_at", "created_at", "updated_at",
	} {
		require.Contains(t, doc, key)
	}
	require.Equal(t, "Customer ended call", doc["ended_reason_label"])
	require.Equal(t, "customer", doc["disconnected_by"])
	require.Equal(t, false, doc["done"])
	require.Equal(t, map[string]any{"a": float64(1)}, doc["my_field"], "unknown fields come back as sent")
	require.Equal(t, []any{map[string]any{"name": "x"}}, doc["tool_calls"])
	require.Nil(t, doc["recording"])

	// The id works as well as the call_id; an unknown one exits 1.
	res = b.run(t, ctx, "", nil, "show", doc["id"].(string))
	require.Equal(t, 0, res.code)
	require.Contains(t, res.stdout, "c-1")
	res = b.run(t, ctx, "", nil, "show", "nope", "--json")
	require.Equal(t, 1, res.code)
	require.Equal(t, "postcall show: not found\n", res.stderr)
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.run(t, context.Background(), "", []string{"POSTCALL_LLM_RPM=lots"}, "agents", "list")
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "POSTCALL_LLM_RPM")
}

func TestWorkerRefusesSchemaBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// An empty schema: nothing migrated yet.
	admin := dbtest.Pool(t)
	schema := fmt.Sprintf("pctest_empty_%d", time.Now().UnixNano())
	_, err := admin.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(dbtest.URL(), "?") {
		sep = "&"
	}
	// A small pool, as setup's: tests run side by side on one PostgreSQL.
	b := &testBundle{environ: []string{"DATABASE_URL=" + dbtest.URL() + sep + "search_path=" + schema, "POSTCALL_DB_MAX_CONNS=6"}}

	res := b.run(t, ctx, "", []string{"POSTCALL_HTTP_ADDR=127.0.0.1:0"}, "worker")
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "run `postcall migrate`")

	res = b.run(t, ctx, "", nil, "migrate")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "applied")
	res = b.run(t, ctx, "", nil, "migrate")
	require.Contains(t, res.stdout, "nothing to apply")
}

// TestWorkerEndToEnd runs the worker command against the fake OpenAI server,
// waits for a reanalysis through the CLI, then stops the worker as SIGTERM
// would.
func TestWorkerEndToEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	llm := openaitest.NewServer(t)
	llmEnv := []string{"OPENAI_BASE_URL=" + llm.URL, "OPENAI_API_KEY=" + llm.APIKey, "POSTCALL_HTTP_ADDR=127.0.0.1:0", "POSTCALL_LOG_LEVEL=info"}
	ctx := context.Background()
	require.Zero(t, b.run(t, ctx, "", nil, "agents", "apply", b.file(t, "a.yaml", testAgents)).code)
	require.Zero(t, b.run(t, ctx, goodCall, nil, "ingest").code)

	stopWorker := b.startWorker(t, llmEnv)

	res := b.run(t, ctx, "", llmEnv, "reanalyze", "c-1", "--kind", "qc", "--wait", "--timeout", "30s")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "c-1: enqueued 1 run at high priority")
	require.Contains(t, res.stdout, "state            done")
	require.Contains(t, res.stdout, "final_score")

	show := b.run(t, ctx, "", nil, "show", "c-1", "--json")
	var doc struct {
		Done   bool `json:"done"`
		Tokens struct {
			Prompt int `json:"prompt"`
		} `json:"tokens"`
		Runs []struct {
			Kind    string `json:"kind"`
			Trigger string `json:"trigger"`
		} `json:"runs"`
	}
	require.NoError(t, json.Unmarshal([]byte(show.stdout), &doc))
	require.True(t, doc.Done)
	require.Positive(t, doc.Tokens.Prompt)
	require.Len(t, doc.Runs, 3, "analysis + QC from ingest, QC again from reanalyze")

	res = stopWorker()
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "worker stopped")
	require.NotContains(t, res.stderr, "+15550100001", "no phone numbers in logs")
	require.NotContains(t, res.stderr, "I want the demo", "no transcript text in logs")
}

// TestIngestSkipsALineTooLongAndGoesOn: a line over 64 MiB stopped ingest
// (exit 1, no summary, the good lines after it never stored); it is
// reported, skipped, and the next lines go in. A UTF-8 byte order mark on
// the first line is not part of the record.
func TestIngestSkipsALineTooLongAndGoesOn(t *testing.T) {
	t.Parallel()
	ctx, b := setupWithAgents(t)
	long := `{"call_id": "` + strings.Repeat("x", maxLineBytes) + `"}`
	input := "\xEF\xBB\xBF" + goodCall + "\n" + long + "\n" + strings.Replace(goodCall, "c-1", "c-after", 1) + "\n"
	res := b.run(t, ctx, input, nil, "ingest", "-q")
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "stdin line 2: rejected: longer than 64 MiB (skipped)")
	require.Contains(t, res.stdout, "3 lines: 2 queued for analysis, 0 auto-disposed, 0 already ingested, 1 rejected")
	for _, id := range []string{"c-1", "c-after"} {
		require.Zero(t, b.run(t, ctx, "", nil, "show", id).code, id)
	}
}

// TestShowEscapesTerminalControls: show printed status and ended_reason
// verbatim, so a record could write an OSC 52 sequence (set the
// clipboard) into the operator's terminal; every control character is
// escaped now, in show, in errors, everywhere but the worker's logs (which
// slog escapes). A reference holding invalid UTF-8 is not found (it printed
// the SQL error).
func TestShowEscapesTerminalControls(t *testing.T) {
	t.Parallel()
	ctx, b := setupWithAgents(t)
	hostile := strings.Replace(goodCall, `"ended_reason":"customer-ended-call"`,
		`"ended_reason":"x\u001b[2J","status":"completed\u001b]52;c;SGVsbG8=\u0007"`, 1)
	res := b.run(t, ctx, hostile, nil, "ingest", "-q")
	require.Equal(t, 0, res.code, res.stderr)

	for _, args := range [][]string{{"show", "c-1"}, {"show", "c-1", "--json"}, {"show", "\x1b]52;c;x\x07"}} {
		res = b.run(t, ctx, "", nil, args...)
		for _, out := range []string{res.stdout, res.stderr} {
			require.NotContains(t, out, "\x1b", args)
			require.NotContains(t, out, "\x07", args)
		}
	}
	res = b.run(t, ctx, "", nil, "show", "c-1")
	require.Contains(t, res.stdout, `completed\u001b]52;c;SGVsbG8=\u0007`)
	res = b.run(t, ctx, "", nil, "show", "c-1", "--json")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &doc), "--json output stays JSON")
	require.Equal(t, "completed\x1b]52;c;SGVsbG8=\x07", doc["status"])

	res = b.run(t, ctx, "", nil, "show", "\xff")
	require.Equal(t, 1, res.code)
	require.Equal(t, "postcall show: not found\n", res.stderr)
}

// TestReanalyzeWaitFailsWhenTheRunFails: reanalyze --wait exited 0 when the
// run it waited for failed; it exits 1 and says which run failed and why.
func TestReanalyzeWaitFailsWhenTheRunFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	llm := openaitest.NewServer(t, openaitest.WithDefault(openaitest.InvalidJSON()))
	llmEnv := []string{"OPENAI_BASE_URL=" + llm.URL, "OPENAI_API_KEY=" + llm.APIKey, "POSTCALL_HTTP_ADDR=127.0.0.1:0"}
	ctx := context.Background()
	require.Zero(t, b.run(t, ctx, "", nil, "agents", "apply", b.file(t, "a.yaml", testAgents)).code)
	require.Zero(t, b.run(t, ctx, goodCall, nil, "ingest").code)
	b.startWorker(t, llmEnv)

	res := b.run(t, ctx, "", llmEnv, "reanalyze", "c-1", "--kind", "qc", "--wait", "--timeout", "30s")
	require.Equal(t, 1, res.code, res.stdout)
	require.Contains(t, res.stderr, "c-1: finished, but a run failed: ")
	require.Contains(t, res.stderr, "qc: qc request for call c-1: invalid qc output after repair")
}

// TestAgentsApplyWarnsAboutPrivateTargets: an integration URL deliveries
// can never reach (a private address while POSTCALL_ALLOW_PRIVATE_TARGETS is
// off) was accepted silently; the plan is still stored (it is right on a
// worker that allows private targets), with a warning naming the
// integration, and no warning when private targets are allowed.
func TestAgentsApplyWarnsAboutPrivateTargets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	plan := testAgents + `  integrations:
    - {name: internal, type: webhook, url: "http://10.1.2.3/hook", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    - {name: local, type: webhook, url: "http://localhost:9000/hook", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    - {name: public, type: webhook, url: "https://93.184.215.14/hook", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`
	res := b.run(t, ctx, "", nil, "agents", "apply", b.file(t, "a.yaml", plan))
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "sales: created")
	require.Contains(t, res.stderr, `agent "sales": integrations[internal]: http://10.1.2.3 resolves only to addresses deliveries refuse`)
	require.Contains(t, res.stderr, `integrations[local]: http://localhost:9000`)
	require.NotContains(t, res.stderr, "integrations[public]")
	require.NotContains(t, res.stderr, "/hook", "never the URL's path (it may hold a token)")

	res = b.run(t, ctx, "", []string{"POSTCALL_ALLOW_PRIVATE_TARGETS=1"}, "agents", "apply", b.file(t, "a.yaml", plan))
	require.Equal(t, 0, res.code, res.stderr)
	require.NotContains(t, res.stderr, "warning")
}

// TestInvalidUTF8ArgumentsAreUsageErrors: bytes PostgreSQL's text refuses
// printed its error; they are usage errors, or not found for a CALL.
func TestInvalidUTF8ArgumentsAreUsageErrors(t *testing.T) {
	t.Parallel()
	ctx, b := setupWithAgents(t)
	for _, args := range [][]string{
		{"hold", "set", "--agent", "sales", "--reason", "case \xff"},
		{"hold", "set", "--agent", "\xff"},
		{"reanalyze", "--agent", "\xff"},
	} {
		res := b.run(t, ctx, "", nil, args...)
		require.Equal(t, 2, res.code, "%q: %s", args, res.stderr)
		require.Contains(t, res.stderr, "is not valid UTF-8 text", "%q", args)
		require.NotContains(t, res.stderr, "SQLSTATE", "%q", args)
	}
	for _, args := range [][]string{{"delete", "\xff"}, {"purge", "--call", "\xff"}, {"reanalyze", "\xff"}, {"hold", "set", "--call", "\xff"}} {
		res := b.run(t, ctx, "", nil, args...)
		require.NotZero(t, res.code, "%q", args)
		require.Contains(t, res.stderr, "not found", "%q", args)
		require.NotContains(t, res.stderr, "SQLSTATE", "%q", args)
	}
}
