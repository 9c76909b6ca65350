package analysis

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// providerLimit is what one answer's headers say of one of the provider's
// limits (requests or tokens): OpenAI's x-ratelimit-limit-*,
// x-ratelimit-remaining-* and x-ratelimit-reset-*. Providers that send none
// leave every has* false, and the local buckets then keep their own count.
type providerLimit struct {
	limit, remaining       float64
	reset                  time.Duration
	hasLimit, hasRemaining bool
	hasReset               bool
}

// readProviderLimit reads the headers of one limit, "requests" or
// "tokens". A malformed or negative value counts as absent (Azure sends -1
// when it does not know).
func readProviderLimit(h http.Header, kind string) providerLimit {
	var p providerLimit
	if h == nil {
		return p
	}
	p.limit, p.hasLimit = headerCount(h.Get("x-ratelimit-limit-" + kind))
	p.remaining, p.hasRemaining = headerCount(h.Get("x-ratelimit-remaining-" + kind))
	p.reset, p.hasReset = parseResetDuration(h.Get("x-ratelimit-reset-" + kind))
	if p.hasLimit && p.limit == 0 {
		p.hasLimit = false
	}
	return p
}

func headerCount(v string) (float64, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// parseResetDuration reads a reset header: OpenAI's duration format ("1s",
// "6m0s", "20ms", "1h2m3.5s", the format of Go's time.Duration), or a bare
// number of seconds as other providers send.
func parseResetDuration(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d, true
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second)), true
	}
	return 0, false
}
