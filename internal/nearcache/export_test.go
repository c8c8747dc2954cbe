package nearcache

// EntryOverhead is entryOverhead, for the tests that check the charge.
const EntryOverhead = entryOverhead

// Stamp returns the current stamp of key: tests take one before a read
// of the source, as a Flight does.
func (s *Cache) Stamp(key string) Stamp { return s.stamp(key) }

// Fill caches value under key if st is still current (see fill).
func (s *Cache) Fill(key string, value []byte, m Meta, st Stamp) bool {
	return s.fill(key, value, m, st, s.hashOf(key), 0)
}
