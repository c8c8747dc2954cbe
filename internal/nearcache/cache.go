// Package cache is the tiered store's in-process tier: a ristretto/v2 cache
// bounded by bytes, with per-entry deadlines and the validity stamps that
// keep it coherent with Redis. It is mechanism, not contract: only tiered
// uses it, and a wrong stamp silently breaks coherence, so it stays
// internal.
package cache

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/tierstore/tierstore"
)

// Defaults for zero Config fields.
const (
	DefaultMaxBytes = 64 << 20 // 64 MiB
)

// Config configures a Cache. Zero fields take the documented defaults.
type Config struct {
	// MaxBytes bounds the live memory held by entries: for each, its key
	// bytes, its value's allocation (the value's capacity rounded up to
	// the allocator's size class, or to whole 8 KiB pages above 32 KiB)
	// and EntryOverhead. The frequency sketch and the stamps (about 5% of
	// MaxBytes) come on top. Default DefaultMaxBytes.
	MaxBytes int64
	// TTL caps how long an entry stays cached, on top of its own expiry.
	// Zero means no cap.
	TTL time.Duration
	// MaxValueBytes: larger values are never cached. Default
	// tierstore.DefaultMaxValueBytes.
	MaxValueBytes int
	// OnAccess, if set, is called with the key of a hit whose entry was
	// last reported (or filled) at least AccessEvery ago: at most once per
	// AccessEvery per entry, on the hit's goroutine, so it must not block.
	// It lets the source of truth learn which keys are used although
	// their reads never reach it.
	OnAccess    func(key string)
	AccessEvery time.Duration
}

// EntryOverhead is the cost, in bytes, charged for each entry on top of
// its key bytes and its value's allocation: the entry header, ristretto's
// bookkeeping (its map slot and its policy's) and the rounding of the
// key's allocation.
// Measured, not guessed: TestMaxBytesBoundsTheLiveHeap fails if entries
// take more than their charged cost.
const EntryOverhead = 320

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

// Cache is an in-process cache in front of a shared source of truth.
//
// # Validity stamps
//
// Used as the front of a shared source of truth, a cache must not let a
// value read from the source before an invalidation land after it. Store
// therefore keeps a global epoch and a power of two of generation counters indexed
// by a hash of the key. A Stamp records (epoch, generation of the key's
// stripe). Every entry carries the Stamp taken before its value was read
// from the source, and is served only while that Stamp is still current:
//
//   - Invalidate(key) bumps the key's stripe, so every entry and every fill
//     in flight stamped before it is dead, whatever order ristretto's
//     asynchronous buffers apply them in;
//   - InvalidateAll bumps the epoch: an O(1) flush of everything.
//
// Counters only grow, so a dead stamp never becomes current again.
//
// # Close
//
// ristretto panics (a send on a closed channel) when Get, Set, Del or Wait
// run concurrently with its Close. Every method that reaches ristretto
// therefore passes the gate, and Close shuts the gate and waits for the
// calls inside to leave before it closes ristretto. After Close, lookups
// miss and writes do nothing.
type Cache struct {
	cache    *ristretto.Cache[uint64, *entry] // keyed by hashOf(key)
	ttl      time.Duration
	maxValue int
	clock    *clock // entry deadlines are ns since clock.born
	seed     maphash.Seed
	gate     gate

	epoch   atomic.Uint64
	stripes []atomic.Uint64 // len is a power of two
	mask    uint64          // len(stripes) - 1

	// index is a lock-free front for lookups: a direct-mapped table of
	// entries ristretto holds (or is about to hold), by hashOf(key). A
	// hit there takes no lock and leaves nothing in ristretto's read
	// buffers, whose policy then learns of one hit in hitSample (enough
	// for its frequency estimates, which are relative). Entries leave it
	// when they leave ristretto (OnExit), so it never holds more than
	// ristretto accounts for; a lookup it misses asks ristretto.
	index []atomic.Pointer[entry]
	imask uint64 // len(index) - 1

	hits          counter
	misses, stale atomic.Uint64

	onAccess    func(key string)
	accessEvery int64 // ns
}

// entry is immutable once cached, but for reported.
type entry struct {
	key      string // for Keys: ristretto keeps only hashes
	value    []byte
	expiry   time.Time // the value's own expiry (zero: none), not the TTL cap
	version  tierstore.Version
	deadline int64 // when the entry dies, in ns since clock.born; 0: never
	capAt    int64 // when TTL ends it, whatever its expiry; 0: no TTL
	stamp    Stamp
	hash     uint64       // hashOf(key)
	reported atomic.Int64 // when OnAccess last saw it (or it was filled), ns since clock.born
}

