package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromium finds Debian's chromium. The browser tests fail without it:
// `.ci/run` installs it (apt-get install -y chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: install it (apt-get install -y chromium); the console's browser tests need it")
	return ""
}

// newChrome starts a headless Chromium with a new, empty profile and
// returns a context to run actions in (a separate browser each call, with
// its own cookies), bounded to two minutes.
func newChrome(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser; its context must carry no timeout.
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	limited, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelTimeout)
	return limited
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// navigate runs steps that load a new page and waits for it.
func navigate(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	_, err := chromedp.RunResponse(ctx, steps...)
	require.NoError(t, err)
}

func eval[T any](t *testing.T, ctx context.Context, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	require.NoError(t, err, expr)
	return v
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err, sel)
	return v
}

func signIn(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	navigate(t, ctx, chromedp.Navigate(base+"/login"))
	navigate(t, ctx, chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Submit(chromedp.ID("token")))
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS("table.calls")))
}

// listed returns the call_ids the list page shows.
func listed(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return eval[[]string](t, ctx, `Array.from(document.querySelectorAll("tr[data-call]")).map(r => r.dataset.call)`)
}

// screenshot saves the page when POSTCALL_SCREENSHOTS names a directory
// (how docs/console-*.png are made).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("POSTCALL_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()) // the 1280x900 viewport, as PNG
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
}

// fetchStatus runs fetch(path, init) in the page and returns the status.
func fetchStatus(t *testing.T, ctx context.Context, path, init string) int {
	t.Helper()
	return eval[int](t, ctx, fmt.Sprintf(`fetch(%q, %s).then(r => r.status)`, path, init), chromedp.EvalAwaitPromise)
}

