package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/postcall/postcall/access"
)

// Console page targets (issue 11): server time at the 95th percentile with
// e.opts.consoleCalls calls in the database.
const (
	consoleListP95 = 50 * time.Millisecond
	consoleCallP95 = 30 * time.Millisecond
	consolePages   = 300
)

// runConsole measures the console's server time: the handler's time to
// answer (ServeHTTP, network excluded) for a filtered call list page and
// for a call page, with e.opts.consoleCalls finished calls (analysis, QC,
// a delivery each) in the database, signed in as an admin (the heavier
// page: tokens and cache cards).
func runConsole(ctx context.Context, e *env) (*result, error) {
	s, err := e.db.newSchema(ctx, "console")
	if err != nil {
		return nil, err
	}
	defer s.close(ctx)
	if err := applyPlan(ctx, s.Pool, "http://127.0.0.1:9/unused"); err != nil {
		return nil, err
	}
	n := e.opts.consoleCalls
	seedStart := time.Now()
	if err := seedDueCalls(ctx, s.Pool, n); err != nil {
		return nil, err
	}
	e.progress("console: seeded %d calls in %s", n, seconds(time.Since(seedStart)))
	a, err := newApp(ctx, workerConfig{Pool: s.Pool, Schema: s.Name, Logger: e.log}, false)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	token, err := a.Access.CreateToken(ctx, "bench", access.RoleAdmin)
	if err != nil {
		return nil, err
	}
	h := a.Handler()
	login := httptest.NewRecorder()
	h.ServeHTTP(login, formRequest("/login", url.Values{"token": {token}}))
	cookie := login.Result().Cookies()
	if login.Code != http.StatusSeeOther || len(cookie) == 0 {
		return nil, fmt.Errorf("console sign-in: status %d", login.Code)
	}
	get := func(path string) (time.Duration, error) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.AddCookie(cookie[0])
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(start)
		if rec.Code != http.StatusOK {
			return 0, fmt.Errorf("GET %s: status %d", path, rec.Code)
		}
		return d, nil
	}
	// The seeded calls ended 90 days ago, 10 ms apart: a from/to window,
	// the agent, done, a search by name and one by a number's digits.
	start := time.Now().Add(-90 * 24 * time.Hour).UTC()
	filters := []string{
		"/calls?agent_id=" + agentID + "&done=true",
		"/calls?search=Lead+4242",
		"/calls?search=555-000-7",
		"/calls?phone_number=%2B15550012345",
		"/calls?from=" + url.QueryEscape(start.Add(-time.Hour).Format(time.RFC3339)) + "&to=" + url.QueryEscape(time.Now().UTC().Format(time.RFC3339)) + "&done=true",
		"/calls",
	}
	var list, page []time.Duration
	byFilter := make([][]time.Duration, len(filters))
	for i := range consolePages {
		d, err := get(filters[i%len(filters)])
		if err != nil {
			return nil, err
		}
		list = append(list, d)
		byFilter[i%len(filters)] = append(byFilter[i%len(filters)], d)
		d, err = get(fmt.Sprintf("/calls/purge-%d", 1+(i*7919)%n))
		if err != nil {
			return nil, err
		}
		page = append(page, d)
	}
	for i, f := range filters {
		e.progress("console: %s p95 %.1f ms", f, ms(percentile(byFilter[i], 95)))
	}
	return &result{
		Metrics: []metric{
			{Name: "filtered list page p95", Value: ms(percentile(list, 95)), Unit: "ms", Decimals: 1, Target: atMost(ms(consoleListP95))},
			{Name: "list page p50", Value: ms(percentile(list, 50)), Unit: "ms", Decimals: 1},
			{Name: "call page p95", Value: ms(percentile(page, 95)), Unit: "ms", Decimals: 1, Target: atMost(ms(consoleCallP95))},
			{Name: "call page p50", Value: ms(percentile(page, 50)), Unit: "ms", Decimals: 1},
		},
		Notes: []string{fmt.Sprintf("%d calls (each with an analysis and a QC run, an LLM request per run and a delivery); %d list pages "+
			"rotating %d filters (agent+done, name search, digits search, phone number, from/to+done, none) and %d call pages of random calls, "+
			"signed in as admin; server time is the handler's ServeHTTP, in process, without the network", n, consolePages, len(filters), consolePages)},
	}, nil
}

func formRequest(path string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "127.0.0.1:1"
	return req
}
