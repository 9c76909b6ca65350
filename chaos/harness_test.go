package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/internal/dbtest"
)

// postcallBin is the binary under test, built once by TestMain.
var postcallBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "postcall-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: temp dir:", err)
		os.Exit(1)
	}
	postcallBin = filepath.Join(dir, "postcall")
	goTool, err := exec.LookPath("go")
	if err == nil {
		build := exec.Command(goTool, "build", "-o", postcallBin, "github.com/postcall/postcall/cmd/postcall")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		err = build.Run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: build postcall:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// agentID is the test agent; its calls are "chaos-NNNNN".
const agentID = "chaos"

// Integrations of the test agent: two Standard Webhooks receivers.
var integrations = []string{"hook-a", "hook-b"}

// secrets are values that must never appear in a log.
type secrets struct {
	APIKey, APIToken, LinkSecret, AWSAccessKey, AWSSecret, HeaderValue string
	Webhook                                                            map[string]string
}

func newSecrets() secrets {
	s := secrets{
		APIKey:       "sk-chaos-" + randHex(16),
		APIToken:     "tok-chaos-" + randHex(16),
		LinkSecret:   "link-chaos-" + randHex(20),
		AWSAccessKey: "AKIACHAOS" + strings.ToUpper(randHex(6)),
		AWSSecret:    "awssecret-chaos-" + randHex(16),
		HeaderValue:  "Bearer hdr-chaos-" + randHex(12),
		Webhook:      map[string]string{},
	}
	for _, name := range integrations {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		s.Webhook[name] = "whsec_" + base64.StdEncoding.EncodeToString(key)
	}
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randDuration is a uniformly random duration in [lo, hi].
func randDuration(lo, hi time.Duration) time.Duration {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(hi-lo)+1))
	return lo + time.Duration(n.Int64())
}

// setupOpts configures a test bundle.
type setupOpts struct {
	// DatabaseURL is a database the test owns (created and migrated by
	// `postcall migrate`); empty: a fresh schema of the shared test
	// database (dbtest.Schema).
	DatabaseURL string
	// ModelDelay is the fake model's answer delay; nil: none.
	ModelDelay func() time.Duration
	// ModelProxy puts a switchable TCP proxy between the workers and the
	// fake model (bundle.proxy).
	ModelProxy bool
	// Env is added to every child process's environment.
	Env []string
}

type testBundle struct {
	pool    *pgxpool.Pool
	dbURL   string
	dir     string
	model   *fakeModel
	proxy   *switchProxy
	hooks   *receiver
	secrets secrets
	env     []string

	mu      sync.Mutex
	nextIdx int
	calls   []testCall
	logs    []string // every child's combined output
	workers []*workerProc
}

