package analysis

import (
	"context"
	"math"
	"net/http"
	"sync"
	"time"
)

// limits holds the client-side request and token budgets and the
// concurrency cap shared by every request of one [OpenAI] client.
//
// The budgets follow the provider: every answer's x-ratelimit-* headers
// (see readProviderLimit) bring the local bucket in step with what the
// provider says is left, so that several replicas sharing one API key
// converge on the key's limit instead of each spending it in full. Until
// the provider's first answer (or probeWait) only one request is let out,
// so that a process starting next to busy replicas does not open with a
// full bucket the provider no longer has.
type limits struct {
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	requests *bucket       // nil = unlimited
	tokens   *bucket       // nil = unlimited
	slots    chan struct{} // nil = unlimited

	// probe is held by the one request allowed out before the first answer;
	// answered is closed by the first answer. Both nil without budgets.
	probe      chan struct{}
	answered   chan struct{}
	answerOnce sync.Once
}

// Bucket sizes: the request bucket holds one second's worth of requests (at
// least one) so that requests spread over the minute instead of bursting;
// the token bucket holds a whole minute's worth, because one request alone
// may need a large share of it.
const (
	requestBurstSeconds = 1
	tokenBurstSeconds   = 60
)

// newLimits builds the buckets. Zero means unlimited.
func newLimits(rpm, tpm, concurrency int, now func() time.Time, sleep func(context.Context, time.Duration) error) *limits {
	l := &limits{now: now, sleep: sleep}
	if rpm > 0 {
		l.requests = newBucket(float64(rpm), requestBurstSeconds, now())
	}
	if tpm > 0 {
		l.tokens = newBucket(float64(tpm), tokenBurstSeconds, now())
	}
	if concurrency > 0 {
		l.slots = make(chan struct{}, concurrency)
	}
	if l.requests != nil || l.tokens != nil {
		l.probe = make(chan struct{}, 1)
		l.answered = make(chan struct{})
	}
	return l
}

// concurrency is the cap on requests in flight; 0 when there is none.
func (l *limits) concurrency() int { return cap(l.slots) }

// ticket is one admitted request: what it reserved, for the observation of
// its answer, and the release of its concurrency slot.
type ticket struct {
	release  func()
	sent     time.Time
	requests mark
	tokens   mark
}

// acquire waits for a concurrency slot, one request and the given tokens.
// It returns the request's ticket and the time spent waiting. A request
// charging more tokens than the bucket holds is charged the whole bucket.
func (l *limits) acquire(ctx context.Context, tokens int) (*ticket, time.Duration, error) {
	start := l.now()
	t := &ticket{release: func() {}}
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
			t.release = func() { <-l.slots }
		case <-ctx.Done():
			return nil, l.now().Sub(start), ctx.Err()
		}
	}
	if err := l.waitFirstAnswer(ctx, t); err != nil {
		t.release()
		return nil, l.now().Sub(start), err
	}
	var err error
	if t.requests, err = l.wait(ctx, l.requests, 1); err != nil {
		t.release()
		return nil, l.now().Sub(start), err
	}
	if t.tokens, err = l.wait(ctx, l.tokens, float64(tokens)); err != nil {
		l.requests.cancel(t.requests, l.now())
		t.release()
		return nil, l.now().Sub(start), err
	}
	t.sent = l.now()
	l.requests.markSent(&t.requests)
	l.tokens.markSent(&t.tokens)
	return t, t.sent.Sub(start), nil
}

// probeWait is the longest a request waits for the provider's first answer
// before it leaves anyway.
const probeWait = time.Second

