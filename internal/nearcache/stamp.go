package nearcache

import "time"

// # Validity stamps
//
// Used as the front of a shared source of truth, a cache must not let a
// value read from the source before an invalidation land after it. The
// cache therefore keeps a global epoch and a power of two of generation
// counters (stripes) indexed by a hash of the key. A Stamp records
// (epoch, generation of the key's stripe). The invariant, which every
// path into the cache keeps:
//
//	an entry is served only while the Stamp taken before its value was
//	read from (or written to) the source is still current.
//
//   - Invalidate(key) bumps the key's stripe, so every entry and every
//     flight of the key stamped before it is dead, whatever order
//     ristretto's asynchronous buffers apply them in;
//   - InvalidateAll bumps the epoch: an O(1) flush of everything;
//   - a Flight takes its Stamp before its read is sent and fills under
//     it only (Update), and a caller joins a flight only under the same
//     Stamp, so a read that follows a write or an invalidation never
//     shares a read that began before it;
//   - a write (BeginWrite/EndWrite) bumps the stripe when it ends, and
//     caches its value only if nothing else bumped it meanwhile.
//
// Counters only grow, so a dead stamp never becomes current again.

// Generation counters: invalidating a key bumps the counter of its stripe,
// so it also drops the (still correct) cached values of the other keys in
// that stripe. One stripe per 512 bytes of MaxBytes (a counter costs 8
// bytes, outside MaxBytes) keeps that collateral damage below one other
// entry per invalidation for entries of typical session size; fewer
// stripes turn each write of a hot key into extra Redis reads on peers.
const (
	bytesPerStripe = 512
	minStripes     = 4096
	maxStripes     = 1 << 22
)

// stripesFor returns the number of stripes for maxBytes: a power of two.
func stripesFor(maxBytes int64) int {
	n := minStripes
	for n < maxStripes && int64(n)*bytesPerStripe < maxBytes {
		n *= 2
	}
	return n
}

// Stamp is a validity stamp: see above.
type Stamp struct {
	epoch, gen uint64
}

func (s *Cache) stripeOfHash(h uint64) uint32 { return uint32(h & s.mask) }

// stamp returns the current stamp of key.
func (s *Cache) stamp(key string) Stamp {
	return s.stampOf(s.stripeOfHash(s.hashOf(key)))
}

func (s *Cache) stampOf(stripe uint32) Stamp {
	// Load the epoch first: a concurrent InvalidateAll then either shows
	// up here or makes the stamp dead later; never a newer epoch with an
	// older stripe generation that a later bump could not kill.
	epoch := s.epoch.Load()
	return Stamp{epoch: epoch, gen: s.stripes[stripe].Load()}
}

func (s *Cache) current(e *entry) bool {
	return e.stamp == s.stampOf(s.stripeOfHash(e.hash))
}

// Invalidate drops key and kills every fill of it stamped before the call.
// It reports whether it dropped a current entry that this instance wrote
// (Meta.Own).
func (s *Cache) Invalidate(key string) (own bool) {
	e, ok := s.get(key)
	own = ok && e.own && s.current(e) && !s.expired(e)
	h := s.hashOf(key)
	s.stripes[s.stripeOfHash(h)].Add(1)
	s.del(h)
	return own
}

// InvalidateAll drops every entry in O(1), and kills every fill stamped
// before the call. Memory is reclaimed as dead entries are replaced or
// evicted. It returns the epoch it ended: until then, the dead entries
// of that epoch stay readable by LookupKept alone.
func (s *Cache) InvalidateAll() (ended uint64) {
	return s.epoch.Add(1) - 1
}

// Epoch returns the current epoch: the one the next InvalidateAll ends.
func (s *Cache) Epoch() uint64 { return s.epoch.Load() }

// BeginWrite prepares a write of key to the source of truth and returns
// the stamp to pass to EndWrite. The cached value, if any, keeps serving
// while the write is in flight: a read concurrent with a write may return
// either value, and keeping the old one spares this instance a read of
// the source for every write of a hot key.
func (s *Cache) BeginWrite(key string) Stamp {
	return s.stamp(key)
}

// EndWrite finishes a write begun with BeginWrite. value is what the source
// now holds under key (EndWrite takes ownership), or nil when nothing
// should be cached: the write was a delete, or it failed.
//
// EndWrite bumps the key's stripe, which kills the cached old value and
// the fills of concurrent readers that may have read the source before the
// write landed. It caches value only if nothing else bumped the stripe or
// the epoch since BeginWrite: an invalidation received in between may come
// from a newer write by another instance, whose value this one must not
// shadow. It reports whether it cached value.
func (s *Cache) EndWrite(key string, st Stamp, value []byte, m Meta) (cached bool) {
	h := s.hashOf(key)
	gen := s.stripes[s.stripeOfHash(h)].Add(1)
	if value == nil || gen != st.gen+1 || !s.fill(key, value, m, Stamp{epoch: st.epoch, gen: gen}, h, 0) {
		s.del(h) // the old value is dead: free it now
		return false
	}
	return true
}

// Extend records a later expiry for the current entry of key, if there is
// one, without changing its value or stamp: used after the source of truth
// extended the expiry without an invalidation. The entry keeps the end of
// its TTL: extending never keeps a copy in memory longer than TTL.
func (s *Cache) Extend(key string, expiry time.Time) {
	e, ok := s.get(key)
	if !ok || s.expired(e) || !s.current(e) {
		return
	}
	s.fill(key, e.value, Meta{expiry, e.version, e.own}, e.stamp, e.hash, e.capAt)
}
