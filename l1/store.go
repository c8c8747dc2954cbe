// Package l1 is the memory-only tierstore.Store: values kept in this
// process, bounded by bytes, evicting the least recently used entries to
// make room for new ones. It is neither shared between instances nor kept
// across restarts; use it alone, for one instance or for tests.
//
// It holds the only copy of what it stores, so it never refuses a write
// for lack of room: a full store evicts old entries instead. (A cache in
// front of Redis may decline writes to protect its hit ratio; this store
// must not.)
package l1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/tierstore/tierstore"
)

// DefaultMaxBytes is the MaxBytes of a zero Config (64 MiB).
const DefaultMaxBytes = 64 << 20

// entryOverhead is the cost, in bytes, charged for each entry on top of
// its key bytes and its value's allocation: the entry header (two list
// pointers, the key and value headers, three times: 80 bytes with the
// allocator's rounding), its slot in the shard's map (24 bytes a slot,
// plus control bytes, at a load between 7/16 and 7/8 and with the slots
// of evicted entries awaiting reuse) and the rounding of the key's own
// allocation, with room for the map's load factor;
// TestMaxBytesBoundsTheLiveHeap fails if entries take more than they are
// charged.
//
// Go maps do not shrink: a store that once held many small entries keeps
// their map slots after larger ones replace them, outside this charge.
const entryOverhead = 192

// Config configures a Store. Zero fields take the documented defaults.
type Config struct {
	// MaxBytes bounds the memory held by entries: for each, its key
	// bytes, its value's allocation (the value's length rounded up to
	// the allocator's size class) and a fixed overhead per entry (192 bytes:
	// the entry header and its map slot). The shards' fixed
	// structures (a few KiB) and the garbage collector's headroom come
	// on top. A write that needs room evicts the least recently used
	// entries. Default DefaultMaxBytes.
	MaxBytes int64
	// TTL caps how long an entry lives, whatever its expiry: a Set
	// starts the cap, a Touch does not restart it. Zero means no cap.
	TTL time.Duration
	// MaxValueBytes is the largest value Set accepts; larger ones fail
	// with tierstore.ErrTooLarge, and so does a value whose entry alone
	// would exceed MaxBytes. Default tierstore.DefaultMaxValueBytes
	// (1 MiB).
	MaxValueBytes int
}

// shardCount is the number of shards. Each has its own mutex, so calls
// on different shards never wait for each other; 32 keeps two cores, or
// thirty-two, rarely on the same lock, while the fixed cost stays at a
// few KiB. Eviction keeps the shards level (see evictOne), so that more
// shards cost little faithfulness to LRU.
const shardCount = 32

// Store is the memory-only tierstore.Store. Its zero value is not usable;
// call New.
//
// # Eviction
//
// Entries live in shards chosen by a hash of the key. Each shard keeps a
// map and a doubly linked list in recency order (most recent first),
// guarded by its mutex: a hit moves its entry to the front, so the tail
// is the shard's least recently used entry. LRU rather than CLOCK: a hit
// costs a list splice (a few pointer writes) under a lock the call holds
// anyway, and in exchange the order is exact within a shard, which tests
// can state and check; CLOCK would spare the splice but not the lock,
// since a Go map needs one for writes.
//
// Memory is budgeted globally (used against maxBytes), not per shard, so
// that a value may use the whole store and a shard with more live
// sessions than another is not cut short. A write that takes used over
// maxBytes then evicts shard tails until it is back under, preferring
// shards above their fair share (maxBytes/shardCount): that keeps every
// shard near its share, so their tails are about equally old, and the
// entry evicted is close to the globally least recently used one.
//
// # Locks and ownership
//
// A call holds at most one shard lock at a time, so shards cannot
// deadlock. An entry's value slice is never written after the entry is
// made (a Set of an existing key installs a new slice), which lets Get
// and View read it after releasing the lock. Close empties every shard
// under its lock and leaves its map nil; every call checks for the nil
// map under the lock, so a call racing Close either completes before
// Close reaches its shard or returns ErrClosed.
type Store struct {
	shards    [shardCount]shard
	seed      maphash.Seed
	used      atomic.Int64 // sum of the shards' bytes
	maxBytes  int64
	fairShare int64 // maxBytes / shardCount
	ttl       time.Duration
	maxValue  int
	closed    atomic.Bool
	// version is the last version given to a write: every write, Set
	// included, gets the next one. It starts at the wall clock in µs, so
	// a later store's versions (a restart) are greater too.
	version atomic.Uint64

	// Deadlines are on the monotonic clock, in ns since born: reading
	// it alone costs half of time.Now, which reads the wall clock too,
	// and a hit must read it. Wall-clock steps do not move them.
	born time.Time
	now  func() time.Time // nil: the real clock; tests set a fake one
}

