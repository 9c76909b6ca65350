package crm

import (
	"math/rand/v2"
	"time"
)

// retrySchedule is Standard Webhooks' recommended schedule: the first
// attempt immediately, then retries after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h
// and 10 h: eight attempts over about 27.5 hours.
var retrySchedule = [...]time.Duration{
	0,
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	10 * time.Hour,
}

// MaxAttempts is how many attempts one delivery gets, the first included;
// after that many failures the delivery is given up.
const MaxAttempts = len(retrySchedule)

// DefaultDisableWindow is how long an integration may fail continuously
// before ShouldDisable says to disable it: five days, long enough to ride
// out a weekend outage plus a slow Monday fix (Svix, whose schedule Standard
// Webhooks recommends, uses the same).
const DefaultDisableWindow = 5 * 24 * time.Hour

// RetryDelay is how long to wait before the next attempt of a delivery that
// has made `attempts` attempts so far (0: none yet, so 0 wait; 1: the first
// failed, so 5 s; ...; 7 and beyond: 10 h). Stop once attempts reaches
// MaxAttempts. With River, pass job.Attempt from NextRetry. Wait at least an
// Attempt's RetryAfter when the server asked for more.
//
// jitter returns an adjustment for a base delay (positive or negative); nil
// means none. The result is never negative. Use Jitter in production so that
// deliveries failing together do not retry together.
func RetryDelay(attempts int, jitter func(time.Duration) time.Duration) time.Duration {
	if attempts <= 0 {
		return 0
	}
	base := retrySchedule[min(attempts, len(retrySchedule)-1)]
	if jitter == nil {
		return base
	}
	return max(base+jitter(base), 0)
}

// Jitter is a uniform random adjustment within ±10% of d, for RetryDelay.
func Jitter(d time.Duration) time.Duration {
	span := int64(d / 10)
	if span <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(2*span+1) - span)
}

// ShouldDisable reports whether an integration that has failed every
// delivery since firstFailure (zero: it is not failing) has failed for at
// least window by now. A window of 0 or less means DefaultDisableWindow.
func ShouldDisable(firstFailure, now time.Time, window time.Duration) bool {
	if firstFailure.IsZero() {
		return false
	}
	if window <= 0 {
		window = DefaultDisableWindow
	}
	return now.Sub(firstFailure) >= window
}
