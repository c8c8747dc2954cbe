// Package nearcache is tiered's L1: a near cache (an in-process copy of a
// shared store) on ristretto/v2, bounded by bytes, with per-entry
// deadlines, the validity stamps that keep it coherent with Redis and the
// shared reads (flights) that fill it. It is not package l1, the
// memory-only Store, which holds the only copy of its data and never
// declines a write; this one may decline or drop any entry. It is
// mechanism, not contract: only tiered uses it, and a wrong stamp
// silently breaks coherence, so it stays internal.
package nearcache

import (
	"errors"
	"fmt"
	"hash/maphash"
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
	// and entryOverhead. The frequency sketch and the stamps (about 5% of
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

// entryOverhead is the cost, in bytes, charged for each entry on top of
// its key bytes and its value's allocation: the entry header, ristretto's
// bookkeeping (its map slot and its policy's) and the rounding of the
// key's allocation.
// Measured, not guessed: TestMaxBytesBoundsTheLiveHeap fails if entries
// take more than their charged cost.
const entryOverhead = 320

// Cache is an in-process cache in front of a shared source of truth, kept
// coherent with it by validity stamps (see stamp.go) and shared reads
// (Flight).
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

	flights flights

	hits          cells
	misses, stale atomic.Uint64

	// held counts the entries handed to ristretto that have not left it
	// (OnExit): one more before each Set, one less if Set drops it, so
	// that an exit reported at once never takes it below zero for
	// long. evictions counts the entries ristretto pushed out for
	// space (OnEvict). Both change on fills and exits, never on a hit.
	held      atomic.Int64
	evictions atomic.Uint64

	onAccess    func(key string)
	accessEvery int64 // ns
}

// entry is immutable once cached, but for reported.
type entry struct {
	key      string // for Keys: ristretto keeps only hashes
	value    []byte
	expiry   time.Time // the value's own expiry (zero: none), not the TTL cap
	version  tierstore.Version
	own      bool  // Meta.Own
	deadline int64 // when the entry dies, in ns since clock.born; 0: never
	capAt    int64 // when TTL ends it, whatever its expiry; 0: no TTL
	stamp    Stamp
	hash     uint64       // hashOf(key)
	reported atomic.Int64 // when OnAccess last saw it (or it was filled), ns since clock.born
}

// New returns a Cache. It fails only on an invalid Config.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxBytes < 0 || cfg.TTL < 0 || cfg.MaxValueBytes < 0 {
		return nil, errors.New("nearcache: negative MaxBytes, TTL or MaxValueBytes")
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
	var s *Cache // set below, before any Set: ristretto calls back only for entries s set
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
		OnExit:             func(e *entry) { s.exited(e) },
		OnEvict:            func(*ristretto.Item[*entry]) { s.evictions.Add(1) },
	})
	if err != nil {
		return nil, fmt.Errorf("nearcache: %w", err)
	}
	sizeClasses() // learned now rather than by the first fill
	n, slots := stripesFor(cfg.MaxBytes), indexSlotsFor(cfg.MaxBytes)
	s = &Cache{
		cache: cache, ttl: cfg.TTL, maxValue: cfg.MaxValueBytes, seed: maphash.MakeSeed(), clock: newClock(),
		stripes: make([]atomic.Uint64, n), mask: uint64(n - 1),
		index: make([]atomic.Pointer[entry], slots), imask: uint64(slots - 1),
		onAccess: cfg.OnAccess, accessEvery: int64(cfg.AccessEvery),
		flights: flights{m: map[flightKey]*Flight{}},
	}
	s.clock.start(func() uint64 { return uint64(s.hits.sum()) })
	return s, nil
}

// hashOf is the one hash of key: ristretto's key and, masked,
// its stripe. ristretto would otherwise hash a string key twice (two
// algorithms, for its map and a conflict check); an entry keeps its key
// instead, and get compares it, so a 64-bit collision is only a miss.
func (s *Cache) hashOf(key string) uint64 {
	return maphash.String(s.seed, key)
}

// Meta is what a cached value comes with.
type Meta struct {
	Expiry  time.Time         // the value's expiry (zero: none)
	Version tierstore.Version // zero: not recorded (the owner derives it)
	// Own: the value is what this instance wrote (EndWrite), not what it
	// read. Invalidate reports dropping such an entry, which a writer
	// whose own write is reported back may want to read again.
	Own bool
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
	// Entries and Bytes are what the cache holds now: entries (dead ones
	// included until they are read, evicted or dropped) and their cost
	// (see Config.MaxBytes). A fill is counted when ristretto takes it,
	// shortly after the fill returns (Wait). Evictions counts the
	// entries pushed out to make room, cumulative.
	Entries, Bytes uint64
	Evictions      uint64
}

// Stats returns the counters. It takes ristretto's policy lock once, for
// Bytes: for metrics, not for the request path.
func (s *Cache) Stats() Stats {
	stale := s.stale.Load() // before misses, which count each stale lookup first
	st := Stats{
		Hits: uint64(s.hits.sum()), Misses: s.misses.Load(), Stale: stale,
		Entries: uint64(max(s.held.Load(), 0)), Evictions: s.evictions.Load(),
	}
	if s.gate.enter() {
		st.Bytes = uint64(max(s.cache.MaxCost()-s.cache.RemainingCost(), 0))
		s.gate.leave()
	}
	return st
}

// exited is ristretto's OnExit: e (nil for a delete of a key it did not
// hold) left the cache.
func (s *Cache) exited(e *entry) {
	if e != nil {
		s.held.Add(-1)
		s.unindex(e)
	}
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