// Stamp is a validity stamp; see Cache.
type Stamp struct {
	epoch, gen uint64
}

// New returns a Cache. It fails only on an invalid Config.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxBytes < 0 || cfg.TTL < 0 || cfg.MaxValueBytes < 0 {
		return nil, errors.New("cache: negative MaxBytes, TTL or MaxValueBytes")
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxValueBytes == 0 {
		cfg.MaxValueBytes = tierstore.DefaultMaxValueBytes
	}
	// ristretto wants about ten frequency counters per entry it may hold;
	// assume entries of about 1 KiB, and keep at least 10k counters.
	counters := max(cfg.MaxBytes/100, 10_000)
	var unindex func(*entry) // set once s exists; ristretto calls it only for entries s set
	cache, err := ristretto.NewCache(&ristretto.Config[uint64, *entry]{
		NumCounters: counters,
		MaxCost:     cfg.MaxBytes,
		// ristretto records each Get in a per-P buffer and wakes its
		// policy goroutine with each full one; fewer, larger buffers
		// wake it less often at no cost to the hit ratio (see
		// docs/benchmarks.md).
		BufferItems: 1024,
		// Our cost already counts the overhead, in bytes.
		IgnoreInternalCost: true,
		OnExit:             func(e *entry) { unindex(e) },
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	sizeClasses() // learned now rather than by the first fill
	n, slots := stripesFor(cfg.MaxBytes), indexSlotsFor(cfg.MaxBytes)
	s := &Cache{
		cache: cache, ttl: cfg.TTL, maxValue: cfg.MaxValueBytes, seed: maphash.MakeSeed(), clock: newClock(),
		stripes: make([]atomic.Uint64, n), mask: uint64(n - 1),
		index: make([]atomic.Pointer[entry], slots), imask: uint64(slots - 1),
		onAccess: cfg.OnAccess, accessEvery: int64(cfg.AccessEvery),
	}
	unindex = s.unindex
	s.clock.start(s.hits.Load)
	return s, nil
}

// hashOf is the one hash of key: ristretto's key and, masked,
// its stripe. ristretto would otherwise hash a string key twice (two
// algorithms, for its map and a conflict check); an entry keeps its key
// instead, and get compares it, so a 64-bit collision is only a miss.
func (s *Cache) hashOf(key string) uint64 {
	return maphash.String(s.seed, key)
}

func (s *Cache) stripeOfHash(h uint64) uint32 { return uint32(h & s.mask) }

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

// Stamp returns the current stamp of key. Take it before reading the value
// from the source of truth, and hand it to Fill with what was read.
func (s *Cache) Stamp(key string) Stamp {
	return s.stampOf(s.stripeOfHash(s.hashOf(key)))
}

func (s *Cache) stampOf(stripe uint32) Stamp {
	// Load the epoch first: a concurrent InvalidateAll then either shows
	// up here or makes the stamp dead later; never a newer epoch with an
	// older stripe generation that a later bump could not kill.
	epoch := s.epoch.Load()
	return Stamp{epoch: epoch, gen: s.stripes[stripe].Load()}
}

// expired reports whether e is past its deadline. Entries carry their own
// deadline instead of a ristretto TTL, which would read the wall clock on
// every Get; this is usually no clock read at all (see clock.go). The
// price: ristretto does not sweep dead entries, so one that is never read
// again keeps its place (within MaxBytes) until evicted; one that is read
// is deleted then.
func (s *Cache) expired(e *entry) bool {
	return e.deadline != 0 && s.clock.passed(e.deadline)
}

func (s *Cache) current(e *entry) bool {
	return e.stamp == s.stampOf(s.stripeOfHash(e.hash))
}

// Lookup calls fn with the cached value of key if there is a current entry,
// and reports whether it did, with the value's expiry (zero: none). fn must
// neither modify nor retain the slice.
func (s *Cache) Lookup(key string, fn func(value []byte) error) (hit bool, m Meta, err error) {
	return s.lookup(key, fn, true)
}

// Meta is what a cached value comes with.
type Meta struct {
	Expiry  time.Time         // the value's expiry (zero: none)
	Version tierstore.Version // zero: not recorded (the owner derives it)
}

// Recheck is Lookup for a caller that already counted a miss of key and
// looks again (a shared read checking whether another filled it): a hit
// counts, a second miss does not.
func (s *Cache) Recheck(key string, fn func(value []byte) error) (hit bool, m Meta, err error) {
	return s.lookup(key, fn, false)
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
	s.hits.Add()
	if s.onAccess != nil {
		s.noteAccess(e)
	}
	return true, Meta{e.expiry, e.version}, fn(e.value)
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

// Fill caches value under key if st is still current, for at most
// min(TTL, until m.Expiry); a zero expiry means none. Fill takes ownership
// of value and charges the entry for the allocation value's capacity
// implies (see Config.MaxBytes): a value whose capacity stops short of
// the end of its array keeps the rest alive uncharged. It reports whether
// the entry was handed to the cache, which may still decline to keep it.
func (s *Cache) Fill(key string, value []byte, m Meta, st Stamp) bool {
	return s.fill(key, value, m, st, s.hashOf(key), 0)
}

// fill reports whether the entry was handed to the cache. capAt is when
// TTL ends the entry (ns since clock.born); 0 starts a new TTL now.
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
	e := &entry{key: key, value: value, expiry: expiry, version: m.Version, deadline: deadline, capAt: capAt, stamp: st, hash: h}
	e.reported.Store(now) // the read or write that brought it was an access
	if !s.gate.enter() {
		return false
	}
	defer s.gate.leave()
	// Indexed before ristretto sees it, so that its OnExit, which may run
	// at once on another goroutine, finds it there.
	slot := &s.index[h&s.imask]
	slot.Store(e)
	if !s.cache.Set(h, e, cost(key, value)) {
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
	return int64(len(key) + allocSize(cap(value)) + EntryOverhead)
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
	s.fill(key, e.value, Meta{expiry, e.version}, e.stamp, e.hash, e.capAt)
}

// Invalidate drops key and kills every fill of it stamped before the call.
func (s *Cache) Invalidate(key string) {
	h := s.hashOf(key)
	s.stripes[s.stripeOfHash(h)].Add(1)
	s.del(h)
}

// InvalidateAll drops every entry in O(1), and kills every fill stamped
// before the call. Memory is reclaimed as dead entries are replaced or
// evicted.
func (s *Cache) InvalidateAll() {
	s.epoch.Add(1)
}

// BeginWrite prepares a write of key to the source of truth and returns
// the stamp to pass to EndWrite. The cached value, if any, keeps serving
// while the write is in flight: a read concurrent with a write may return
// either value, and keeping the old one spares this instance a read of
// the source for every write of a hot key.
func (s *Cache) BeginWrite(key string) Stamp {
	return s.Stamp(key)
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
// shadow.
func (s *Cache) EndWrite(key string, st Stamp, value []byte, m Meta) {
	h := s.hashOf(key)
	gen := s.stripes[s.stripeOfHash(h)].Add(1)
	if value == nil || gen != st.gen+1 || !s.fill(key, value, m, Stamp{epoch: st.epoch, gen: gen}, h, 0) {
		s.del(h) // the old value is dead: free it now
	}
}

// Wait blocks until the cache has applied every write handed to it so far.
// Fills are applied asynchronously; tests and benchmarks that must observe
// one call Wait.
func (s *Cache) Wait() {
	if s.gate.enter() {
		s.cache.Wait()
		s.gate.leave()
	}
}

// Stats is a snapshot of a Cache's counters.
type Stats struct {
	Hits   uint64 // lookups served from memory
	Misses uint64 // lookups not served, including Stale ones
	Stale  uint64 // lookups that found an entry whose stamp was dead
}

// Stats returns the counters.
func (s *Cache) Stats() Stats {
	return Stats{Hits: s.hits.Load(), Misses: s.misses.Load(), Stale: s.stale.Load()}
}

// Close releases the cache's goroutines and memory, after the calls in
// progress have left ristretto. Later lookups miss and later writes do
// nothing. Close is idempotent and safe to call concurrently with any
// method.
func (s *Cache) Close() {
	if s.gate.close() {
		s.cache.Close()
		s.clock.stop()
	}
}

// Len returns the number of live, current entries: for tests.
func (s *Cache) Len() int {
	if !s.gate.enter() {
		return 0
	}
	defer s.gate.leave()
	n := 0
	s.cache.IterValues(func(e *entry) bool {
		if s.current(e) && !s.expired(e) {
			n++
		}
		return false
	})
	return n
}
