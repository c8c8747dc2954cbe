package l1

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tierstore/tierstore"
)

// entry is one key's value, linked into its shard's recency list. Its
// fields are guarded by the shard's mutex, except that key and value are
// never written once the entry is in a shard (see Store), so they may be
// read after the lock is released.
type entry struct {
	prev, next *entry
	key        string
	value      []byte
	version    tierstore.Version
	deadlines
}

// deadlines says when an entry dies. deadline and capAt are Store.clock
// times; 0 means never.
type deadlines struct {
	expiry   int64 // the value's own expiry, Unix ns, kept to report it; 0: none
	capAt    int64 // when the TTL ends the entry, whatever its expiry
	deadline int64 // the earlier of the expiry's deadline and capAt
}

// dead reports whether e has expired or outlived its TTL at now.
func (e *entry) dead(now int64) bool { return e.deadline != 0 && e.deadline <= now }

// shard is one lock's worth of entries: a map for lookups and a circular
// list through root for recency, root.next the most recently used and
// root.prev the least. Invariants, under mu: every entry in m is in the
// list and the other way round; bytes is the sum of their costs, and
// every change to it is made to *used as well. A nil m means the store
// is closed: the shard is empty and stays so.
type shard struct {
	mu    sync.Mutex
	m     map[string]*entry
	root  entry
	bytes atomic.Int64  // written under mu; read without it to pick victims
	used  *atomic.Int64 // the Store's total

	hits, misses, evictions uint64 // under mu

	// Keep the next shard's mutex off the cache lines this shard writes.
	_ [64]byte
}

func (sh *shard) init(used *atomic.Int64) {
	sh.m = make(map[string]*entry)
	sh.root.next, sh.root.prev = &sh.root, &sh.root
	sh.used = used
}

func (sh *shard) pushFront(e *entry) {
	e.prev, e.next = &sh.root, sh.root.next
	e.prev.next, e.next.prev = e, e
}

func (sh *shard) moveToFront(e *entry) {
	if sh.root.next != e {
		sh.unlink(e)
		sh.pushFront(e)
	}
}

func (sh *shard) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (sh *shard) charge(cost int64) {
	sh.bytes.Add(cost)
	sh.used.Add(cost)
}

// remove drops e from the shard.
func (sh *shard) remove(e *entry) {
	sh.unlink(e)
	delete(sh.m, e.key)
	sh.charge(-entryCost(e.key, e.value))
}

// get returns the value and expiry of key's live entry and marks it the
// most recently used. A dead entry is removed.
func (sh *shard) get(key string, now int64) ([]byte, int64, tierstore.Version, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		return nil, 0, 0, tierstore.ErrClosed
	}
	e := sh.m[key]
	if e != nil && e.dead(now) {
		sh.remove(e)
		e = nil
	}
	if e == nil {
		sh.misses++
		return nil, 0, 0, tierstore.ErrNotFound
	}
	sh.moveToFront(e)
	sh.hits++
	return e.value, e.expiry, e.version, nil
}

// versionOf returns the version of key's live entry, or NoVersion. mu
// must be held.
func (sh *shard) versionOf(key string, now int64) tierstore.Version {
	if e := sh.m[key]; e != nil && !e.dead(now) {
		return e.version
	}
	return tierstore.NoVersion
}

// set stores value under key, with the next version of *versions, as the
// most recently used entry and returns it and its version, if the key's live entry has version want, or
// always if want is anyVersion; otherwise it returns ErrConflict. It takes
// ownership of value. An existing entry of key is reused, so the map is
// not written on overwrites; its value slice is replaced, not written,
// because readers may hold it.
func (sh *shard) set(key string, value []byte, d deadlines, versions *atomic.Uint64, want tierstore.Version, now int64) (*entry, tierstore.Version, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		return nil, 0, tierstore.ErrClosed
	}
	if want != anyVersion && sh.versionOf(key, now) != want {
		return nil, 0, tierstore.ErrConflict
	}
	e := sh.m[key]
	if e == nil {
		e = &entry{key: strings.Clone(key)} // pin no larger string the key came from
		sh.m[e.key] = e
	} else {
		sh.charge(-entryCost(e.key, e.value))
		sh.unlink(e)
	}
	// Taken under the lock, so that of two writes of one key the later
	// has the greater version.
	e.value, e.version, e.deadlines = value, tierstore.Version(versions.Add(1)), d
	sh.charge(entryCost(e.key, e.value))
	sh.pushFront(e)
	return e, e.version, nil
}

// delete removes key if present and its live entry has version want (or
// want is anyVersion); otherwise it returns ErrConflict.
func (sh *shard) delete(key string, want tierstore.Version, now int64) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		return tierstore.ErrClosed
	}
	if want != anyVersion && sh.versionOf(key, now) != want {
		return tierstore.ErrConflict
	}
	if e := sh.m[key]; e != nil {
		sh.remove(e)
	}
	return nil
}

// touch sets the expiry of key's live entry (expiry to report, deadline
// to enforce; both 0 for none) and marks it the most recently used (a
// session is touched because it is in use), or removes the entry if
// deadline is not after now. capAt stays: the TTL runs on.
func (sh *shard) touch(key string, expiry, deadline, now int64) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		return tierstore.ErrClosed
	}
	e := sh.m[key]
	if e == nil || e.dead(now) {
		if e != nil {
			sh.remove(e)
		}
		return tierstore.ErrNotFound
	}
	if expiry != 0 && deadline <= now {
		sh.remove(e)
		return nil
	}
	e.expiry, e.deadline = expiry, deadline
	if e.capAt != 0 && (deadline == 0 || e.capAt < deadline) {
		e.deadline = e.capAt
	}
	sh.moveToFront(e)
	return nil
}

// evictTail evicts the least recently used entry other than keep (the
// entry a write just made, which hits may have moved behind older ones),
// and reports whether it evicted one.
func (sh *shard) evictTail(keep *entry) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.root.prev
	if e == keep {
		e = e.prev
	}
	if sh.m == nil || e == &sh.root {
		return false
	}
	sh.remove(e)
	sh.evictions++
	return true
}

// appendKeys appends the keys of the live entries.
func (sh *shard) appendKeys(keys []string, now int64) ([]string, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		return keys, tierstore.ErrClosed
	}
	for e := sh.root.next; e != &sh.root; e = e.next {
		if !e.dead(now) {
			keys = append(keys, e.key)
		}
	}
	return keys, nil
}

func (sh *shard) stats() (hits, misses, evictions uint64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.hits, sh.misses, sh.evictions
}

// close empties the shard for good. Entries are dropped wholesale: the
// garbage collector reclaims them, list links and all, once no reader
// holds a value.
func (sh *shard) close() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		return
	}
	sh.m = nil
	sh.root.next, sh.root.prev = &sh.root, &sh.root
	sh.charge(-sh.bytes.Load())
}
