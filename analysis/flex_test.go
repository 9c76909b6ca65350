package analysis_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
)

func flexRequest() analysis.Request {
	req := simpleRequest("gpt-5-mini")
	req.ServiceTier = analysis.TierFlex
	return req
}

// flexUnavailable answers every flex request "resource unavailable" and
// every other one validly.
func flexUnavailable(req *openaitest.Request) openaitest.Reply {
	if req.ServiceTier != nil && *req.ServiceTier == analysis.TierFlex {
		return openaitest.FlexUnavailable()(req)
	}
	return openaitest.Valid()(req)
}

func total(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

func TestFlexRequestCarriesServiceTier(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	c, _ := newClient(t, srv, analysis.OpenAIConfig{})
	resp, err := c.Complete(context.Background(), flexRequest())
	require.NoError(t, err)
	require.Equal(t, `"flex"`, string(srv.Requests()[0].Fields["service_tier"]))
	require.Equal(t, analysis.TierFlex, resp.ServiceTier)
	require.False(t, resp.FlexFallback)

	// Without a tier nothing is sent, and the answer's tier is the default.
	resp, err = c.Complete(context.Background(), simpleRequest("gpt-5-mini"))
	require.NoError(t, err)
	require.NotContains(t, srv.Requests()[1].Fields, "service_tier")
	require.Equal(t, analysis.TierDefault, resp.ServiceTier)
}

func TestFlexUnavailableBacksOffThenFallsBackAfterTheDefaultWait(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.SetDefault(flexUnavailable)
	c, clock := newClient(t, srv, analysis.OpenAIConfig{})

	resp, err := c.Complete(context.Background(), flexRequest())
	require.NoError(t, err)
	require.True(t, resp.FlexFallback)
	require.Equal(t, analysis.TierDefault, resp.ServiceTier)
	reqs := srv.Requests()
	last := reqs[len(reqs)-1]
	require.NotContains(t, last.Fields, "service_tier", "the fallback is sent at the default tier")
	for _, r := range reqs[:len(reqs)-1] {
		require.Equal(t, `"flex"`, string(r.Fields["service_tier"]))
	}
	// Retried with growing backoff far beyond MaxAttempts, for exactly the
	// default wait, then sent at once at the default tier.
	require.Greater(t, len(reqs), analysis.DefaultMaxAttempts+1)
	sleeps := clock.Sleeps()
	require.Equal(t, analysis.DefaultFlexFallbackAfter, total(sleeps))
	require.Less(t, sleeps[0], sleeps[3], "backoff grows")
	for _, d := range sleeps {
		require.LessOrEqual(t, d, analysis.DefaultMaxRetryWait)
	}
}

func TestFlexRecoveringBeforeTheWaitStaysFlex(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.FlexUnavailable(), openaitest.FlexUnavailable())
	c, clock := newClient(t, srv, analysis.OpenAIConfig{FlexFallbackAfter: time.Minute})
	resp, err := c.Complete(context.Background(), flexRequest())
	require.NoError(t, err)
	require.False(t, resp.FlexFallback)
	require.Equal(t, analysis.TierFlex, resp.ServiceTier)
	require.Equal(t, 3, srv.Len())
	require.Len(t, clock.Sleeps(), 2)
}

func TestFlexFallbackAtOnce(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.SetDefault(flexUnavailable)
	c, clock := newClient(t, srv, analysis.OpenAIConfig{FlexFallbackAfter: -1})
	resp, err := c.Complete(context.Background(), flexRequest())
	require.NoError(t, err)
	require.True(t, resp.FlexFallback)
	require.Equal(t, 2, srv.Len())
	require.Empty(t, clock.Sleeps())
}

func TestRateLimitOnFlexIsNotAFallbackReason(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.RateLimited(2 * time.Second))
	c, clock := newClient(t, srv, analysis.OpenAIConfig{FlexFallbackAfter: -1})
	resp, err := c.Complete(context.Background(), flexRequest())
	require.NoError(t, err)
	require.False(t, resp.FlexFallback, "a rate limit is waited out on the same tier")
	require.Equal(t, []time.Duration{2 * time.Second}, clock.Sleeps())
}

func TestFlexAttemptHasItsOwnTimeout(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.SetDefault(openaitest.Slow(5*time.Second, openaitest.Valid()))
	// A short flex timeout stands in for the 15 minutes, to see it apply.
	c, _ := newClient(t, srv, analysis.OpenAIConfig{FlexTimeout: 50 * time.Millisecond, MaxAttempts: 1})
	start := time.Now()
	_, err := c.Complete(context.Background(), flexRequest())
	require.Less(t, time.Since(start), 2*time.Second)
	wait, ok := analysis.RetryAfter(err)
	require.True(t, ok, "a timed-out attempt is transient: %v", err)
	require.Positive(t, wait)
}

func TestAnalyzerRecordsTheServingTier(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.SetDefault(flexUnavailable)
	c, _ := newClient(t, srv, analysis.OpenAIConfig{FlexFallbackAfter: -1})
	a := &analysis.Analyzer{Model: c, DefaultModel: "gpt-4.1-mini"}
	plan := testPlan()
	plan.ServiceTier = analysis.TierFlex
	res, err := a.Analyze(context.Background(), plan, 1, testInput("Dana", "Yes"))
	require.NoError(t, err)
	require.Len(t, res.Requests, 1)
	require.True(t, res.Requests[0].FlexFallback)
	require.Equal(t, analysis.TierDefault, res.Requests[0].ServiceTier)
}

func TestObservationsAfterAFlexFallbackCountOnlyTransientFailures(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.FlexUnavailable(), openaitest.ServerError(), openaitest.ServerError())
	var obs observations
	// Two attempts: the flex answer does not count against them, so the
	// first server error is retried and the second is not.
	c, _ := newClient(t, srv, analysis.OpenAIConfig{FlexFallbackAfter: -1, MaxAttempts: 2, Observer: obs.observe})
	_, err := c.Complete(context.Background(), flexRequest())
	var apiErr *analysis.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusInternalServerError, apiErr.StatusCode)
	require.Equal(t, 3, srv.Len())
	seen := obs.all()
	require.Len(t, seen, 3)
	require.Equal(t, []bool{true, true, false}, []bool{seen[0].Retrying, seen[1].Retrying, seen[2].Retrying},
		"each observation says what Complete then did")
}
