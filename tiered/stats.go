package tiered

import (
	"fmt"

	"github.com/tierstore/tierstore/invalidation"
)

// Stats is a snapshot of a Store's counters, by tier, all cumulative.
type Stats struct {
	L1           L1Stats
	Redis        RedisStats
	Invalidation invalidation.Stats
}

// L1Stats counts the reads of this instance's memory.
type L1Stats struct {
	Hits     uint64 // reads served from memory
	Misses   uint64 // reads that went to Redis (Stale and Bypassed included)
	Stale    uint64 // entries found but refused by their validity stamp
	Bypassed uint64 // reads that skipped memory because the store was not Live
}

// RedisStats counts the store's work in Redis.
type RedisStats struct {
	Hits          uint64 // reads that found the key
	Misses        uint64 // reads that did not
	Errors        uint64 // failed reads and writes (not ErrNotFound)
	AccessReports uint64 // keys served from memory reported as used (see Config.AccessReportInterval)
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	a, b := s.l1.Stats(), s.src.stats()
	bypassed := s.bypassed.Load()
	st := Stats{
		L1:    L1Stats{Hits: a.Hits, Misses: a.Misses + bypassed, Stale: a.Stale, Bypassed: bypassed},
		Redis: RedisStats{Hits: s.l2Hits.Load(), Misses: s.l2Misses.Load(), Errors: s.errs.Load()},
		Invalidation: invalidation.Stats{
			Sent: s.sent.Load(), Received: s.received.Load(), Gaps: b.Gaps,
			Heartbeats: b.Beats, HeartbeatsHeard: b.Heard, Refusals: b.Refusals, Live: s.src.live(),
		},
	}
	if s.access != nil {
		st.Redis.AccessReports = s.access.sent.Load()
	}
	return st
}

// String formats the main counters on one line, for logs and the demo.
func (st Stats) String() string {
	return fmt.Sprintf("l1 %d hits/%d misses, redis %d hits/%d misses, invalidations %d sent/%d received, gaps %d",
		st.L1.Hits, st.L1.Misses, st.Redis.Hits, st.Redis.Misses, st.Invalidation.Sent, st.Invalidation.Received, st.Invalidation.Gaps)
}