var (
	_ tierstore.Store         = (*Store)(nil)
	_ tierstore.Toucher       = (*Store)(nil)
	_ tierstore.Lister        = (*Store)(nil)
	_ tierstore.Versioned     = (*Store)(nil)
	_ tierstore.VersionViewer = (*Store)(nil)
	_ io.Closer               = (*Store)(nil)
)

// anyVersion, as the version a write wants, makes it unconditional.
const anyVersion = ^tierstore.Version(0)

// New returns an empty Store. It fails only on a negative Config field.
func New(cfg Config) (*Store, error) {
	if cfg.MaxBytes < 0 || cfg.TTL < 0 || cfg.MaxValueBytes < 0 {
		return nil, errors.New("l1: negative MaxBytes, TTL or MaxValueBytes")
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxValueBytes == 0 {
		cfg.MaxValueBytes = tierstore.DefaultMaxValueBytes
	}
	s := &Store{
		seed:      maphash.MakeSeed(),
		maxBytes:  cfg.MaxBytes,
		fairShare: cfg.MaxBytes / shardCount,
		ttl:       cfg.TTL,
		maxValue:  cfg.MaxValueBytes,
		born:      time.Now(),
	}
	s.version.Store(max(uint64(s.born.UnixMicro()), 1<<33))
	for i := range s.shards {
		s.shards[i].init(&s.used)
	}
	return s, nil
}

func (s *Store) shardOf(key string) int {
	return int(maphash.String(s.seed, key) % shardCount)
}

// clock returns the current time as a deadline: ns since born.
func (s *Store) clock() int64 {
	if s.now != nil {
		return int64(s.now().Sub(s.born))
	}
	return int64(time.Since(s.born))
}

// deadlineOf converts a non-zero expiry to a deadline, given the current
// deadline-time now; the result is not after now if expiry is not in the
// future.
func (s *Store) deadlineOf(expiry time.Time, now int64) int64 {
	var left time.Duration
	if s.now != nil {
		left = expiry.Sub(s.now())
	} else {
		left = time.Until(expiry) // one monotonic read if expiry has one
	}
	if left > time.Duration(math.MaxInt64-now) {
		return math.MaxInt64
	}
	return now + int64(left)
}

// unixNanos converts an expiry to Unix nanoseconds, the form in which an
// entry keeps it to report it: 0 for none, expiries past 2262 (beyond
// int64) to the last representable instant, and any other at or before
// 1970 to 1, which is as past as they are but not "none".
func unixNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	case !t.After(time.Unix(0, 0)):
		return 1
	}
	return t.UnixNano()
}

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return tierstore.ErrClosed
	}
	return nil
}

func (s *Store) checkWrite(ctx context.Context, key string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return tierstore.CheckKey(key)
}

// Get returns a copy of the value under key, or tierstore.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, _, err := s.lookup(ctx, key)
	return bytes.Clone(v), err
}

// GetVersion returns a copy of the value under key, its version and its
// expiry (zero: none; the TTL cap is not an expiry and is not reported).
// atLeast is ignored: this store holds the only copy.
func (s *Store) GetVersion(ctx context.Context, key string, atLeast tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	v, expiry, version, err := s.lookup(ctx, key)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	return bytes.Clone(v), version, expiryTime(expiry), nil
}

