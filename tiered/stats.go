package tiered

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/invalidation"
)

// Stats is a snapshot of a Store's counters, by tier, all cumulative but
// for the L1 sizes (Entries, Bytes) and Invalidation.Live.
type Stats struct {
	L1           L1Stats
	Redis        RedisStats
	Invalidation invalidation.Stats
	FailSafe     FailSafeStats
}

// L1Stats counts the reads of this instance's memory, and what it holds.
type L1Stats struct {
	Hits     uint64 // reads served from memory
	Misses   uint64 // reads that went to Redis (Stale and Bypassed included)
	Stale    uint64 // entries found but refused by their validity stamp
	Bypassed uint64 // reads that skipped memory because the store was not Live
	// Entries and Bytes are what memory holds now (not cumulative): the
	// entries (dead ones too, until read or evicted) and their charged
	// size, bounded by Config.L1MaxBytes. A fill shows here shortly
	// after the read that made it returns.
	Entries, Bytes uint64
	Evictions      uint64 // entries pushed out to make room for others
}

// RedisStats counts the store's work in Redis.
type RedisStats struct {
	Hits   uint64 // reads that found the key
	Misses uint64 // reads that did not
	// Errors counts the failed reads and writes (not ErrNotFound, not a
	// conflict, not a read whose caller left); ErrorsBy the same by class
	// (indexed by ErrorClass), summing to Errors.
	Errors        uint64
	ErrorsBy      [NumErrorClasses]uint64
	AccessReports uint64 // keys served from memory reported as used (see Config.AccessReportInterval)
}

// ErrorClass is the class of a failed Redis call, by the sentinel error
// it wraps.
type ErrorClass uint8

// The classes of RedisStats.ErrorsBy.
const (
	ErrorUnavailable ErrorClass = iota // tierstore.ErrUnavailable: Redis down, unreachable or too slow
	ErrorRefused                       // tierstore.ErrRefused: an ACL, a renamed command, credentials, OOM
	ErrorCorrupt                       // tierstore.ErrCorrupt: bytes in Redis that are no value of this store
	ErrorOther                         // anything else: a write whose caller left before it was sent

	// NumErrorClasses is the number of classes: the length of
	// RedisStats.ErrorsBy.
	NumErrorClasses
)

var errorClassNames = [NumErrorClasses]string{"unavailable", "refused", "corrupt", "other"}

// String returns the class's name, a metric attribute value:
// "unavailable", "refused", "corrupt" or "other".
func (c ErrorClass) String() string {
	if c < NumErrorClasses {
		return errorClassNames[c]
	}
	return "unknown"
}

// classOf returns the class of err: by the sentinel it wraps or, for a
// write's outcome, which comes raw from the connection, by the sentinel
// the caller's error wraps (rediskv.Wrap). A passed deadline is Redis not
// answering in time, as the caller's error says (see ctxError).
func classOf(err error) ErrorClass {
	for range 2 {
		switch {
		case errors.Is(err, tierstore.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
			return ErrorUnavailable
		case errors.Is(err, tierstore.ErrRefused):
			return ErrorRefused
		case errors.Is(err, tierstore.ErrCorrupt):
			return ErrorCorrupt
		case errors.Is(err, context.Canceled):
			return ErrorOther // the caller left; Redis did not fail
		}
		err = rediskv.Wrap(context.Background(), "", err)
	}
	return ErrorOther
}

// countError counts a failed Redis call (never on the hit path).
func (s *Store) countError(err error) { s.errs[classOf(err)].Add(1) }

// Stats returns the counters. It is meant for metrics, polled: it takes
// L1's policy lock once (for Bytes), and a Cluster's shard list's.
func (s *Store) Stats() Stats {
	a, b := s.l1.Stats(), s.src.stats()
	bypassed := s.bypassed.Load()
	st := Stats{
		L1: L1Stats{
			Hits: a.Hits, Misses: a.Misses + bypassed, Stale: a.Stale, Bypassed: bypassed,
			Entries: a.Entries, Bytes: a.Bytes, Evictions: a.Evictions,
		},
		Redis: RedisStats{Hits: s.l2Hits.Load(), Misses: s.l2Misses.Load()},
		Invalidation: invalidation.Stats{
			Sent: s.sent.Load(), Received: s.received.Load(), Gaps: b.Gaps, GapsBy: b.GapsBy,
			Heartbeats: b.Beats, HeartbeatsHeard: b.Heard, Refusals: b.Refusals, ProofLag: b.ProofLag,
			Live: s.src.live(),
		},
	}
	for c := range s.errs {
		n := s.errs[c].Load()
		st.Redis.ErrorsBy[c] = n
		st.Redis.Errors += n
	}
	st.FailSafe = s.failSafeStats()
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

// ObserveProofLag makes fn see the lag of every heartbeat proven from now
// on (what Stats().Invalidation.ProofLag counts), on the goroutine that
// proved it, a few times per HealthCheckInterval: for a histogram that
// cannot be read from Stats (contrib/otel's). fn must be quick. The
// returned func stops it.
func (s *Store) ObserveProofLag(fn func(lag time.Duration)) (stop func()) {
	o := &fn
	s.observersMu.Lock()
	defer s.observersMu.Unlock()
	s.proofObservers.Store(new(append(slices.Clone(s.loadObservers()), o)))
	return func() {
		s.observersMu.Lock()
		defer s.observersMu.Unlock()
		s.proofObservers.Store(new(slices.DeleteFunc(slices.Clone(s.loadObservers()), func(x *func(time.Duration)) bool { return x == o })))
	}
}

func (s *Store) loadObservers() []*func(time.Duration) {
	if l := s.proofObservers.Load(); l != nil {
		return *l
	}
	return nil
}

// proved is every source's bus.Config.OnProof.
func (s *Store) proved(lag time.Duration) {
	for _, fn := range s.loadObservers() {
		(*fn)(lag)
	}
}

// RequestCount is one series of a requests metric (contrib/otel's
// tierstore.cache.requests, contrib/prometheus's
// tierstore_cache_requests_total): the reads at a level ("l1", "redis")
// with a result ("hit", "miss", "stale", "bypass").
type RequestCount struct {
	Level, Result string
	Count         uint64
}

// Requests returns st's reads as the series of a requests metric, each
// read counted once per level it reached: at l1, a hit, a miss (nothing
// cached), a stale entry refused or a bypass (not Live); at redis, a hit
// or a miss. The l1 results sum to every read; the redis ones to the
// reads that went to Redis and got an answer.
func (st Stats) Requests() [6]RequestCount {
	miss := st.L1.Misses - st.L1.Bypassed - min(st.L1.Stale, st.L1.Misses-st.L1.Bypassed)
	return [6]RequestCount{
		{"l1", "hit", st.L1.Hits}, {"l1", "miss", miss}, {"l1", "stale", st.L1.Stale}, {"l1", "bypass", st.L1.Bypassed},
		{"redis", "hit", st.Redis.Hits}, {"redis", "miss", st.Redis.Misses},
	}
}
