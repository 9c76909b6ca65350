package openaitest

import "sync"

// OpenAI's prompt caching granularity.
const (
	minCachedTokens  = 1024
	cacheIncrement   = 128
	bytesPerToken    = 4
	promptsPerKeyCap = 256
)

// cacheEmulator remembers the prompts of earlier successful requests per
// prompt_cache_key.
type cacheEmulator struct {
	mu      sync.Mutex
	prompts map[string][]string
}

func newCacheEmulator() *cacheEmulator {
	return &cacheEmulator{prompts: map[string][]string{}}
}

// lookupAndStore returns the cached tokens of a prompt and remembers it for
// later requests. Only the most recent prompts of each key are kept, which
// bounds memory in long benchmarks; the static prefix they share is all
// that matters.
func (c *cacheEmulator) lookupAndStore(key, prompt string, promptTokens int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	best := 0
	for _, p := range c.prompts[key] {
		best = max(best, commonPrefix(p, prompt))
	}
	kept := append(c.prompts[key], prompt)
	if len(kept) > promptsPerKeyCap {
		kept = kept[len(kept)-promptsPerKeyCap:]
	}
	c.prompts[key] = kept

	if promptTokens < minCachedTokens {
		return 0
	}
	shared := best / bytesPerToken
	if shared < minCachedTokens {
		return 0
	}
	return min(shared/cacheIncrement*cacheIncrement, promptTokens)
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
