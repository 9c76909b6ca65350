package analysis

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrContextTooLong means the request would not fit the model's context
// window; nothing was sent. The returned error wraps it with the numbers.
var ErrContextTooLong = errors.New("request exceeds the model's context window")

// APIError is a failed Chat Completions request, after our retries. It holds
// the HTTP status and the provider's error code and message, never the API
// key or prompt text.
type APIError struct {
	// StatusCode is the HTTP status; 0 when no response arrived (network
	// error, timeout).
	StatusCode int
	// Code is the provider's error code, e.g. "rate_limit_exceeded" or
	// "insufficient_quota"; empty when it gave none.
	Code string
	// Type is the provider's error type, e.g. "invalid_request_error".
	Type string
	// Message is the provider's error message, or the network error,
	// shortened to at most 300 bytes.
	Message string
	// Attempts is how many HTTP requests were made.
	Attempts int
	// Transient means the same request may succeed later.
	Transient bool
	// Wait is the suggested wait before trying again when Transient: the
	// provider's retry-after when it sent one, else our next backoff.
	Wait time.Duration
}

// Error describes the failure without prompt text or credentials.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("chat completion failed")
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.StatusCode > 0 {
		fmt.Fprintf(&b, ": status %d", e.StatusCode)
	} else {
		b.WriteString(": no response")
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Transient {
		fmt.Fprintf(&b, "; transient, retry in %s", e.Wait)
	}
	return b.String()
}

// RetryAfter reports whether err is a transient provider failure (rate limit,
// server error, network error) and how long the caller should wait before
// trying again, e.g. by snoozing its job.
func RetryAfter(err error) (time.Duration, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.Transient {
		return ae.Wait, true
	}
	return 0, false
}

// InvalidOutputError means the model's answer broke the plan's schema even
// after one repair request.
type InvalidOutputError struct {
	// Kind is "analysis" or "qc".
	Kind string
	// Violations are the problems of the last answer, one per line of the
	// repair message. They name fields, never quote call content.
	Violations []string
}

// Error lists the violations.
func (e *InvalidOutputError) Error() string {
	return fmt.Sprintf("invalid %s output after repair: %s", e.Kind, strings.Join(e.Violations, "; "))
}

// shorten cuts s to at most n bytes on a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
