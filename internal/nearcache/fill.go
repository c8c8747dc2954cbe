package nearcache

import (
	"math"
	"time"
)

// expired reports whether e is past its deadline. Entries carry their own
// deadline instead of a ristretto TTL, which would read the wall clock on
// every Get; this is usually no clock read at all (see clock.go). The
// price: ristretto does not sweep dead entries, so one that is never read
// again keeps its place (within MaxBytes) until evicted; one that is read
// is deleted then.
func (s *Cache) expired(e *entry) bool {
	return e.deadline != 0 && s.clock.passed(e.deadline)
}

// Lookup calls fn with the cached value of key if there is a current entry,
// and reports whether it did, with the value's expiry (zero: none). fn must
// neither modify nor retain the slice.
func (s *Cache) Lookup(key string, fn func(value []byte) error) (hit bool, m Meta, err error) {
	return s.lookup(key, fn, true)
}

func (s *Cache) lookup(key string, fn func(value []byte) error, countMiss bool) (hit bool, m Meta, err error) {
	e, ok := s.get(key)
	if ok && s.expired(e) {
		s.delete(key) // free it now: ristretto does not know it died
		ok = false
	}
	if !ok || !s.current(e) {
		if countMiss {
			s.misses.Add(1)
			if ok {
				s.stale.Add(1)
			}
		}
		return false, Meta{}, nil
	}
	s.hits.add(1)
	if s.onAccess != nil {
		s.noteAccess(e)
	}
	return true, Meta{e.expiry, e.version, e.own}, fn(e.value)
}

// noteAccess reports a hit of e to OnAccess if AccessEvery has passed
// since the last report. It reads the coarse clock: a report may come up
// to a tick late or, while the clock is parked, wait for the next hit,
// which only makes reports rarer. The compare-and-swap lets one of
// several concurrent hits report.
func (s *Cache) noteAccess(e *entry) {
	now, last := s.clock.coarse.Load(), e.reported.Load()
	if now-last >= s.accessEvery && e.reported.CompareAndSwap(last, now) {
		s.onAccess(e.key)
	}
}

// fill caches value under key if st is still current, for at most
// min(TTL, until m.Expiry); a zero expiry means none. fill takes ownership
// of value and charges the entry for the allocation value's capacity
// implies (see Config.MaxBytes): a value whose capacity stops short of
// the end of its array keeps the rest alive uncharged. It reports whether
// the entry was handed to the cache, which may still decline to keep it.
// capAt is when TTL ends the entry (ns since clock.born); 0 starts a new
// TTL now.
func (s *Cache) fill(key string, value []byte, m Meta, st Stamp, h uint64, capAt int64) bool {
	expiry := m.Expiry
	if len(value) > s.maxValue {
		return false
	}
	now := s.clock.now()
	if capAt == 0 && s.ttl > 0 {
		capAt = now + int64(s.ttl)
	}
	deadline := capAt
	if !expiry.IsZero() {
		left := int64(time.Until(expiry))
		if left <= 0 {
			return false
		}
		// time.Until saturates about 292 years out: such an expiry is
		// no deadline at all rather than an overflowed one.
		if left <= math.MaxInt64-now && (deadline == 0 || now+left < deadline) {
			deadline = now + left
		}
	}
	if deadline != 0 && deadline <= now {
		return false
	}
	// A stamp that is already dead would only evict a live entry. It can
	// still die between this check and the cache write, which is why
	// Lookup checks again.
	if st != s.stampOf(s.stripeOfHash(h)) {
		return false
	}
	if testHookBeforeCacheSet != nil {
		testHookBeforeCacheSet(key)
	}
	e := &entry{key: key, value: value, expiry: expiry, version: m.Version, own: m.Own, deadline: deadline, capAt: capAt, stamp: st, hash: h}
	e.reported.Store(now) // the read or write that brought it was an access
	if !s.gate.enter() {
		return false
	}
	defer s.gate.leave()
	// Indexed before ristretto sees it, so that its OnExit, which may run
	// at once on another goroutine, finds it there.
	slot := &s.index[h&s.imask]
	slot.Store(e)
	s.held.Add(1) // before ristretto may let it go: see held
	if !s.cache.Set(h, e, cost(key, value)) {
		s.held.Add(-1)
		slot.CompareAndSwap(e, nil) // dropped: ristretto will not call OnExit
		return false
	}
	return true
}

// testHookBeforeCacheSet, set by tests, runs between a fill's stamp check
// and its cache write.
var testHookBeforeCacheSet func(key string)

// cost is what an entry of key and value is charged: its value's
// allocation (see allocSize), not its length, which would let values just
// past a size class or a page hold up to a quarter more than MaxBytes.
func cost(key string, value []byte) int64 {
	return int64(len(key) + allocSize(cap(value)) + entryOverhead)
}
