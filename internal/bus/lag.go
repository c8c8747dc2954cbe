package bus

import (
	"sync/atomic"
	"time"

	"github.com/tierstore/tierstore/invalidation"
)

// lagHistogram counts heartbeats' proof lags in the buckets of
// invalidation.ProofLagBounds. It is written a few times per
// HealthCheckInterval and read by Stats: plain atomics, no lock. A
// reader may see a proof in Counts before it is in Count or Sum.
type lagHistogram struct {
	counts [len(invalidation.ProofLagBounds) + 1]atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Int64 // ns
}

func (h *lagHistogram) observe(d time.Duration) {
	i := 0
	for i < len(invalidation.ProofLagBounds) && d > invalidation.ProofLagBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	h.sum.Add(int64(d))
}

func (h *lagHistogram) load() invalidation.ProofLag {
	p := invalidation.ProofLag{Count: h.count.Load(), Sum: time.Duration(h.sum.Load())}
	for i := range h.counts {
		p.Counts[i] = h.counts[i].Load()
	}
	return p
}