func TestBrowser(t *testing.T) {
	b := setup(t)
	ctx := newChrome(t)
	signIn(t, ctx, b.url, b.admin)

	t.Run("list and filters", func(t *testing.T) {
		all := listed(t, ctx)
		require.Equal(t, []string{"agent-b-1", "vm-1", "rich-1", "purge-me", "old-1"}, all, "newest first; deleted calls are not listed by default")
		screenshot(t, ctx, "console-list.png")
		filter := func(id, value string) []string {
			t.Helper()
			navigate(t, ctx, chromedp.Navigate(b.url+"/calls"))
			navigate(t, ctx, chromedp.SetValue(chromedp.ID(id), value), chromedp.Click(chromedp.ID("apply")))
			return listed(t, ctx)
		}
		require.Equal(t, []string{"rich-1"}, filter("f-search", "Dana"))
		require.Equal(t, []string{"vm-1"}, filter("f-phone", "+1 555 010 0002"))
		require.Equal(t, []string{"agent-b-1"}, filter("f-agent", "support"))
		require.Equal(t, []string{"old-1"}, filter("f-to", "2026-11-01"))
		require.Equal(t, []string{"agent-b-1", "vm-1", "rich-1", "purge-me"}, filter("f-from", "2026-11-01"))
		require.Empty(t, filter("f-done", "false"), "every call is processed")
		require.Len(t, filter("f-done", "true"), 5)
		navigate(t, ctx, chromedp.Navigate(b.url+"/calls"))
		navigate(t, ctx, chromedp.Click(chromedp.ID("f-deleted")), chromedp.Click(chromedp.ID("apply")))
		require.Contains(t, listed(t, ctx), "deleted-1", "include deleted")
		require.Contains(t, text(t, ctx, `tr[data-call="deleted-1"]`), "deleted")
		purged := text(t, ctx, `tr[data-call="purge-me"]`)
		require.Contains(t, purged, "purged")
		require.NotContains(t, purged, "Pat Purge")
	})

	t.Run("rich call page", func(t *testing.T) {
		navigate(t, ctx, chromedp.Navigate(b.url+"/calls/rich-1"))
		page := text(t, ctx, "main")
		for _, want := range []string{
			"Back", "Download JSON", "Re-run analysis",
			"Duration", "2m 15s", "Status", "completed", "Direction", "outbound", "Disconnected By", "bot",
			"Caller", "+15550100001", "Carrier / DID", "Telnyx / +15550199999",
			"Latency", "Avg STT", "200 ms", "Avg LLM", "680 ms", "Total", "1323 ms",
			"Tokens", "Prompt", "2000", "TTS Chars", "80", "Post+QC",
			"Post-call cache", "cache hit", "Cached Read (tok)", "2048",
			"Recording", "Transcript", "May I record this call?", "book_demo → ok", "demo availability (3 hits)",
			"Integration log", "Tool calls", "crm_lookup", "timeout", "3000 ms",
			"Knowledge retrieval", "85 ms", "miss",
			"Post-call analysis", "agreed", "test-model", "Plan version", "Demo booked (answer 1)",
			"QC analysis", "greeting", "consent", "fatal",
			"Per-turn metrics", "1615 ms", "Events", "Service Errors", "synthesis", "FATAL",
			"Transfer attempted but failed", "busy",
		} {
			require.Contains(t, page, want)
		}
		require.False(t, eval[bool](t, ctx, `document.getElementById("events").open`), "Events start collapsed")
		order := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("ol.transcript li")).map(li => li.className.split(" ")[1])`)
		require.Equal(t, []string{"message", "tool", "message", "search", "tool", "message"}, order, "messages, tool calls and searches by time")
		screenshot(t, ctx, "console-call.png")
	})

	t.Run("evidence: quotes beside values, linked to their turns; cost", func(t *testing.T) {
		// After the list subtest, which counts setup's calls.
		b.ingestEvidenceCall(t)
		navigate(t, ctx, chromedp.Navigate(b.url+"/calls/evid-1"))
		summary := text(t, ctx, "#field-summary")
		require.Contains(t, summary, "Demo on Tuesday")
		require.Contains(t, summary, "verified")
		require.NotContains(t, summary, "unverified")
		require.Contains(t, summary, "“Can we book a demo next Tuesday?”")
		outcome := text(t, ctx, "#field-outcome")
		require.Contains(t, outcome, "withheld: agreed")
		require.Contains(t, outcome, "unverified")
		require.Contains(t, text(t, ctx, "ul.qc"), "unverified")
		require.Equal(t, evidenceCost, text(t, ctx, "#cost"))
		require.Contains(t, text(t, ctx, "#run-history"), "$0.000151")
		screenshot(t, ctx, "console-evidence.png")
		// The quote's link goes to the turn it was found in.
		do(t, ctx, chromedp.Click(chromedp.CSS(`#field-summary blockquote a`)))
		require.Equal(t, "turn-1", eval[string](t, ctx, `document.querySelector("li.entry:target").id`))
		require.Contains(t, text(t, ctx, "#turn-1"), "Can we book a demo next Tuesday?")
		do(t, ctx, chromedp.Click(chromedp.CSS(`ul.qc a.quote`)))
		require.Contains(t, eval[string](t, ctx, `document.querySelector("li.entry:target").textContent`), "Hi, this is Ava from ACME.")
	})

	t.Run("voicemail shows the right empties", func(t *testing.T) {
		navigate(t, ctx, chromedp.Navigate(b.url+"/calls/vm-1"))
		page := text(t, ctx, "main")
		require.Contains(t, page, "No recording: there is nothing to play.")
		require.Contains(t, page, "No transcript.")
		require.Contains(t, page, "Analysis was skipped: the call got an auto disposition.")
		require.Contains(t, page, "voicemail")
		require.NotContains(t, page, "Post-call cache", "no cache data, no card")
		dashes := eval[int](t, ctx, `Array.from(document.querySelectorAll("details.card > p")).filter(p => p.textContent.trim() === "-").length`)
		require.Equal(t, 7, dashes, "integration log, tools, knowledge, turns, events, errors and QC show a dash")
	})

	t.Run("re-run adds a run and the diff appears", func(t *testing.T) {
		navigate(t, ctx, chromedp.Navigate(b.url+"/calls/rich-1"))
		before := eval[int](t, ctx, `document.querySelectorAll("#run-history tbody tr").length`)
		navigate(t, ctx, chromedp.SetValue(chromedp.ID("rerun-kind"), "all"), chromedp.Click(chromedp.ID("rerun")))
		// No manual reload: the page polls and reloads itself when the runs are done.
		do(t, ctx, chromedp.WaitVisible(chromedp.ID("changes")))
		after := eval[int](t, ctx, `document.querySelectorAll("#run-history tbody tr").length`)
		require.Equal(t, before+2, after, "an analysis and a QC run")
		diff := text(t, ctx, "#diff")
		require.Contains(t, diff, "outcome")
		require.Contains(t, diff, "agreed")
		require.Contains(t, diff, "declined")
		require.Contains(t, diff, "Demo booked (answer 2)")
		require.NotContains(t, diff, "email", "unchanged fields are not listed")
		require.Contains(t, text(t, ctx, "#qc-change"), "QC score 10 → 1", "the fatal item failed on the re-run")
		do(t, ctx, chromedp.ScrollIntoView(chromedp.ID("runs")))
		screenshot(t, ctx, "console-rerun.png")
	})

	t.Run("a POST without the CSRF token is refused", func(t *testing.T) {
		navigate(t, ctx, chromedp.Navigate(b.url+"/calls/rich-1"))
		require.Equal(t, 403, fetchStatus(t, ctx, "/calls/rich-1/delete",
			`{method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: ""}`))
		c, err := b.app.Calls.Find(context.Background(), "rich-1")
		require.NoError(t, err)
		require.Nil(t, c.DeletedAt)
	})

	t.Run("a purged call says purged", func(t *testing.T) {
		navigate(t, ctx, chromedp.Navigate(b.url+"/calls/purge-me"))
		do(t, ctx, chromedp.WaitVisible(chromedp.ID("purged-banner")))
		require.Equal(t, "purged", text(t, ctx, "#caller"))
		require.Equal(t, "purged", text(t, ctx, "#recording-none"))
		require.Equal(t, "purged", text(t, ctx, "#transcript-none"))
		require.NotContains(t, text(t, ctx, "main"), "+15550100005")
	})

	t.Run("logout", func(t *testing.T) {
		navigate(t, ctx, chromedp.Navigate(b.url+"/calls"))
		navigate(t, ctx, chromedp.Click(chromedp.ID("logout")))
		do(t, ctx, chromedp.WaitVisible(chromedp.ID("token")))
		navigate(t, ctx, chromedp.Navigate(b.url+"/calls"))
		loc, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		require.True(t, strings.HasSuffix(loc, "/login"), loc)
	})
}

