package retention

import (
	"math"
	"time"
)

// pacer sizes and spaces the batches of one sweep from how long the last
// one took. A batch's time per call varies with the database's other load,
// the rows' size (transcripts, runs per call) and the cache, so neither a
// fixed size nor a fixed pause holds both a bound on how long one batch
// keeps its statement and row locks and a bound on the share of the
// database the purge takes:
//
//   - the next batch is sized to take about target at the last batch's
//     speed, between minBatch and max calls, growing at most twice per
//     batch so that one fast batch cannot launch a huge one;
//   - after a batch that took d, the pause is at least d*(1-share)/share,
//     so that the run is busy at most share of the time, whatever the
//     database's speed at the moment; minPause is a floor on top of that.
type pacer struct {
	max      int
	target   time.Duration
	share    float64
	minPause time.Duration
	size     int
}

// minBatch is the smallest batch the pacer chooses (when max allows): below
// it a batch's fixed costs (round trips, commit) dominate.
const minBatch = 50

func newPacer(max int, target time.Duration, share float64, minPause time.Duration) *pacer {
	return &pacer{max: max, target: target, share: share, minPause: minPause, size: min(max, firstBatch)}
}

// firstBatch is the size of a sweep's first batch (at most max): small
// enough to stay well under target on a slow, busy database with a cold
// cache; the pacer grows it from there.
const firstBatch = 200

// next is told that a batch of n calls took took, and returns the size of
// the next batch and the pause before it.
func (p *pacer) next(n int, took time.Duration) (size int, pause time.Duration) {
	if n > 0 && took > 0 {
		fit := int(float64(n) * float64(p.target) / float64(took))
		p.size = max(min(fit, 2*p.size, p.max), min(minBatch, p.max))
	}
	pause = p.minPause
	if p.share > 0 && p.share < 1 {
		pause = max(pause, time.Duration(math.Round(float64(took)*(1-p.share)/p.share)))
	}
	return p.size, pause
}
