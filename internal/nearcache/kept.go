package nearcache

// # Kept entries
//
// InvalidateAll ends an epoch without touching its entries: they stay in
// memory, dead to Lookup, until replaced or evicted. LookupKept serves
// one of them again, for a caller that knows the ended epoch's entries
// were coherent when it ended (tiered's fail-safe), under this rule:
//
//	an entry of ended epoch E is kept only while its stripe's generation
//	is still the one it was stamped with.
//
// Every path that would have dropped the entry had the epoch not ended
// bumps that generation: Invalidate (a report of a change), EndWrite
// (a write of the key, succeeded or failed: a delete that failed leaves
// the bump behind, a tombstone). A fill after the epoch ended carries the
// new epoch, and replaces the kept entry in ristretto. So a kept entry
// is exactly one that was current when E ended and that nothing of this
// instance has invalidated since; generations only grow, so one that
// lost it never comes back.

// LookupKept calls fn with the value of key's entry if it was filled in
// the ended epoch and is kept (see above), and is not past its deadline
// (TTL and the value's expiry still bound it). fn must neither modify
// nor retain the slice. The lookup is not counted in Stats.
func (s *Cache) LookupKept(key string, epoch uint64, fn func(value []byte) error) (hit bool, m Meta, err error) {
	e, ok := s.get(key)
	if !ok || e.stamp.epoch != epoch || epoch == s.epoch.Load() || s.expired(e) {
		return false, Meta{}, nil
	}
	if e.stamp.gen != s.stripes[s.stripeOfHash(e.hash)].Load() {
		return false, Meta{}, nil
	}
	return true, Meta{e.expiry, e.version, e.own}, fn(e.value)
}