func TestBrowserViewer(t *testing.T) {
	b := setup(t)
	ctx := newChrome(t)
	signIn(t, ctx, b.url, b.viewer)
	navigate(t, ctx, chromedp.Navigate(b.url+"/calls/rich-1"))
	missing := eval[[]string](t, ctx, `["download-json", "tokens-card", "cache-card", "rerun", "soft-delete", "erase"].filter(id => document.getElementById(id) === null)`)
	require.Len(t, missing, 6, "a viewer sees no Download JSON, Tokens or cache card, and no admin buttons")
	page := text(t, ctx, "main")
	require.Contains(t, page, "Per-turn metrics")
	require.NotContains(t, page, "Redeliver")
	id := b.ids["rich-1"]
	form := `{method: "POST", body: new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value, kind: "all", confirm: "rich-1"})}`
	for _, path := range writes(id) {
		require.Equal(t, 403, fetchStatus(t, ctx, path, form), "POST %s", path)
	}
	require.Equal(t, 403, fetchStatus(t, ctx, "/calls/"+id+"/download", "{}"))
	require.Equal(t, 403, fetchStatus(t, ctx, "/riverui/", "{}"))
	c, err := b.app.Calls.Find(context.Background(), id)
	require.NoError(t, err)
	require.Nil(t, c.DeletedAt)
	require.False(t, c.IsPurged)
	screenshot(t, ctx, "console-viewer.png")

	// Quotes are call data, shown to a viewer; the cost is not.
	b.ingestEvidenceCall(t)
	navigate(t, ctx, chromedp.Navigate(b.url+"/calls/evid-1"))
	require.Contains(t, text(t, ctx, "#field-summary"), "“Can we book a demo next Tuesday?”")
	require.Contains(t, text(t, ctx, "#field-outcome"), "withheld: agreed")
	html := eval[string](t, ctx, `document.documentElement.outerHTML`)
	require.NotContains(t, html, "$0.", "a viewer's page has no cost")
	require.NotContains(t, html, "unpriced")
	require.Equal(t, 0, eval[int](t, ctx, `document.querySelectorAll("#cost, td.cost").length`))
}