// setup gives a test its database, fake model and webhook receivers, the
// environment that points child processes at them, and the test agent. At
// cleanup, after every worker has stopped, it asserts that no log of the
// test carries a secret or personal data.
func setup(t *testing.T, opts setupOpts) *testBundle {
	t.Helper()
	b := &testBundle{dir: t.TempDir(), secrets: newSecrets()}
	if keep := os.Getenv("CHAOS_KEEP_LOGS"); keep != "" {
		// Debugging: keep the logs after the test.
		b.dir = filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
		require.NoError(t, os.MkdirAll(b.dir, 0o700))
	}
	if opts.DatabaseURL == "" {
		pool, schema := dbtest.Schema(t)
		sep := "?"
		if strings.Contains(dbtest.URL(), "?") {
			sep = "&"
		}
		b.pool, b.dbURL = pool, dbtest.URL()+sep+"search_path="+schema
	} else {
		b.dbURL = opts.DatabaseURL
	}
	b.model = newFakeModel(t, b.secrets.APIKey, opts.ModelDelay)
	modelURL := b.model.URL
	if opts.ModelProxy {
		b.proxy = newSwitchProxy(t, strings.TrimPrefix(strings.TrimSuffix(b.model.URL, "/v1"), "http://"))
		modelURL = "http://" + b.proxy.addr + "/v1"
	}
	b.hooks = newReceiver(t, b.secrets.Webhook)
	b.env = append([]string{
		"DATABASE_URL=" + b.dbURL,
		"OPENAI_BASE_URL=" + modelURL,
		"OPENAI_API_KEY=" + b.secrets.APIKey,
		"POSTCALL_API_TOKEN=" + b.secrets.APIToken,
		"POSTCALL_ALLOW_PRIVATE_TARGETS=1",
		"POSTCALL_HTTP_ADDR=127.0.0.1:0",
		"POSTCALL_LOG_FORMAT=json",
		"POSTCALL_LOG_LEVEL=info",
		// The client-side limits are per process and sized for OpenAI's
		// tier 1; the fake model has none.
		"POSTCALL_LLM_RPM=1000000",
		"POSTCALL_LLM_TPM=2000000000",
		// Not needed to pass: workers still running at a test's end are
		// stopped with SIGTERM, and a worker draining a slow model's
		// requests for 5 s instead of 30 keeps the cleanup short. No test
		// relies on the drain's length.
		"POSTCALL_SHUTDOWN_TIMEOUT=5s",
		// Several workers run side by side with the rest of the suite on
		// one PostgreSQL (max_connections 100): keep each pool small.
		"POSTCALL_DB_MAX_CONNS=10",
		"HOME=" + b.dir,
		"AWS_EC2_METADATA_DISABLED=true",
	}, opts.Env...)

	t.Cleanup(func() {
		// Workers register their own cleanups later, so they have stopped.
		b.requireCleanLogs(t)
	})
	if opts.DatabaseURL != "" {
		b.cliOK(t, "", "migrate")
		pool, err := pgxpool.New(context.Background(), b.dbURL)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		b.pool = pool
	}
	b.applyAgent(t, "")
	return b
}

// applyAgent stores the test agent's plan: analysis, QC and one webhook per
// integration; extra is appended to the agent's YAML.
func (b *testBundle) applyAgent(t *testing.T, extra string) {
	t.Helper()
	var hooks strings.Builder
	for _, name := range integrations {
		fmt.Fprintf(&hooks, "    - {name: %s, type: webhook, url: %q, secret: %q", name, b.hooks.URL(name), b.secrets.Webhook[name])
		if name == "hook-b" {
			// Personal data in the payload and a secret header: neither
			// may reach a log.
			fmt.Fprintf(&hooks, ", include_contact: true, headers: {Authorization: %q}", b.secrets.HeaderValue)
		}
		hooks.WriteString("}\n")
	}
	yaml := `- id: ` + agentID + `
  analysis:
    prompt: "You review renewal calls for ACME."
    fields:
      - {name: summary, type: string}
      - {name: outcome, type: enum, values: [agreed, declined, callback]}
      - {name: success, type: boolean}
      - {name: email, type: string, pii: true}
    summary_field: summary
    disposition_field: outcome
    success_field: success
  qc:
    prompt: "Judge the agent."
    checklist:
      - {id: greeting, description: "Introduced itself", weight: 1}
      - {id: close, description: "Closed the call politely", weight: 1}
  cache: {enabled: true}
  integrations:
` + hooks.String() + extra
	path := filepath.Join(b.dir, "agents.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	b.cliOK(t, "", "agents", "apply", path)
}

// testCall is one generated call record.
type testCall struct {
	Index  int
	CallID string
	// Phone is the number as sent; half are E.164, half formatted.
	Phone string
	// Auto calls reached voicemail: an auto disposition, no model run.
	Auto bool
}

// Personal data of the generated calls, searched for in the logs.
const (
	customerSurname = "Quimby"
	agentLine       = "Hello, this is Ava from ACME calling about your renewal."
	closingLine     = "Thank you, the quote is on its way. Goodbye!"
)

func userLine(i int) string {
	return fmt.Sprintf("My order number is N-%05d and I live at %d Elm Street, please send the quote there.", i, 100+i)
}

// record returns the call's JSON record.
func (c testCall) record() map[string]any {
	ended := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	rec := map[string]any{
		"call_id": c.CallID, "agent_id": agentID, "direction": "outbound",
		"customer_name": fmt.Sprintf("Zelda %s %d", customerSurname, c.Index),
		"phone_number":  c.Phone,
		"started_at":    ended.Add(-time.Minute).Format(time.RFC3339), "ended_at": ended.Format(time.RFC3339),
		"duration": 60, "recording_key": "recordings/" + c.CallID + ".wav",
		"contact_data": map[string]any{"email": fmt.Sprintf("zelda%d@%s.test", c.Index, strings.ToLower(customerSurname))},
	}
	if c.Auto {
		rec["ended_reason"], rec["disconnected_by"], rec["duration"] = "voicemail", "voicemail", 31
		return rec
	}
	rec["ended_reason"], rec["disconnected_by"] = "customer-ended-call", "customer"
	rec["transcript"] = []map[string]any{
		{"role": "agent", "text": agentLine, "t_ms": 0},
		{"role": "user", "text": userLine(c.Index), "t_ms": 4000},
		{"role": "agent", "text": closingLine, "t_ms": 9000},
	}
	return rec
}

// newCalls makes n calls; every autoEvery-th reaches voicemail (0: none).
func (b *testBundle) newCalls(n, autoEvery int) []testCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]testCall, n)
	for i := range out {
		idx := b.nextIdx
		b.nextIdx++
		phone := fmt.Sprintf("+1555013%04d", idx%10000)
		if idx%2 == 1 {
			phone = fmt.Sprintf("+1 (555) 013-%04d", idx%10000)
		}
		out[i] = testCall{Index: idx, CallID: fmt.Sprintf("chaos-%05d", idx), Phone: phone, Auto: autoEvery > 0 && idx%autoEvery == autoEvery-1}
	}
	b.calls = append(b.calls, out...)
	return out
}