// ViewVersion calls fn with the value under key, its version and its
// expiry, as GetVersion returns them, without copying the value, which fn
// must neither modify nor retain. fn runs without any lock held, so it
// may use the store.
func (s *Store) ViewVersion(ctx context.Context, key string, atLeast tierstore.Version, fn func([]byte, tierstore.Version, time.Time) error) error {
	v, expiry, version, err := s.lookup(ctx, key)
	if err != nil {
		return err
	}
	return fn(v, version, expiryTime(expiry))
}

// expiryTime is an entry's expiry, kept as Unix ns (0: none).
func expiryTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// View calls fn with the value under key, without copying it. fn runs
// without any lock held, so it may use the store.
func (s *Store) View(ctx context.Context, key string, fn func(value []byte) error) error {
	v, _, _, err := s.lookup(ctx, key)
	if err != nil {
		return err
	}
	return fn(v)
}

// lookup returns the value under key, which the caller must not modify,
// its expiry and its version.
func (s *Store) lookup(ctx context.Context, key string) ([]byte, int64, tierstore.Version, error) {
	if err := s.check(ctx); err != nil {
		return nil, 0, 0, err
	}
	v, expiry, version, err := s.shards[s.shardOf(key)].get(key, s.clock())
	if errors.Is(err, tierstore.ErrNotFound) {
		// Keys are validated on writes, so an invalid key can only
		// miss: checking it here keeps the hit path free of the scan.
		if kerr := tierstore.CheckKey(key); kerr != nil {
			return nil, 0, 0, kerr
		}
	}
	return v, expiry, version, err
}

// Set stores a copy of value under key until expiry (zero: none), capped
// by TTL. An expiry that is not in the future deletes key. Set always
// admits the value, evicting the least recently used entries if it needs
// room: when it returns nil, the value is readable, until it expires or
// a later call deletes, replaces or evicts it.
func (s *Store) Set(ctx context.Context, key string, value []byte, expiry time.Time) error {
	_, err := s.set(ctx, key, value, expiry, anyVersion)
	return err
}

// SetIf is Set, done only if the key's version is want
// (tierstore.NoVersion: absent); otherwise it returns an error wrapping
// tierstore.ErrConflict. It returns the new version (NoVersion if the
// expiry deleted the key).
func (s *Store) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version) (tierstore.Version, error) {
	if want == anyVersion { // no key has it; inside, it means "unconditional"
		want = anyVersion - 1
	}
	return s.set(ctx, key, value, expiry, want)
}

func (s *Store) set(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version) (tierstore.Version, error) {
	if err := s.checkWrite(ctx, key); err != nil {
		return 0, err
	}
	if len(value) > s.maxValue {
		return 0, fmt.Errorf("l1: set: %d bytes, limit %d: %w", len(value), s.maxValue, tierstore.ErrTooLarge)
	}
	now := s.clock()
	d := deadlines{expiry: unixNanos(expiry)}
	if d.expiry != 0 {
		if d.deadline = s.deadlineOf(expiry, now); d.deadline <= now {
			return 0, s.delete(key, want, now)
		}
	}
	if s.ttl > 0 {
		d.capAt = now + int64(s.ttl)
		if d.deadline == 0 || d.capAt < d.deadline {
			d.deadline = d.capAt
		}
	}
	// Copy before locking; the copy's capacity is its allocation, size
	// class included, and that is what the entry is charged.
	v := bytes.Clone(value)
	cost := entryCost(key, v)
	if cost > s.maxBytes {
		return 0, fmt.Errorf("l1: set: entry of %d bytes, MaxBytes %d: %w", cost, s.maxBytes, tierstore.ErrTooLarge)
	}
	home := s.shardOf(key)
	e, version, err := s.shards[home].set(key, v, d, &s.version, want, now)
	if err != nil {
		return 0, conflictError("set", err)
	}
	s.evict(home, e)
	return version, nil
}

// conflictError names the operation of a conflict; other errors pass.
func conflictError(op string, err error) error {
	if errors.Is(err, tierstore.ErrConflict) {
		return fmt.Errorf("l1: %s: %w", op, err)
	}
	return err
}

