package session

import (
	"bytes"
	"hash/maphash"
	"sync/atomic"
)

// decodedCache keeps recently decoded sessions beside the bytes they were
// decoded from, so that a request whose Store read returns the same bytes
// again (an L1 hit of an unchanged session) skips the decoding. An entry
// is used only if its bytes are equal to what the Store returned: it is
// exactly as current as the read itself, whatever the Store.
//
// It is direct-mapped: each key has one slot, chosen by a hash, and a
// decoding replaces whatever the slot held. Memory is bounded by the slot
// count; a collision costs one decoding, never a wrong session. Slots are
// atomic pointers to immutable entries, so lookups take no lock.
//
// A cached record's Values map is shared by every request that uses it:
// requests copy it before their first change (see state.own).
type decodedCache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[decodedEntry]
}

type decodedEntry struct {
	key  string
	data []byte // the Store's bytes; never modified
	rec  record // decoded from data; never modified
}

func newDecodedCache(n int) *decodedCache {
	if n <= 0 {
		return nil
	}
	return &decodedCache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[decodedEntry], n)}
}

func (c *decodedCache) slot(key string) *atomic.Pointer[decodedEntry] {
	return &c.slots[maphash.String(c.seed, key)%uint64(len(c.slots))]
}

// get returns the entry of the record decoded from data under key, if
// cached, else nil.
func (c *decodedCache) get(key string, data []byte) *decodedEntry {
	if c == nil {
		return nil
	}
	e := c.slot(key).Load()
	if e == nil || e.key != key || !bytes.Equal(e.data, data) {
		return nil
	}
	return e
}

// put caches rec, decoded from data (which it keeps: the caller must not
// modify it) under key, and returns its entry (made, uncached, if the
// cache is off).
func (c *decodedCache) put(key string, data []byte, rec record) *decodedEntry {
	e := &decodedEntry{key: key, data: data, rec: rec}
	if c != nil {
		c.slot(key).Store(e)
	}
	return e
}