// ingest stores and enqueues the calls through `postcall ingest`.
func (b *testBundle) ingest(t *testing.T, calls []testCall) {
	t.Helper()
	var buf bytes.Buffer
	for _, c := range calls {
		line, err := json.Marshal(c.record())
		require.NoError(t, err)
		buf.Write(line)
		buf.WriteByte('\n')
	}
	path := filepath.Join(b.dir, fmt.Sprintf("calls-%d.jsonl", calls[0].Index))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
	b.cliOK(t, "", "ingest", "-q", path)
}

// modelCalls is how many of the calls need the model.
func modelCalls(calls []testCall) int {
	n := 0
	for _, c := range calls {
		if !c.Auto {
			n++
		}
	}
	return n
}

// cli runs a postcall command to completion (at most 2 minutes) and returns
// its output and exit status. Its stderr is kept with the logs.
func (b *testBundle) cli(t *testing.T, stdin string, extraEnv []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, postcallBin, args...)
	cmd.Env = append(append([]string{}, b.env...), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("postcall %s: %v", strings.Join(args, " "), err)
	}
	logPath := filepath.Join(b.dir, fmt.Sprintf("cli-%s-%d.log", args[0], time.Now().UnixNano()))
	require.NoError(t, os.WriteFile(logPath, errOut.Bytes(), 0o600))
	b.mu.Lock()
	b.logs = append(b.logs, logPath)
	b.mu.Unlock()
	return out.String(), errOut.String(), code
}

func (b *testBundle) cliOK(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := b.cli(t, stdin, nil, args...)
	require.Equal(t, 0, code, "postcall %s failed:\n%s", strings.Join(args, " "), errOut)
	return out
}

// workerProc is one `postcall worker` child process.
type workerProc struct {
	name    string
	appName string // application_name of its database connections
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
	started time.Time
	// addr is the HTTP address it listens on, once ready.
	addr string
}

// startWorker starts `postcall worker` with the bundle's environment plus
// env, and waits until it says it started (30 s at most).
func (b *testBundle) startWorker(t *testing.T, name string, env ...string) *workerProc {
	t.Helper()
	w := b.spawnWorker(t, name, env...)
	w.waitReady(t, 30*time.Second)
	return w
}

