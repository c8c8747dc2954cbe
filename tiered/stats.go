package tiered

import "fmt"

// Stats is a snapshot of a Store's counters, all cumulative.
type Stats struct {
	L1Hits   uint64 // reads served from memory
	L1Misses uint64 // reads that went to Redis (including the two below)
	L1Stale  uint64 // L1 entries found but refused by their validity stamp
	L1Bypass uint64 // reads that skipped L1 because the store was not Live
	L2Hits   uint64 // Redis reads that found the key
	L2Misses uint64 // Redis reads that did not

	InvalidationsSent       uint64 // writes made (Redis reports them; with OwnWritesOnly, each published its invalidation)
	InvalidationsReceived   uint64 // invalidations applied to L1: changes by others, as Redis reported them
	InvalidationsIgnoredOwn uint64 // with OwnWritesOnly: own invalidations echoed back and skipped
	MalformedMessages       uint64 // channel payloads that were not invalidations (or keys outside KeyPrefix)

	Gaps            uint64 // gaps (lost subscription or registration, flush, lease expired): each flushed L1
	Subscriptions   uint64 // subscriptions confirmed: 1 + resubscriptions
	Heartbeats      uint64 // heartbeats Redis acknowledged (four per HealthCheckInterval while healthy)
	HeartbeatsHeard uint64 // heartbeats that came back on the subscription, each renewing the lease
	Refusals        uint64 // commands of the subscription or heartbeats Redis refused (ACL, renamed command, auth): see Health
	Errors          uint64 // failed Redis reads and writes (not ErrNotFound)

	AccessReports uint64 // keys served from L1 reported to Redis (see Config.AccessReportInterval)
	Live          bool   // see Store.Live
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	a, b := s.l1.Stats(), s.src.stats()
	st := Stats{
		L1Hits: a.Hits, L1Misses: a.Misses + s.bypassed.Load(), L1Stale: a.Stale, L1Bypass: s.bypassed.Load(),
		L2Hits: s.l2Hits.Load(), L2Misses: s.l2Misses.Load(),
		InvalidationsSent: s.sent.Load(), InvalidationsReceived: s.received.Load(),
		InvalidationsIgnoredOwn: s.ignoredOwn.Load(), MalformedMessages: b.Malformed,
		Gaps: b.Gaps, Subscriptions: b.Subscriptions, Heartbeats: b.Beats, HeartbeatsHeard: b.Heard,
		Refusals: b.Refusals, Errors: s.errs.Load(), Live: s.src.live(),
	}
	if s.access != nil {
		st.AccessReports = s.access.sent.Load()
	}
	return st
}

// String formats the main counters on one line, for logs and the demo.
func (st Stats) String() string {
	return fmt.Sprintf("l1 %d hits/%d misses, l2 %d hits/%d misses, invalidations %d sent/%d received, gaps %d",
		st.L1Hits, st.L1Misses, st.L2Hits, st.L2Misses, st.InvalidationsSent, st.InvalidationsReceived, st.Gaps)
}
