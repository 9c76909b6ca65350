package analysis_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis"
	"github.com/postcall/postcall/analysis/openaitest"
)

// clientOnClock is newClient on a given clock, so that a fake provider and
// several clients can share it.
func clientOnClock(t *testing.T, srv *openaitest.Server, clock *fakeClock, cfg analysis.OpenAIConfig) *analysis.OpenAI {
	t.Helper()
	cfg.BaseURL, cfg.APIKey = srv.URL, srv.APIKey
	cfg.Now, cfg.Sleep = clock.Now, clock.Sleep
	c, err := analysis.NewOpenAI(cfg)
	require.NoError(t, err)
	return c
}

// withHeaders answers validly with the given headers.
func withHeaders(kv ...string) openaitest.Responder {
	return func(req *openaitest.Request) openaitest.Reply {
		rep := openaitest.Valid()(req)
		rep.Header = http.Header{}
		for i := 0; i < len(kv); i += 2 {
			rep.Header.Set(kv[i], kv[i+1])
		}
		return rep
	}
}

func bigRequest() analysis.Request {
	req := simpleRequest("gpt-4.1-mini")
	req.MaxTokens = 2000
	return req
}

func TestBucketFollowsTheProvidersRemainingTokens(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	// Another client of the key has spent most of it: 1,000 tokens left.
	srv.SetDefault(withHeaders("x-ratelimit-limit-tokens", "6000", "x-ratelimit-remaining-tokens", "1000",
		"x-ratelimit-reset-tokens", "50s"))
	clock := newFakeClock()
	c := clientOnClock(t, srv, clock, analysis.OpenAIConfig{TPM: 6000, RPM: -1, Concurrency: -1})
	req := bigRequest()
	charge := float64(analysis.EstimateTokens(req) + req.MaxTokens)

	_, err := c.Complete(context.Background(), req)
	require.NoError(t, err)
	require.Empty(t, clock.Sleeps(), "the first request fits the configured bucket")
	_, err = c.Complete(context.Background(), req)
	require.NoError(t, err)
	// Without the headers the bucket would hold 6000-charge, enough. It
	// holds what the provider has left instead, less a reserve of one
	// request, refilled at 95% of 100 tokens/s (the share of the limit a
	// key's clients aim at).
	sleeps := clock.Sleeps()
	require.Len(t, sleeps, 1)
	want := time.Duration((charge - (1000 - charge)) / (0.95 * 100) * float64(time.Second))
	require.InDelta(t, want, sleeps[0], float64(time.Millisecond))
}

func TestNoHeadersKeepsTheLocalCount(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	clock := newFakeClock()
	c := clientOnClock(t, srv, clock, analysis.OpenAIConfig{TPM: 6000, RPM: -1, Concurrency: -1})
	req := bigRequest()
	for range 2 {
		_, err := c.Complete(context.Background(), req)
		require.NoError(t, err)
	}
	require.Empty(t, clock.Sleeps(), "a provider without rate-limit headers leaves the configured bucket as it is")
}

func TestProvidersLowerLimitWins(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := openaitest.NewServer(t, openaitest.WithRateLimits(openaitest.RateLimits{TPM: 6000, Now: clock.Now}))
	// Configured far above what the key really has (a wrong
	// POSTCALL_LLM_TPM): the headers' limit replaces it.
	c := clientOnClock(t, srv, clock, analysis.OpenAIConfig{TPM: 600_000, RPM: -1, Concurrency: -1})
	start := clock.Now()
	for range 12 {
		_, err := c.Complete(context.Background(), bigRequest())
		require.NoError(t, err)
	}
	adm := srv.Admissions()
	require.Len(t, adm, 12)
	for _, a := range adm {
		require.False(t, a.Limited, "no request may be answered 429")
	}
	// 12 requests of ~2,000 tokens against 6,000 TPM: most of them waited
	// for the provider's refill.
	require.Greater(t, clock.Now().Sub(start), 3*time.Minute)
}

func TestProvidersLowerLimitWinsWithoutRemainingCounts(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	// A provider that reports its limit but not what is left.
	srv.SetDefault(withHeaders("x-ratelimit-limit-tokens", "6000"))
	clock := newFakeClock()
	c := clientOnClock(t, srv, clock, analysis.OpenAIConfig{TPM: 600_000, RPM: -1, Concurrency: -1})
	req := bigRequest()
	charge := analysis.EstimateTokens(req) + req.MaxTokens
	for range 12 {
		_, err := c.Complete(context.Background(), req)
		require.NoError(t, err)
	}
	// After the first answer the bucket holds 6,000 tokens and refills at
	// 100 a second: the other 11 requests wait for all they take beyond it.
	var slept time.Duration
	for _, d := range clock.Sleeps() {
		slept += d
	}
	want := time.Duration(float64(11*charge-6000) / 100 * float64(time.Second))
	require.InDelta(t, want, slept, float64(time.Second))
}