// spawnWorker starts the process without waiting for it.
func (b *testBundle) spawnWorker(t *testing.T, name string, env ...string) *workerProc {
	t.Helper()
	logPath := filepath.Join(b.dir, fmt.Sprintf("worker-%s.log", name))
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	// The worker's connections carry an application_name of their own, so
	// that a test can wait for them to be gone after a kill.
	appName := "postcall-chaos-" + randHex(6) + "-" + name
	sep := "?"
	if strings.Contains(b.dbURL, "?") {
		sep = "&"
	}
	cmd := exec.Command(postcallBin, "worker")
	cmd.Env = append(append(append([]string{}, b.env...), "DATABASE_URL="+b.dbURL+sep+"application_name="+appName), env...)
	cmd.Stdout, cmd.Stderr = f, f
	w := &workerProc{name: name, appName: appName, cmd: cmd, logPath: logPath, exited: make(chan struct{}), started: time.Now()}
	require.NoError(t, cmd.Start(), "start worker %s", name)
	go func() {
		w.waitErr = cmd.Wait()
		_ = f.Close()
		close(w.exited)
	}()
	b.mu.Lock()
	b.logs = append(b.logs, logPath)
	b.workers = append(b.workers, w)
	b.mu.Unlock()
	t.Cleanup(func() {
		if !w.Exited() {
			w.stop(t)
		}
	})
	return w
}

// Exited reports whether the process has ended.
func (w *workerProc) Exited() bool {
	select {
	case <-w.exited:
		return true
	default:
		return false
	}
}

var startedRE = regexp.MustCompile(`"msg":"worker started","http_addr":"([^"]+)"|msg="worker started" http_addr=(\S+)`)

func (w *workerProc) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(w.logPath)
		if m := startedRE.FindSubmatch(data); m != nil {
			w.addr = string(m[1]) + string(m[2])
			return
		}
		if w.Exited() {
			t.Fatalf("worker %s exited before it started (%v):\n%s", w.name, w.waitErr, tail(data, 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
	data, _ := os.ReadFile(w.logPath)
	t.Fatalf("worker %s did not start within %s:\n%s", w.name, timeout, tail(data, 40))
}

// kill sends SIGKILL and waits for the process to be gone.
func (w *workerProc) kill(t *testing.T) {
	t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker %s did not die within 10s of SIGKILL", w.name)
	}
}

// killWorker kills the worker with SIGKILL and waits until PostgreSQL has
// ended every session of it: a statement the dead process had sent (a
// fetch moving jobs to running, a commit) has then finished or been rolled
// back, so what the database says is running afterwards is final.
func (b *testBundle) killWorker(t *testing.T, w *workerProc) {
	t.Helper()
	w.kill(t)
	require.Eventually(t, func() bool {
		var n int
		err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, w.appName).Scan(&n)
		return err == nil && n == 0
	}, 30*time.Second, 10*time.Millisecond, "sessions of killed worker %s still open", w.name)
}

// stop sends SIGTERM and waits for a clean exit (SIGKILL after 30 s).
func (w *workerProc) stop(t *testing.T) {
	t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
		if w.waitErr != nil {
			data, _ := os.ReadFile(w.logPath)
			t.Errorf("worker %s exited with %v after SIGTERM:\n%s", w.name, w.waitErr, tail(data, 20))
		}
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Signal(syscall.SIGKILL)
		<-w.exited
		t.Errorf("worker %s did not stop within 30s of SIGTERM", w.name)
	}
}

