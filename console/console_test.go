package console_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/access"
	"github.com/postcall/postcall/console"
)

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so that tests see them.
type browser struct {
	t      *testing.T
	base   string
	client *http.Client
}

func (b *testBundle) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: b.url, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (br *browser) do(method, path string, form url.Values) *page {
	br.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, br.base+path, body)
	require.NoError(br.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := br.client.Do(req)
	require.NoError(br.t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(br.t, err)
	return &page{status: res.StatusCode, header: res.Header, body: string(data)}
}

func (br *browser) get(path string) *page { return br.do(http.MethodGet, path, nil) }

// signIn signs in and returns the session's CSRF token (from a page's
// logout form).
func (br *browser) signIn(token string) string {
	br.t.Helper()
	p := br.do(http.MethodPost, "/login", url.Values{"token": {token}})
	require.Equal(br.t, http.StatusSeeOther, p.status, p.body)
	require.Equal(br.t, "/calls", p.header.Get("Location"))
	return br.csrf()
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (br *browser) csrf() string {
	br.t.Helper()
	p := br.get("/calls")
	require.Equal(br.t, http.StatusOK, p.status, p.body)
	m := csrfRE.FindStringSubmatch(p.body)
	require.NotNil(br.t, m, "no CSRF token on the page")
	return m[1]
}

func TestHeaders(t *testing.T) {
	b := setup(t)
	br := b.browser(t)
	login := br.get("/login")
	require.Equal(t, http.StatusOK, login.status)
	br.signIn(b.admin)
	for _, path := range []string{"/login", "/calls", "/calls/" + b.ids["rich-1"], "/calls/rich-1", "/calls/" + b.ids["rich-1"] + "/progress"} {
		p := br.get(path)
		require.Equal(t, http.StatusOK, p.status, path)
		csp := p.header.Get("Content-Security-Policy")
		require.Contains(t, csp, "frame-ancestors 'none'", path)
		require.Contains(t, csp, "default-src 'none'", path)
		require.NotContains(t, csp, "unsafe-inline", path)
		require.Equal(t, "nosniff", p.header.Get("X-Content-Type-Options"), path)
		require.Equal(t, "no-referrer", p.header.Get("Referrer-Policy"), path)
		if path != "/login" {
			require.Equal(t, "no-store", p.header.Get("Cache-Control"), path)
		}
		if strings.Contains(p.header.Get("Content-Type"), "html") {
			// Every script carries this response's nonce, and there is no other.
			nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(csp)
			require.NotNil(t, nonce, path)
			scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(p.body, -1)
			require.NotEmpty(t, scripts, path)
			for _, s := range scripts {
				require.Contains(t, s, `nonce="`+nonce[1]+`"`, path)
			}
		}
	}
	a, c := br.get("/login").header.Get("Content-Security-Policy"), br.get("/login").header.Get("Content-Security-Policy")
	require.NotEqual(t, a, c, "a fresh nonce per response")
}

func TestLoginCookieAndFailures(t *testing.T) {
	b := setup(t)
	br := b.browser(t)
	bad := br.do(http.MethodPost, "/login", url.Values{"token": {"pct_nope"}})
	require.Equal(t, http.StatusUnauthorized, bad.status)
	require.Contains(t, bad.body, "not valid")
	require.Empty(t, bad.header.Values("Set-Cookie"))

	ok := br.do(http.MethodPost, "/login", url.Values{"token": {b.admin}})
	require.Equal(t, http.StatusSeeOther, ok.status)
	cookie := ok.header.Get("Set-Cookie")
	require.Contains(t, cookie, "postcall_session=")
	require.Contains(t, cookie, "HttpOnly")
	require.Contains(t, cookie, "SameSite=Lax")
	require.Contains(t, cookie, "Expires=")
	require.NotContains(t, cookie, "Secure", "plain http: a Secure cookie would never come back")

	// POSTCALL_API_TOKEN signs in as admin too.
	require.Equal(t, http.StatusSeeOther, b.browser(t).do(http.MethodPost, "/login", url.Values{"token": {apiToken}}).status)

	// Not signed in: pages send to /login, writes are refused.
	anon := b.browser(t)
	p := anon.get("/calls")
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Equal(t, "/login", p.header.Get("Location"))
	require.Equal(t, http.StatusUnauthorized, anon.do(http.MethodPost, "/calls/"+b.ids["rich-1"]+"/delete", url.Values{}).status)
}

func TestSecureCookieOverTLS(t *testing.T) {
	b := setup(t)
	srv := httptest.NewTLSServer((&console.Server{Calls: b.app.Calls, Sessions: b.app.Access}).Handler())
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test's own server
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.PostForm(srv.URL+"/login", url.Values{"token": {b.admin}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Contains(t, res.Header.Get("Set-Cookie"), "Secure")
}

func TestLoginRateLimit(t *testing.T) {
	b := setup(t)
	br := b.browser(t)
	for i := range console.DefaultLoginAttempts {
		require.Equal(t, http.StatusUnauthorized, br.do(http.MethodPost, "/login", url.Values{"token": {"wrong"}}).status, "attempt %d", i+1)
	}
	p := br.do(http.MethodPost, "/login", url.Values{"token": {b.admin}})
	require.Equal(t, http.StatusTooManyRequests, p.status, "even the right token waits")
	require.NotEmpty(t, p.header.Get("Retry-After"))
}

// writes are every state-changing console route of a call.
func writes(id string) []string {
	return []string{"/calls/" + id + "/reanalyze", "/calls/" + id + "/redeliver", "/calls/" + id + "/delete",
		"/calls/" + id + "/restore", "/calls/" + id + "/erase"}
}

func TestViewer(t *testing.T) {
	b := setup(t)
	br := b.browser(t)
	csrf := br.signIn(b.viewer)
	id := b.ids["rich-1"]
	p := br.get("/calls/" + id)
	require.Equal(t, http.StatusOK, p.status)
	for _, hidden := range []string{"Download JSON", `id="tokens-card"`, `id="cache-card"`, "Re-run analysis", "Redeliver", `id="erase"`, "River UI"} {
		require.NotContains(t, p.body, hidden)
	}
	require.Contains(t, p.body, "Per-turn metrics")
	require.NotContains(t, p.body, `<th scope="col">Tokens</th>`, "no per-turn Tokens column")
	for _, path := range writes(id) {
		got := br.do(http.MethodPost, path, url.Values{"csrf": {csrf}, "kind": {"all"}, "confirm": {"rich-1"}})
		require.Equal(t, http.StatusForbidden, got.status, path)
	}
	require.Equal(t, http.StatusForbidden, br.get("/calls/"+id+"/download").status)
	require.Equal(t, http.StatusForbidden, br.get("/riverui/").status)
	c, err := b.app.Calls.Find(context.Background(), id)
	require.NoError(t, err)
	require.Nil(t, c.DeletedAt)
	require.False(t, c.IsPurged)
}

func TestAdminActionsNeedCSRF(t *testing.T) {
	b := setup(t)
	br := b.browser(t)
	csrf := br.signIn(b.admin)
	id := b.ids["rich-1"]
	for _, path := range writes(id) {
		for _, token := range []string{"", "wrong"} {
			got := br.do(http.MethodPost, path, url.Values{"csrf": {token}, "kind": {"all"}, "confirm": {"rich-1"}})
			require.Equal(t, http.StatusForbidden, got.status, path)
		}
	}
	doc, err := b.app.Calls.Find(context.Background(), id)
	require.NoError(t, err)
	require.Nil(t, doc.DeletedAt)
	require.False(t, doc.IsPurged)

	p := br.do(http.MethodPost, "/calls/"+id+"/delete", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, p.status, p.body)
	page := br.get("/calls/" + id)
	require.Contains(t, page.body, "restorable until")
	require.Equal(t, http.StatusSeeOther, br.do(http.MethodPost, "/calls/"+id+"/restore", url.Values{"csrf": {csrf}}).status)
	require.NotContains(t, br.get("/calls/"+id).body, "restorable until")

	wrong := br.do(http.MethodPost, "/calls/"+id+"/erase", url.Values{"csrf": {csrf}, "confirm": {"rich"}})
	require.Equal(t, http.StatusBadRequest, wrong.status)
	c, err := b.app.Calls.Find(context.Background(), id)
	require.NoError(t, err)
	require.False(t, c.IsPurged, "a wrong confirmation erases nothing")

	dl := br.get("/calls/" + id + "/download")
	require.Equal(t, http.StatusOK, dl.status)
	require.Contains(t, dl.header.Get("Content-Disposition"), "attachment")
	require.Contains(t, dl.body, `"tokens"`)
	require.Equal(t, http.StatusOK, br.get("/riverui/").status)
}

func TestSessionsEnd(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	viewer := b.browser(t)
	viewer.signIn(b.viewer)
	admin := b.browser(t)
	csrf := admin.signIn(b.admin)

	_, err := b.app.Access.RevokeToken(ctx, "qa")
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, viewer.get("/calls").status, "revoking the token ends its sessions")
	require.Equal(t, http.StatusUnauthorized, viewer.do(http.MethodPost, "/login", url.Values{"token": {b.viewer}}).status)

	require.Equal(t, http.StatusForbidden, admin.do(http.MethodPost, "/logout", url.Values{}).status, "logout needs the CSRF token too")
	require.Equal(t, http.StatusSeeOther, admin.do(http.MethodPost, "/logout", url.Values{"csrf": {csrf}}).status)
	p := admin.get("/calls")
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Equal(t, "/login", p.header.Get("Location"))

	// A session of POSTCALL_API_TOKEN ends when the variable changes.
	env := b.browser(t)
	env.signIn(apiToken)
	same := httptest.NewServer((&console.Server{Calls: b.app.Calls, Sessions: &access.Service{DB: b.app.Pool, APIToken: apiToken}}).Handler())
	t.Cleanup(same.Close)
	require.Equal(t, http.StatusOK, (&browser{t: t, base: same.URL, client: env.client}).get("/calls").status, "the cookie is sent to this host")
	changed := &access.Service{DB: b.app.Pool, APIToken: "another-token-entirely-0123456789"}
	srv := httptest.NewServer((&console.Server{Calls: b.app.Calls, Sessions: changed}).Handler())
	t.Cleanup(srv.Close)
	moved := &browser{t: t, base: srv.URL, client: env.client}
	require.Equal(t, http.StatusSeeOther, moved.get("/calls").status)
}

// TestEvidenceAndCost checks the quotes of a call whose agent has
// analysis.evidence and qc.evidence require, and that only an admin sees
// what the call cost.
func TestEvidenceAndCost(t *testing.T) {
	b := setup(t)
	b.ingestEvidenceCall(t)
	admin := b.browser(t)
	admin.signIn(b.admin)
	p := admin.get("/calls/evid-1")
	require.Equal(t, http.StatusOK, p.status)
	// Transcript turns carry their index, the turn the evidence names.
	require.Contains(t, p.body, `id="turn-0"`)
	require.Contains(t, p.body, `id="turn-1"`)
	require.NotContains(t, p.body, `id="turn-3"`)
	field := func(name string) string {
		t.Helper()
		m := regexp.MustCompile(`(?s)<dd id="field-` + name + `">(.*?)</dd>`).FindStringSubmatch(p.body)
		require.NotNil(t, m, "field %s", name)
		return m[1]
	}
	summary := field("summary")
	require.Contains(t, summary, "Demo on Tuesday")
	require.Contains(t, summary, `<span class="badge ok">verified</span>`)
	require.Contains(t, summary, `<a href="#turn-1">“Can we book a demo next Tuesday?”</a>`, "the quote links to the customer's turn")
	outcome := field("outcome")
	require.Contains(t, outcome, "withheld: agreed", "under require the unverified value is withheld, shown for review")
	require.Contains(t, outcome, `<span class="badge amber">unverified</span>`)
	require.Contains(t, outcome, "“I agree to buy it now”")
	require.NotContains(t, outcome, "href", "a quote not found links nowhere")
	require.NotContains(t, p.body, `id="disposition"`, "a withheld disposition field sets no disposition")

	qc := regexp.MustCompile(`(?s)<ul class="qc">(.*?)</ul>`).FindStringSubmatch(p.body)
	require.NotNil(t, qc)
	require.Regexp(t, `(?s)<strong>greeting</strong>\s*<span class="badge ok">verified</span> <a class="evidence quote" href="#turn-0">Hi, this is Ava</a>`, qc[1])
	require.Regexp(t, `(?s)<strong>close</strong>\s*<span class="badge amber">unverified</span> <span class="evidence">Thank you and have a lovely day</span>`, qc[1])

	// Cost: the Tokens card and each run, for admins only.
	require.Contains(t, p.body, `<dd id="cost" title="post-call analysis $0.000151 + QC $0.000151">`+evidenceCost+`</dd>`)
	require.Equal(t, 2, strings.Count(p.body, `<td class="cost">$0.000151</td>`), "the analysis and the QC run")
	rich := admin.get("/calls/rich-1")
	require.Contains(t, rich.body, `<dd id="cost" title="post-call analysis unpriced + QC unpriced">unpriced</dd>`, "test-model has no price: no guess")

	viewer := b.browser(t)
	viewer.signIn(b.viewer)
	v := viewer.get("/calls/evid-1")
	require.Equal(t, http.StatusOK, v.status)
	require.Contains(t, v.body, `<a href="#turn-1">“Can we book a demo next Tuesday?”</a>`, "a viewer sees the quotes")
	require.Contains(t, v.body, "withheld: agreed")
	for _, hidden := range []string{"$0.", `id="cost"`, `class="cost"`, "unpriced", `<th scope="col">Cost</th>`} {
		require.NotContains(t, v.body, hidden, "a viewer gets no cost")
	}
	require.NotContains(t, viewer.get("/calls/rich-1").body, "unpriced")

	// Without evidence nothing changes: no badge, no quote, no withheld.
	require.NotContains(t, rich.body, "verified</span>")
	require.NotContains(t, rich.body, `class="quote"`)
}