// delete removes key if its version is want (any if anyVersion).
func (s *Store) delete(key string, want tierstore.Version, now int64) error {
	return conflictError("delete", s.shards[s.shardOf(key)].delete(key, want, now))
}

func entryCost(key string, value []byte) int64 {
	return int64(len(key) + cap(value) + entryOverhead)
}

// Delete removes key. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.deleteIf(ctx, key, anyVersion)
}

// DeleteIf removes key only if its version is want; otherwise it returns
// an error wrapping tierstore.ErrConflict. want tierstore.NoVersion
// succeeds only if the key is absent.
func (s *Store) DeleteIf(ctx context.Context, key string, want tierstore.Version) error {
	if want == anyVersion { // as in SetIf
		want = anyVersion - 1
	}
	return s.deleteIf(ctx, key, want)
}

func (s *Store) deleteIf(ctx context.Context, key string, want tierstore.Version) error {
	if err := s.checkWrite(ctx, key); err != nil {
		return err
	}
	return s.delete(key, want, s.clock())
}

// Touch changes the expiry of key without copying its value: zero
// removes it, one not in the future deletes the key. The TTL cap keeps
// running. Touch returns tierstore.ErrNotFound if key is absent.
func (s *Store) Touch(ctx context.Context, key string, expiry time.Time) error {
	if err := s.checkWrite(ctx, key); err != nil {
		return err
	}
	now := s.clock()
	var deadline int64
	if !expiry.IsZero() {
		deadline = s.deadlineOf(expiry, now)
	}
	return s.shards[s.shardOf(key)].touch(key, unixNanos(expiry), deadline, now)
}

// Keys calls fn for each live key, in no particular order, until fn
// returns false. The keys are collected first, so fn may use the store.
func (s *Store) Keys(ctx context.Context, fn func(key string) bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	now := s.clock()
	var keys []string
	for i := range s.shards {
		var err error
		if keys, err = s.shards[i].appendKeys(keys, now); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn(k) {
			return nil
		}
	}
	return nil
}

// evict evicts entries until the store is within maxBytes, sparing keep
// (the entry its caller just wrote). It gives up when nothing else is
// left to evict: only writes still in flight, which evict for themselves,
// can keep the store over its bound.
func (s *Store) evict(home int, keep *entry) {
	for s.used.Load() > s.maxBytes {
		if !s.evictOne(home, keep) {
			return
		}
	}
}

// evictOne evicts the least recently used entry of one shard, and
// reports whether it found one. It prefers home, then the next shard
// above its fair share: while the store is over maxBytes at least one
// is, and evicting only from those keeps the shards' sizes, and so the
// ages of their tails, level.
func (s *Store) evictOne(home int, keep *entry) bool {
	for i := range shardCount {
		sh := &s.shards[(home+i)%shardCount]
		if sh.bytes.Load() > s.fairShare && sh.evictTail(keep) {
			return true
		}
	}
	// Concurrent deletes can leave none above its share: take any tail.
	for i := range shardCount {
		if s.shards[(home+i)%shardCount].evictTail(keep) {
			return true
		}
	}
	return false
}

// Stats is a snapshot of a Store's counters.
type Stats struct {
	Hits      uint64 // reads that found a live entry
	Misses    uint64 // reads that did not, including those of expired entries
	Evictions uint64 // entries evicted to make room: if high, MaxBytes is too small
}

// Stats returns the counters. They survive Close.
func (s *Store) Stats() Stats {
	var st Stats
	for i := range s.shards {
		h, m, e := s.shards[i].stats()
		st.Hits += h
		st.Misses += m
		st.Evictions += e
	}
	return st
}

// Close drops every entry, so their memory can be reclaimed; every later
// call, and every concurrent one that has not yet reached its shard,
// returns tierstore.ErrClosed. Close is idempotent and always returns nil.
func (s *Store) Close() error {
	s.closed.Store(true)
	for i := range s.shards {
		s.shards[i].close()
	}
	return nil
}