// waitFirstAnswer lets requests through freely once the provider has
// answered; before that, one, then the others after its answer or after
// probeWait.
func (l *limits) waitFirstAnswer(ctx context.Context, t *ticket) error {
	if l.answered == nil {
		return nil
	}
	select {
	case <-l.answered:
		return nil
	default:
	}
	select {
	case l.probe <- struct{}{}:
		release := t.release
		t.release = func() { <-l.probe; release() }
		return nil
	default:
	}
	// A slow first answer holds the others back for probeWait at most.
	timer := time.NewTimer(probeWait)
	defer timer.Stop()
	select {
	case <-l.answered:
		return nil
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait reserves n from the bucket and sleeps through the delay with our
// sleep function, so a fake clock can drive it in tests. When the provider's
// headers lowered the bucket during the sleep, it sleeps for that too.
func (l *limits) wait(ctx context.Context, b *bucket, n float64) (mark, error) {
	if b == nil || n <= 0 {
		return mark{}, nil
	}
	m, d := b.reserve(n, l.now())
	for d > 0 {
		if err := l.sleep(ctx, d); err != nil {
			b.cancel(m, l.now())
			return mark{}, err
		}
		d = b.extraWait(&m, l.now())
	}
	return m, nil
}

// unanswered ends a request that got no answer (network error, timeout).
func (l *limits) unanswered(t *ticket) {
	l.requests.done(t.requests)
	l.tokens.done(t.tokens)
}

// observe brings the buckets in step with an answer's rate-limit headers.
// status is the answer's HTTP status; limited says a 429 was a rate limit
// (not flex capacity or quota), which holds the budget it ran out of until
// its reset; retryAfter is the provider's suggested wait, when it gave one.
func (l *limits) observe(t *ticket, header http.Header, status int, limited bool, retryAfter time.Duration, hasRetryAfter bool) {
	if l.answered != nil {
		l.answerOnce.Do(func() { close(l.answered) })
	}
	now := l.now()
	// The provider charges no request it refuses with a 429.
	rejected := status == http.StatusTooManyRequests
	req, tok := readProviderLimit(header, "requests"), readProviderLimit(header, "tokens")
	// Which budget a 429 ran out of: the one whose header says so; both
	// when the headers do not tell.
	reqShort := req.hasRemaining && req.remaining < 1
	tokShort := tok.hasRemaining && tok.remaining < t.tokens.n
	if !reqShort && !tokShort {
		reqShort, tokShort = true, true
	}
	hold := func(short bool, p providerLimit) time.Duration {
		switch {
		case !limited || !short:
			return 0
		case hasRetryAfter:
			return retryAfter
		case p.hasReset:
			return p.reset
		}
		return time.Second
	}
	l.requests.observe(t.requests, t.sent, req, rejected, hold(reqShort, req), now)
	l.tokens.observe(t.tokens, t.sent, tok, rejected, hold(tokShort, tok), now)
}

// Tuning of the share estimate. A client's share of a key is what it spent
// of what the key spent lately (the provider's reports show the total),
// with older spending weighing less after shareTimeConstant. Between
// reports each client refills at its share of aimedUtilization of the
// limit, so that however the key is split their refills add up to a little
// less than the limit (had they spent more, each would shrink by the same
// factor) and the rest absorbs their estimates' noise instead of 429s. Each
// report then sets the bucket from what the provider has left, so clients
// whose answers keep coming follow the provider's own refill: the limits
// benchmark has them use over 99% of the limit, not 95%. A client keeps at
// least minShare, so that it still sends and learns.
const (
	shareTimeConstant = 10 * time.Second
	aimedUtilization  = 0.95
	minShare          = 0.05
)

// bucket is one token bucket (requests or tokens) that follows the
// provider. Reservations may take it below zero; the deficit is the wait of
// the requests queued behind it.
type bucket struct {
	mu sync.Mutex

	perMinute    float64 // the configured limit
	burstSeconds float64
	limit        float64 // per minute: the configured limit or the provider's, the lower
	rate         float64 // refill per second: our share of the limit
	tokens       float64
	last         time.Time
	queued       float64 // reserved and not sent yet
	sentTotal    float64 // every reservation sent so far, cumulative
	inFlight     float64 // sent and not answered yet
	lowered      float64 // every correction so far, cumulative: down positive, up negative
	holdUntil    time.Time

	// report is the provider's last report, of the latest request sent
	// that got one.
	report providerReport
	// capacity is the most the provider's bucket was seen to hold.
	capacity float64
	// ours and others are what we and the key's other clients spent
	// lately, decayed with shareTimeConstant.
	ours, others float64
}

// providerReport is what the provider said was left after one request.
type providerReport struct {
	sent      time.Time // when the request left
	sentTotal float64   // bucket.sentTotal once it left; 0: no report yet
	remaining float64
}

// mark is what one reservation took, for its observation and cancellation.
type mark struct {
	n       float64
	sent    float64 // bucket.sentTotal once this reservation was sent
	lowered float64 // bucket.lowered the reservation has waited for
}

func newBucket(perMinute, burstSeconds float64, now time.Time) *bucket {
	b := &bucket{perMinute: perMinute, burstSeconds: burstSeconds, limit: perMinute, rate: perMinute / 60, last: now}
	b.tokens = b.burst()
	return b
}

// burst is the most the bucket holds: burstSeconds of its limit, at least
// one.
func (b *bucket) burst() float64 {
	return max(1, b.limit*b.burstSeconds/60)
}

// advance refills the bucket up to now.
func (b *bucket) advance(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.burst(), b.tokens+b.rate*dt)
		b.last = now
	}
}

