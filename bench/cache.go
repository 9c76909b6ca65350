package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/postcall/postcall/analysis/openaitest"
)

// runCache measures prompt caching against a fake that applies OpenAI's
// rule (a prompt of at least 1,024 tokens reads from the cache the prefix it
// shares with an earlier request of the same prompt_cache_key, in steps of
// 128 tokens): the share of prompt tokens read from the cache over
// e.opts.cacheCalls calls of one agent, against the ideal share, the static
// prefix's tokens over all prompt tokens. Target: >= 95% of the ideal.
func runCache(ctx context.Context, e *env) (*result, error) {
	s, err := e.db.newSchema(ctx, "cache")
	if err != nil {
		return nil, err
	}
	defer s.close(ctx)
	recv := newReceiver()
	defer recv.close()
	model, stopModel := fakeModel(openaitest.WithCacheEmulation())
	defer stopModel()
	if err := applyPlan(ctx, s.Pool, recv.URL()); err != nil {
		return nil, err
	}
	w, err := startWorker(ctx, workerConfig{
		Pool: s.Pool, Schema: s.Name, ModelURL: model.URL, ModelKey: model.APIKey,
		Concurrency: e.opts.cacheConcurrency, Logger: e.log,
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.stop(ctx) }()
	enq, closeIngest, err := s.ingester(ctx, e.log)
	if err != nil {
		return nil, err
	}
	defer closeIngest()
	n := e.opts.cacheCalls
	recs, err := makeCalls("cache", n, 3, firstCallStart())
	if err != nil {
		return nil, err
	}
	if _, err := ingestAndWait(ctx, e, enq, s, recs, pollInterval); err != nil {
		return nil, err
	}

	// What postcall recorded of the provider's usage, as it bills it.
	var requests, hits int
	var prompt, cached int64
	err = s.Pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE cached_read_tokens > 0),
		       COALESCE(sum(prompt_tokens), 0), COALESCE(sum(cached_read_tokens), 0)
		FROM llm_requests`).Scan(&requests, &hits, &prompt, &cached)
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	if prompt == 0 {
		return nil, fmt.Errorf("no prompt tokens recorded for %d requests", requests)
	}
	st := staticPrefixes(model.Requests())
	if st.promptTokens != prompt {
		return nil, fmt.Errorf("postcall recorded %d prompt tokens, the model counted %d", prompt, st.promptTokens)
	}
	share := float64(cached) / float64(prompt)
	ideal := st.staticTokens / float64(prompt)
	e.progress("cache: %d requests, %d prompt tokens, %d cached (%.1f%%), ideal %.1f%%",
		requests, prompt, cached, 100*share, 100*ideal)

	return &result{
		Metrics: []metric{
			{Name: "cached-token share (cached / prompt tokens)", Value: 100 * share, Unit: "%", Decimals: 1},
			{Name: "ideal share (static prefix / prompt tokens)", Value: 100 * ideal, Unit: "%", Decimals: 1},
			{Name: "efficiency (share / ideal)", Value: 100 * share / ideal, Unit: "%", Decimals: 1, Target: atLeast(95)},
			{Name: "requests with a cache hit", Value: 100 * float64(hits) / float64(requests), Unit: "%", Decimals: 1},
		},
		Notes: []string{
			fmt.Sprintf("%d calls of one agent through the whole pipeline (LLM concurrency %d, the worker's default), "+
				"%d requests, %.0f prompt tokens per request on average (4 bytes per token, the fake's count); "+
				"cached and prompt tokens as postcall recorded them in llm_requests.", n, e.opts.cacheConcurrency, requests,
				float64(prompt)/float64(requests)),
			fmt.Sprintf("Static prefix: the longest prefix every prompt of one prompt_cache_key shares (schema, "+
				"instructions, field list or checklist), %s tokens. The ideal counts it as cached in every request; "+
				"the fake, like OpenAI, caches nothing on a key's first requests (those in flight before one "+
				"finished) and rounds each hit down to 128 tokens.", st.describe()),
		},
	}, nil
}

// prefixStats is what staticPrefixes found.
type prefixStats struct {
	// promptTokens counts all requests' prompt tokens as the fake does.
	promptTokens int64
	// staticTokens sums, over all requests, the tokens of the static
	// prefix of the request's cache key (fractional: bytes / 4).
	staticTokens float64
	// perSchema is the static prefix's tokens by response schema name
	// (analysis, qc).
	perSchema map[string]float64
}

// staticPrefixes finds, per prompt_cache_key, the longest prefix all of its
// prompts share (as the fake builds and counts them: openaitest's
// PromptText and Tokens).
func staticPrefixes(reqs []openaitest.Request) prefixStats {
	type group struct {
		first  string
		common int
		count  int
		schema string
	}
	groups := map[string]*group{}
	st := prefixStats{perSchema: map[string]float64{}}
	for i := range reqs {
		r := &reqs[i]
		text := r.PromptText()
		st.promptTokens += int64(openaitest.Tokens(text))
		key := ""
		if r.PromptCacheKey != nil {
			key = *r.PromptCacheKey
		}
		g := groups[key]
		if g == nil {
			name := ""
			if r.ResponseFormat != nil && r.ResponseFormat.JSONSchema != nil {
				name = r.ResponseFormat.JSONSchema.Name
			}
			g = &group{first: text, common: len(text), schema: name}
			groups[key] = g
		}
		g.common = min(g.common, commonPrefix(g.first, text))
		g.count++
	}
	for _, g := range groups {
		tokens := float64(g.common) / 4
		st.staticTokens += tokens * float64(g.count)
		st.perSchema[g.schema] = tokens
	}
	return st
}

// describe lists the static prefix's tokens per schema, e.g. "analysis
// 3012, qc 2240".
func (st prefixStats) describe() string {
	names := make([]string, 0, len(st.perSchema))
	for name := range st.perSchema {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %.0f", name, st.perSchema[name])
	}
	return strings.Join(parts, ", ")
}

// commonPrefix is the length in bytes of the prefix a and b share.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