func TestRateLimitedAnswerHoldsTheBucketUntilItsReset(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	limited := func(req *openaitest.Request) openaitest.Reply {
		rep := openaitest.RateLimited(5 * time.Second)(req)
		rep.Header.Set("x-ratelimit-limit-tokens", "600000")
		rep.Header.Set("x-ratelimit-remaining-tokens", "0")
		rep.Header.Set("x-ratelimit-reset-tokens", "5s")
		return rep
	}
	srv.Script(limited)
	clock := newFakeClock()
	// One attempt per call, so that the 429 comes back at once instead of
	// being slept through by the retry: what is asserted is that the next
	// request waits for the reset on its own.
	c := clientOnClock(t, srv, clock, analysis.OpenAIConfig{TPM: 600_000, RPM: -1, Concurrency: -1, MaxAttempts: 1})

	_, err := c.Complete(context.Background(), simpleRequest("gpt-4.1-mini"))
	wait, ok := analysis.RetryAfter(err)
	require.True(t, ok)
	require.Equal(t, 5*time.Second, wait)
	require.Empty(t, clock.Sleeps())

	_, err = c.Complete(context.Background(), simpleRequest("gpt-4.1-mini"))
	require.NoError(t, err)
	sleeps := clock.Sleeps()
	require.NotEmpty(t, sleeps)
	var slept time.Duration
	for _, d := range sleeps {
		slept += d
	}
	require.GreaterOrEqual(t, slept, 5*time.Second, "nothing leaves before the provider's reset")
}

func TestOnlyOneRequestBeforeTheFirstAnswer(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	var mu sync.Mutex
	var firstDone time.Time
	var arrivals []time.Time
	srv.SetDefault(func(req *openaitest.Request) openaitest.Reply {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		first := req.N == 0
		mu.Unlock()
		if first {
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			firstDone = time.Now()
			mu.Unlock()
		}
		return withHeaders("x-ratelimit-limit-tokens", "600000", "x-ratelimit-remaining-tokens", "590000")(req)
	})
	// Real clock: the requests really race.
	c, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: srv.URL, APIKey: srv.APIKey, TPM: 600_000, RPM: 6000, Concurrency: 8})
	require.NoError(t, err)
	completeAtOnce(t, c, 6)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, arrivals, 6)
	for _, at := range arrivals[1:] {
		require.False(t, at.Before(firstDone), "a request left before the provider's first answer")
	}
}

func TestReplicasSharingAKeyConverge(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	const tpm = 60_000
	srv := openaitest.NewServer(t, openaitest.WithRateLimits(openaitest.RateLimits{TPM: tpm, Now: clock.Now}))
	// Three replicas, each told the key's whole limit, as each replica of
	// one deployment is. They take turns on one fake clock: a replica's
	// limit wait lets time pass for all of them.
	var replicas []*analysis.OpenAI
	for range 3 {
		replicas = append(replicas, clientOnClock(t, srv, clock, analysis.OpenAIConfig{TPM: tpm, RPM: -1, Concurrency: -1}))
	}
	start := clock.Now()
	for i := range 300 {
		_, err := replicas[i%3].Complete(context.Background(), bigRequest())
		require.NoError(t, err)
	}
	// After the first minute (the provider's full bucket at start), count
	// what was accepted and refused.
	from := start.Add(time.Minute)
	var accepted, limited, total int
	var last time.Time
	for _, a := range srv.Admissions() {
		if a.At.Before(from) {
			continue
		}
		total++
		last = a.At
		if a.Limited {
			limited++
			continue
		}
		accepted += a.Charge
	}
	minutes := last.Sub(from).Minutes()
	require.Greater(t, minutes, 3.0)
	perMinute := float64(accepted) / minutes
	t.Logf("%d requests, %d answered 429; %.0f tokens/min accepted of %d", total, limited, perMinute, tpm)
	require.LessOrEqual(t, float64(limited), 0.02*float64(total), "429s: replicas must not storm the key")
	require.GreaterOrEqual(t, perMinute, 0.85*tpm, "replicas must use the key's limit")
}

func TestASlowFirstAnswerHoldsTheOthersBackOneSecondAtMost(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer(t)
	arrived := make(chan struct{}, 3)
	srv.SetDefault(func(req *openaitest.Request) openaitest.Reply {
		arrived <- struct{}{}
		if req.N == 0 {
			// The first answer waits for the other two requests.
			for range 2 {
				select {
				case <-arrived:
				case <-time.After(5 * time.Second):
				}
			}
		}
		return openaitest.Valid()(req)
	})
	c, err := analysis.NewOpenAI(analysis.OpenAIConfig{BaseURL: srv.URL, APIKey: srv.APIKey})
	require.NoError(t, err)
	start := time.Now()
	completeAtOnce(t, c, 3)
	require.Less(t, time.Since(start), 4*time.Second, "the others left after about a second, before the first answer")
}
