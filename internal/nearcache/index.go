package nearcache

import "math/rand/v2"

// hitSample: one index hit in hitSample is also a ristretto Get, for its
// admission policy's frequency estimates.
const hitSample = 16

// indexSlotsFor returns the index size for maxBytes: a power of two, two
// slots per entry of 1 KiB (a slot costs 8 bytes, outside MaxBytes).
func indexSlotsFor(maxBytes int64) int {
	n := 1024
	for n < 1<<22 && int64(n) < maxBytes/512 {
		n *= 2
	}
	return n
}

// get returns the cached entry of key, current or not: from the index,
// without a lock or the gate, or else from ristretto.
func (s *Cache) get(key string) (*entry, bool) {
	h := s.hashOf(key)
	slot := &s.index[h&s.imask]
	if e := slot.Load(); e != nil && e.hash == h && e.key == key {
		if s.gate.shut.Load() {
			return nil, false // closed: lookups miss
		}
		if rand.Uint32()%hitSample == 0 && s.gate.enter() {
			s.cache.Get(h)
			s.gate.leave()
		}
		return e, true
	}
	if !s.gate.enter() {
		return nil, false
	}
	e, ok := s.cache.Get(h)
	s.gate.leave()
	if !ok || e.key != key {
		return nil, false
	}
	// Into a free slot only: two hot keys sharing one do not take turns.
	// If ristretto let e go between the Get and the swap, its OnExit
	// found the slot empty: look again, so that the index never keeps
	// what ristretto no longer accounts for.
	if slot.CompareAndSwap(nil, e) && s.gate.enter() {
		if v, held := s.cache.Get(h); !held || v != e {
			slot.CompareAndSwap(e, nil)
		}
		s.gate.leave()
	}
	return e, true
}

// unindex drops e from the index, if it is there: ristretto let it go.
func (s *Cache) unindex(e *entry) {
	if e != nil {
		s.index[e.hash&s.imask].CompareAndSwap(e, nil)
	}
}

// delete drops key's entry (and, on a 64-bit hash collision, another
// key's: a harmless miss).
func (s *Cache) delete(key string) { s.del(s.hashOf(key)) }

// del is ristretto's Del behind the gate.
func (s *Cache) del(h uint64) {
	if s.gate.enter() {
		s.cache.Del(h)
		s.gate.leave()
	}
}
