package analysis

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// limits holds the client-side request and token budgets and the
// concurrency cap shared by every request of one [OpenAI] client.
type limits struct {
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	requests *rate.Limiter // nil = unlimited
	tokens   *rate.Limiter // nil = unlimited
	slots    chan struct{} // nil = unlimited
}

// newLimits builds the buckets. The request bucket holds one second's worth
// of requests (at least one) so that requests spread over the minute instead
// of bursting; the token bucket holds a whole minute's worth, because one
// request alone may need a large share of it.
func newLimits(rpm, tpm, concurrency int, now func() time.Time, sleep func(context.Context, time.Duration) error) *limits {
	l := &limits{now: now, sleep: sleep}
	if rpm > 0 {
		l.requests = rate.NewLimiter(rate.Limit(float64(rpm)/60), max(1, rpm/60))
	}
	if tpm > 0 {
		l.tokens = rate.NewLimiter(rate.Limit(float64(tpm)/60), tpm)
	}
	if concurrency > 0 {
		l.slots = make(chan struct{}, concurrency)
	}
	return l
}

// concurrency is the cap on requests in flight; 0 when there is none.
func (l *limits) concurrency() int { return cap(l.slots) }

// acquire waits for a concurrency slot, one request and the given tokens.
// It returns the release function and the time spent waiting. A request
// charging more tokens than the bucket holds is charged the whole bucket.
func (l *limits) acquire(ctx context.Context, tokens int) (release func(), waited time.Duration, err error) {
	start := l.now()
	release = func() {}
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
			release = func() { <-l.slots }
		case <-ctx.Done():
			return nil, l.now().Sub(start), ctx.Err()
		}
	}
	if err := l.wait(ctx, l.requests, 1); err != nil {
		release()
		return nil, l.now().Sub(start), err
	}
	if err := l.wait(ctx, l.tokens, tokens); err != nil {
		release()
		return nil, l.now().Sub(start), err
	}
	return release, l.now().Sub(start), nil
}

// wait reserves n from the bucket at our clock's time and sleeps through the
// delay with our sleep function, so a fake clock can drive it in tests.
func (l *limits) wait(ctx context.Context, lim *rate.Limiter, n int) error {
	if lim == nil || n <= 0 {
		return nil
	}
	n = min(n, lim.Burst())
	now := l.now()
	r := lim.ReserveN(now, n)
	if !r.OK() {
		// Unreachable: n <= burst and the limit is finite.
		return nil
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if err := l.sleep(ctx, d); err != nil {
		r.CancelAt(l.now())
		return err
	}
	return nil
}