func tail(data []byte, lines int) string {
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// progress is the calls' state in the database.
type progress struct {
	total, done, failed int
}

func (b *testBundle) progress(ctx context.Context) (progress, error) {
	var p progress
	err := b.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE done), count(*) FILTER (WHERE state = 'failed') FROM calls`).
		Scan(&p.total, &p.done, &p.failed)
	return p, err
}

// waitDone waits until want calls are done, tolerating database errors
// (PostgreSQL may be restarting), and fails with the state of calls and jobs
// after timeout.
func (b *testBundle) waitDone(t *testing.T, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p, err := b.progress(ctx)
		cancel()
		if err == nil && p.done >= want {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p, err := b.progress(context.Background())
	t.Fatalf("after %s: %+v calls (want %d done; err %v); jobs: %v", timeout, p, want, err, b.jobStates(t))
	return 0
}

// waitDeliveries waits until no delivery is pending.
func (b *testBundle) waitDeliveries(t *testing.T, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		var pending int
		err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries WHERE status = 'pending'`).Scan(&pending)
		return err == nil && pending == 0
	}, timeout, 100*time.Millisecond, "deliveries still pending; jobs: %v", b.jobStates(t))
}

// jobStates counts River jobs by kind and state, with their highest
// attempt.
func (b *testBundle) jobStates(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	rows, err := b.pool.Query(context.Background(), `SELECT kind, state, count(*), max(attempt) FROM river_job GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	defer rows.Close()
	for rows.Next() {
		var kind, state string
		var n, maxAttempt int
		if err := rows.Scan(&kind, &state, &n, &maxAttempt); err != nil {
			return map[string]string{"error": err.Error()}
		}
		out[kind+"/"+state] = fmt.Sprintf("%d (max attempt %d)", n, maxAttempt)
	}
	return out
}

// requireJobsHealthy asserts that every run and delivery job completed and
// that no job was discarded or ran out of attempts (a periodic job may be
// running right now); it returns the highest attempt of any job.
func (b *testBundle) requireJobsHealthy(t *testing.T) int {
	t.Helper()
	var notDone, discarded, exhausted, maxAttempt int
	require.NoError(t, b.pool.QueryRow(context.Background(), `
		SELECT count(*) FILTER (WHERE state <> 'completed' AND kind IN ('postcall.analysis', 'postcall.qc', 'postcall.deliver')),
		       count(*) FILTER (WHERE state = 'discarded'),
		       count(*) FILTER (WHERE attempt >= max_attempts AND state <> 'completed'),
		       coalesce(max(attempt), 0)
		FROM river_job`).Scan(&notDone, &discarded, &exhausted, &maxAttempt))
	require.Zero(t, notDone, "every run and delivery job completed; jobs: %v", b.jobStates(t))
	require.Zero(t, discarded, "no job was discarded; jobs: %v", b.jobStates(t))
	require.Zero(t, exhausted, "no job used up its attempts; jobs: %v", b.jobStates(t))
	return maxAttempt
}

// runRow is one analysis or QC run in the database.
type runRow struct {
	id       int64
	status   string
	requests int // llm_requests rows: requests whose answer was stored
}

// runs returns every run of the test calls by call index and kind.
func (b *testBundle) runs(t *testing.T) map[runKey]runRow {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `
		SELECT c.call_id, r.kind, r.id, r.status, (SELECT count(*) FROM llm_requests q WHERE q.run_id = r.id)
		FROM analysis_runs r JOIN calls c ON c.id = r.call_id`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[runKey]runRow{}
	for rows.Next() {
		var callID, kind string
		var r runRow
		require.NoError(t, rows.Scan(&callID, &kind, &r.id, &r.status, &r.requests))
		idx, err := strconv.Atoi(strings.TrimPrefix(callID, "chaos-"))
		require.NoError(t, err, "call_id %q", callID)
		key := runKey{call: idx, kind: kind}
		_, dup := out[key]
		require.False(t, dup, "call %s has two %s runs", callID, kind)
		out[key] = r
	}
	require.NoError(t, rows.Err())
	return out
}

// requireAllDone asserts that every test call is done with state done (not
// failed).
func (b *testBundle) requireAllDone(t *testing.T) {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT call_id, state FROM calls WHERE NOT done OR state <> 'done' ORDER BY call_id LIMIT 20`)
	require.NoError(t, err)
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var id, state string
		require.NoError(t, rows.Scan(&id, &state))
		bad = append(bad, id+"="+state)
	}
	require.Empty(t, bad, "calls not done (first 20)")
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM calls`).Scan(&n))
	require.Equal(t, len(b.calls), n, "calls stored")
}

// deliveryReport is what the receivers saw against the deliveries table.
type deliveryReport struct {
	deliveries int // one per call and integration
	requests   int // webhook requests received
	repeats    int // requests beyond the first of one webhook-id
}

// requireDeliveredOnce asserts the delivery contract for every finalized
// test call: one delivery per integration, delivered; its receiver saw
// that delivery's webhook-id at least once, with a valid signature, and
// never another id for the same call and integration.
func (b *testBundle) requireDeliveredOnce(t *testing.T) deliveryReport {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `
		SELECT c.call_id, d.integration, d.id, d.status
		FROM deliveries d JOIN calls c ON c.id = d.call_id ORDER BY 1, 2`)
	require.NoError(t, err)
	defer rows.Close()
	want := map[[2]string]string{}
	for rows.Next() {
		var callID, integration, id, status string
		require.NoError(t, rows.Scan(&callID, &integration, &id, &status))
		pair := [2]string{integration, callID}
		_, dup := want[pair]
		require.False(t, dup, "call %s has two deliveries to %s: finalized twice", callID, integration)
		require.Equal(t, "delivered", status, "delivery %s of call %s to %s", id, callID, integration)
		want[pair] = id
	}
	require.NoError(t, rows.Err())
	require.Len(t, want, len(b.calls)*len(integrations), "one delivery per call and integration")

	got, bad := b.hooks.Received()
	require.Empty(t, bad, "requests the receivers rejected (bad signature or body)")
	rep := deliveryReport{deliveries: len(want), requests: len(got)}
	ids := map[[2]string]map[string]int{}
	for _, r := range got {
		pair := [2]string{r.integration, r.callID}
		if ids[pair] == nil {
			ids[pair] = map[string]int{}
		}
		ids[pair][r.webhookID]++
	}
	for pair, id := range want {
		seen := ids[pair]
		require.NotEmpty(t, seen, "receiver %s never got call %s", pair[0], pair[1])
		require.Len(t, seen, 1, "receiver %s got call %s under several webhook-ids: %v", pair[0], pair[1], seen)
		require.Contains(t, seen, id, "receiver %s got call %s under another webhook-id", pair[0], pair[1])
		rep.repeats += seen[id] - 1
	}
	require.Len(t, ids, len(want), "receivers got deliveries of unknown calls")
	return rep
}

// requireRequestsPerRun checks the model's request counts against the
// runs: every run of a model call was requested, no auto-disposed call
// was, and a run was requested more than once only within allowance (nil:
// never). It returns the requests beyond the first of each run.
func (b *testBundle) requireRequestsPerRun(t *testing.T, allowance func(runKey, runRow) int) (repeats int) {
	t.Helper()
	perRun, _, unknown := b.model.Counts()
	require.Zero(t, unknown, "requests naming no test call")
	runs := b.runs(t)
	for _, c := range b.calls {
		for _, kind := range []string{"analysis", "qc"} {
			key := runKey{call: c.Index, kind: kind}
			n := perRun[key]
			if c.Auto {
				require.Zero(t, n, "auto-disposed call %s: %s requested", c.CallID, kind)
				continue
			}
			run, ok := runs[key]
			require.True(t, ok, "call %s has no %s run", c.CallID, kind)
			require.Positive(t, n, "%s run %d of call %s never reached the model", kind, run.id, c.CallID)
			extra := 0
			if allowance != nil {
				extra = allowance(key, run)
			}
			require.LessOrEqual(t, n, 1+extra, "%s run %d of call %s requested %d times (allowed %d)", kind, run.id, c.CallID, n, 1+extra)
			repeats += n - 1
		}
	}
	require.Len(t, perRun, 2*modelCalls(b.calls), "requests for runs that do not exist")
	return repeats
}

// logCheck is one thing no log may contain.
type logCheck struct {
	what string
	re   *regexp.Regexp
}

func (b *testBundle) forbidden() []logCheck {
	lit := func(what, s string) logCheck {
		return logCheck{what, regexp.MustCompile(`(?i)` + regexp.QuoteMeta(s))}
	}
	checks := []logCheck{
		lit("the OpenAI API key", b.secrets.APIKey),
		lit("the API token", b.secrets.APIToken),
		lit("the recording link secret", b.secrets.LinkSecret),
		lit("the AWS secret key", b.secrets.AWSSecret),
		lit("a webhook header value", strings.TrimPrefix(b.secrets.HeaderValue, "Bearer ")),
		lit("a signed URL", "X-Amz-Signature"),
		lit("a signed URL", "X-Amz-Credential"),
		lit("a customer name", customerSurname),
		lit("transcript text", agentLine[:30]),
		lit("transcript text", "Elm Street"),
		lit("transcript text", "order number"),
		lit("transcript text", closingLine[:25]),
		// Phone numbers as sent, normalised or bare digits.
		{"a phone number", regexp.MustCompile(`555\D{0,3}013\D{0,2}\d{4}`)},
		// The order number only appears in transcripts.
		{"transcript text (order number)", regexp.MustCompile(`N-\d{5}`)},
	}
	for name, s := range b.secrets.Webhook {
		checks = append(checks, lit("the webhook secret of "+name, strings.TrimPrefix(s, "whsec_")))
	}
	return checks
}

// requireCleanLogs asserts that no captured output (workers' and commands'
// stderr) contains a secret, a phone number, transcript text or a signed
// URL.
func (b *testBundle) requireCleanLogs(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	logs := append([]string(nil), b.logs...)
	b.mu.Unlock()
	var total int
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read log %s: %v", path, err)
			continue
		}
		total += len(data)
		for _, leak := range b.leaks(data) {
			t.Errorf("%s contains %s", filepath.Base(path), leak)
		}
	}
	t.Logf("log audit: %d files, %d bytes, no secret or personal data", len(logs), total)
}

// leaks describes each forbidden thing in data, with its line.
func (b *testBundle) leaks(data []byte) []string {
	var out []string
	for _, c := range b.forbidden() {
		if loc := c.re.FindIndex(data); loc != nil {
			start := bytes.LastIndexByte(data[:loc[0]], '\n') + 1
			end := bytes.IndexByte(data[loc[1]:], '\n')
			if end < 0 {
				end = len(data) - loc[1]
			}
			out = append(out, fmt.Sprintf("%s:\n%s", c.what, data[start:loc[1]+end]))
		}
	}
	return out
}

// logLines counts log lines with msg in the workers' logs.
func (b *testBundle) logLines(msg string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, w := range b.workers {
		data, _ := os.ReadFile(w.logPath)
		n += bytes.Count(data, []byte(`"msg":"`+msg+`"`)) + bytes.Count(data, []byte(`msg="`+msg+`"`))
	}
	return n
}

// retentionRuns counts scheduled retention runs by kind.
func (b *testBundle) retentionRuns(t *testing.T) map[string]int {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT kind, count(*) FROM retention_runs WHERE trigger = 'schedule' GROUP BY 1`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var kind string
		var n int
		require.NoError(t, rows.Scan(&kind, &n))
		out[kind] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// waitRetentionRuns waits until the purge and the hard delete have run at
// least once (a new leader runs them on start, after its election and
// River's staggered start of maintenance services, up to a second) and
// returns the scheduled runs by kind.
func (b *testBundle) waitRetentionRuns(t *testing.T) map[string]int {
	t.Helper()
	var rr map[string]int
	require.Eventually(t, func() bool {
		rr = b.retentionRuns(t)
		return rr["purge"] > 0 && rr["hard_delete"] > 0
	}, 30*time.Second, 50*time.Millisecond, "the periodic jobs never ran")
	return rr
}

// periods counts the distinct periods (truncations to d) from..to touches.
func periods(from, to time.Time, d time.Duration) int {
	return int(to.Truncate(d).Sub(from.Truncate(d))/d) + 1
}