// reserve takes n (at most the whole bucket) and returns how long the
// request must wait for it.
func (b *bucket) reserve(n float64, now time.Time) (mark, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	n = min(n, b.burst())
	b.tokens -= n
	b.queued += n
	m := mark{n: n, lowered: b.lowered}
	var d time.Duration
	if b.tokens < 0 {
		d = seconds(-b.tokens / b.rate)
	}
	return m, max(d, b.holdUntil.Sub(now))
}

// extraWait is the further wait of a reservation that has slept its delay:
// the net downward corrections made since, and what is left of a hold.
func (b *bucket) extraWait(m *mark, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := seconds((b.lowered - m.lowered) / b.rate)
	m.lowered = b.lowered
	return max(d, b.holdUntil.Sub(now))
}

// markSent records that the reservation's request leaves now: requests
// reach the provider about in the order they leave, so a report of the
// provider counts the requests sent before its own and none sent after.
func (b *bucket) markSent(m *mark) {
	if b == nil || m.n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queued -= m.n
	b.sentTotal += m.n
	b.inFlight += m.n
	m.sent = b.sentTotal
}

// done ends a sent request's time in flight.
func (b *bucket) done(m mark) {
	if b == nil || m.n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inFlight -= m.n
}

// cancel gives back a reservation that was not sent.
func (b *bucket) cancel(m mark, now time.Time) {
	if b == nil || m.n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	b.tokens = min(b.burst(), b.tokens+m.n)
	b.queued -= m.n
}

// observe brings the bucket in step with the provider's report p on the
// request reserved as m and sent at sent. hold > 0 (a 429) keeps the bucket
// from refilling above what the provider says, and every request from
// leaving, until it has passed.
func (b *bucket) observe(m mark, sent time.Time, p providerLimit, rejected bool, hold time.Duration, now time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inFlight -= m.n
	b.advance(now)
	if hold > 0 {
		b.holdUntil = maxTime(b.holdUntil, now.Add(hold))
	}
	providerRate := b.perMinute / 60
	if p.hasLimit && p.limit > 0 {
		b.limit = min(b.perMinute, p.limit)
		b.rate, b.tokens = min(b.rate, b.limit/60), min(b.tokens, b.burst())
		providerRate = p.limit / 60
	}
	if !p.hasRemaining {
		return
	}
	last := b.report
	ours := m.sent - last.sentTotal // ours between the two reports, this one included
	if rejected {
		ours -= m.n // the provider charges no rejected request
		b.capacity = max(b.capacity, p.remaining)
	} else {
		b.capacity = max(b.capacity, p.remaining+m.n)
	}
	// Reports are used in the order their requests left (m.sent counts
	// what left before), not the order they come back in.
	if last.sentTotal > 0 && m.sent > last.sentTotal {
		// What the provider's bucket would hold now had only we spent
		// since its last report; the rest went to other clients. Our
		// requests reach the provider in about the order they leave, not
		// exactly: one report may show too much foreign spending and the
		// next as much too little, so the sum keeps the sign.
		dt := max(0, sent.Sub(last.sent).Seconds())
		predicted := min(b.capacity, last.remaining+providerRate*dt) - ours
		foreign := predicted - p.remaining
		keep := math.Exp(-dt / shareTimeConstant.Seconds())
		b.ours = b.ours*keep + ours
		b.others = b.others*keep + foreign
	}
	if m.sent > last.sentTotal {
		b.report = providerReport{sent: sent, sentTotal: m.sent, remaining: p.remaining}
	}
	share := 1.0
	if others := max(0, b.others); b.ours > 0 && others > 0 {
		share = max(minShare, b.ours/(b.ours+others))
	}
	b.rate = min(b.limit/60, aimedUtilization*providerRate*share)
	// Our share of what the provider has left, plus our refill since the
	// report, minus what we reserved and did not send yet, what is in
	// flight, and a reserve of one request (two when sharing). A request in flight that
	// reached the provider before the reported one is counted twice. What
	// this keeps back at the provider costs no throughput (the refill rate
	// is the same) and absorbs the requests that reach it in another order
	// than they left and the clients' estimates of their shares adding up
	// to a little more than the whole.
	reserve := m.n
	if share < 1 {
		// Sharing the key: the clients' shares are estimates that can add
		// up to more than the whole at the same moment, so each keeps back
		// a second request.
		reserve = 2 * m.n
	}
	target := share*p.remaining + b.rate*now.Sub(sent).Seconds() - b.queued - b.inFlight - reserve
	target = min(target, b.burst())
	if target < b.tokens || !now.Before(b.holdUntil) {
		b.lowered += b.tokens - target
		b.tokens = target
	}
}

func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(s * float64(time.Second)))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
