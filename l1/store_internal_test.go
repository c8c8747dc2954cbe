package l1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
)

// fakeClock is a clock the test moves by hand, so TTL tests need no
// sleeps.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time                  { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration)         { c.ns.Add(int64(d)) }
func (c *fakeClock) after(d time.Duration) time.Time { return c.now().Add(d) }

func newTestStore(t *testing.T, cfg Config) (*Store, *fakeClock) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := newFakeClock()
	s.now, s.born = c.now, c.now()
	return s, c
}

func present(t *testing.T, s *Store, key string) bool {
	t.Helper()
	_, err := s.Get(context.Background(), key)
	if err != nil && !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestTTLCapsEntryLifetime(t *testing.T) {
	ctx := context.Background()
	s, clock := newTestStore(t, Config{TTL: time.Minute})
	if err := s.Set(ctx, "k", []byte("v"), clock.after(time.Hour)); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Minute - 1)
	if !present(t, s, "k") {
		t.Fatal("gone before its TTL")
	}
	clock.advance(1)
	if present(t, s, "k") {
		t.Fatal("served after its TTL, though its expiry is an hour away")
	}
}

func TestTouchDoesNotRestartTheTTL(t *testing.T) {
	ctx := context.Background()
	s, clock := newTestStore(t, Config{TTL: time.Minute})
	if err := s.Set(ctx, "k", []byte("v"), clock.after(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for range 5 { // touched every 10 s, as a busy session would be
		clock.advance(10 * time.Second)
		if err := s.Touch(ctx, "k", clock.after(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(10 * time.Second)
	if present(t, s, "k") {
		t.Fatal("a touched entry outlived its TTL")
	}
	if err := s.Touch(ctx, "k", clock.after(time.Hour)); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatalf("Touch after the TTL = %v, want ErrNotFound", err)
	}
	// A Set is a new value: it starts a new TTL.
	if err := s.Set(ctx, "k", []byte("v2"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Minute - 1)
	if !present(t, s, "k") {
		t.Fatal("a rewritten entry kept its predecessor's TTL")
	}
}

func TestExpiryEndsEntryAndZeroMeansNone(t *testing.T) {
	ctx := context.Background()
	s, clock := newTestStore(t, Config{})
	exp := clock.after(time.Second)
	if err := s.Set(ctx, "k", []byte("v"), exp); err != nil {
		t.Fatal(err)
	}
	if _, _, got, err := s.GetVersion(ctx, "k", tierstore.NoVersion); err != nil || !got.Equal(exp) {
		t.Fatalf("GetVersion expiry = %v, %v; want %v", got, err, exp)
	}
	if err := s.Set(ctx, "forever", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Second)
	if present(t, s, "k") {
		t.Fatal("served at its expiry")
	}
	clock.advance(100 * 365 * 24 * time.Hour)
	if !present(t, s, "forever") {
		t.Fatal("an entry without expiry or TTL expired")
	}
	// Touch with a zero expiry removes it.
	if err := s.Set(ctx, "k", []byte("v"), clock.after(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, "k", time.Time{}); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Hour)
	if _, _, got, err := s.GetVersion(ctx, "k", tierstore.NoVersion); err != nil || !got.IsZero() {
		t.Fatalf("after Touch(zero): GetVersion expiry = %v, %v; want no expiry", got, err)
	}
}

// An expired entry that is read is removed then, and its bytes with it;
// Keys does not list it.
func TestExpiredEntriesAreRemovedOnRead(t *testing.T) {
	ctx := context.Background()
	s, clock := newTestStore(t, Config{})
	if err := s.Set(ctx, "k", make([]byte, 100), clock.after(time.Second)); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Second)
	var keys []string
	_ = s.Keys(ctx, func(k string) bool { keys = append(keys, k); return true })
	if len(keys) != 0 {
		t.Fatalf("Keys listed expired %v", keys)
	}
	if s.used.Load() == 0 {
		t.Fatal("expired entry gone before it was read: the test checks nothing")
	}
	if err := s.View(ctx, "k", func([]byte) error { return nil }); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatalf("View(expired) = %v, want ErrNotFound", err)
	}
	if used := s.used.Load(); used != 0 {
		t.Fatalf("%d bytes still charged after the expired entry was read", used)
	}
}

// keysInShard returns n keys of 6 bytes that all hash to shard 0, so
// that the test sees one shard's exact order.
func keysInShard(s *Store, n int) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		if k := fmt.Sprintf("k%05d", i); s.shardOf(k) == 0 {
			keys = append(keys, k)
		}
	}
	return keys
}

// Within a shard, eviction takes the least recently used entry: reads,
// touches and overwrites all count as uses.
func TestEvictsInLRUOrderWithinAShard(t *testing.T) {
	ctx := context.Background()
	value := make([]byte, 100) // allocates 112
	s, clock := newTestStore(t, Config{MaxBytes: 4 * (6 + 112 + EntryOverhead)})
	keys := keysInShard(s, 7)
	set := func(k string) {
		t.Helper()
		if err := s.Set(ctx, k, value, clock.after(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c, d, e, f, g := keys[0], keys[1], keys[2], keys[3], keys[4], keys[5], keys[6]
	for _, k := range []string{a, b, c, d} { // full: a is the oldest
		set(k)
	}
	present(t, s, a)                                      // order now b c d a
	_ = s.Touch(ctx, b, clock.after(time.Hour))           // c d a b
	set(c)                                                // d a b c
	set(e)                                                // evicts d
	set(f)                                                // evicts a
	_ = s.View(ctx, b, func([]byte) error { return nil }) // c e f b
	set(g)                                                // evicts c
	var got []string
	for _, k := range keys[:7] {
		if present(t, s, k) {
			got = append(got, k)
		}
	}
	want := []string{b, e, f, g}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("survivors %v, want %v", got, want)
	}
	if ev := s.Stats().Evictions; ev != 3 {
		t.Fatalf("%d evictions, want 3", ev)
	}
}

// A write that needs room while its own shard holds only itself evicts
// from the other shards, and never its own entry.
func TestWriteEvictsFromOtherShardsNotItself(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Config{MaxBytes: 64 << 10})
	for i := 0; s.used.Load() < 60<<10; i++ {
		if k := "f" + strconv.Itoa(i); s.shardOf(k) != 0 {
			if err := s.Set(ctx, k, make([]byte, 1000), time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	big := keysInShard(s, 1)[0]
	if err := s.Set(ctx, big, make([]byte, 32<<10), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if !present(t, s, big) {
		t.Fatal("the write evicted its own entry")
	}
	if used := s.used.Load(); used > s.maxBytes {
		t.Fatalf("%d bytes used, over MaxBytes %d", used, s.maxBytes)
	}
}

// The byte accounting returns to zero when every entry is gone, however
// they went: deleted, overwritten, evicted, expired, touched away, closed.
func TestAccountingBalances(t *testing.T) {
	ctx := context.Background()
	s, clock := newTestStore(t, Config{MaxBytes: 32 << 10, TTL: time.Hour})
	for i := range 200 {
		k := "k" + strconv.Itoa(i%50)
		_ = s.Set(ctx, k, make([]byte, i*7), clock.after(time.Minute))
		switch i % 5 {
		case 1:
			_ = s.Delete(ctx, k)
		case 2:
			_ = s.Touch(ctx, k, clock.after(-time.Second))
		case 3:
			clock.advance(time.Second)
		}
	}
	var sum int64
	for i := range s.shards {
		sum += s.shards[i].bytes.Load()
	}
	if sum != s.used.Load() || sum > s.maxBytes {
		t.Fatalf("shards hold %d bytes, the store counts %d (max %d)", sum, s.used.Load(), s.maxBytes)
	}
	clock.advance(2 * time.Hour)
	_ = s.Keys(ctx, func(string) bool { return true })
	for i := range 50 {
		present(t, s, "k"+strconv.Itoa(i))
	}
	if used := s.used.Load(); used != 0 {
		t.Fatalf("%d bytes charged with every entry expired and read", used)
	}
	_ = s.Set(ctx, "k", []byte("v"), time.Time{})
	s.Close()
	if used := s.used.Load(); used != 0 {
		t.Fatalf("%d bytes charged after Close", used)
	}
}

// Expiries beyond int64 nanoseconds (after 2262) mean "practically
// never", not an overflow into the past.
func TestFarFutureExpiry(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Config{})
	s.now, s.born = nil, time.Now() // the real clock
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Set(ctx, "k", []byte("v"), far); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, "k", far); err != nil {
		t.Fatal(err)
	}
	_, _, got, err := s.GetVersion(ctx, "k", tierstore.NoVersion)
	if err != nil || got.After(far) || got.Year() < 2262 {
		t.Fatalf("GetVersion expiry = %v, %v; want an expiry in [2262, %v]", got, err, far)
	}
}

// A hit can move the entries of the writer's shard ahead of the entry the
// write just made, leaving it at the tail. Eviction must then take the
// next entry, not give up with the store over MaxBytes.
func TestEvictionSkipsOnlyTheNewEntry(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Config{MaxBytes: 500})
	value := make([]byte, 100)
	a := "a"
	b := ""
	for i := 0; b == ""; i++ { // a key in a's shard
		if k := "b" + strconv.Itoa(i); s.shardOf(k) == s.shardOf(a) {
			b = k
		}
	}
	if err := s.Set(ctx, a, value, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Set(b), replayed step by step: b lands, then a hit of a moves a in
	// front of it, then b's write evicts.
	home := s.shardOf(b)
	e, _, err := s.shards[home].set(b, bytes.Clone(value), deadlines{}, &s.version, anyVersion, s.clock())
	if err != nil {
		t.Fatal(err)
	}
	if !present(t, s, a) {
		t.Fatal("a missing before the eviction")
	}
	s.evict(home, e)
	if used := s.used.Load(); used > s.maxBytes {
		t.Fatalf("used %d bytes after the eviction, MaxBytes %d", used, s.maxBytes)
	}
	if present(t, s, a) || !present(t, s, b) {
		t.Fatalf("after the eviction: a present %v, b present %v; want a evicted, b kept", present(t, s, a), present(t, s, b))
	}
}

// Any expiry other than the zero time is an expiry, even 1970's: a Set
// with one in the past deletes.
func TestExpiryAtTheEpochIsPast(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Config{})
	for _, expiry := range []time.Time{time.Unix(0, 0), time.Unix(-1, 0), time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC)} {
		if err := s.Set(ctx, "k", []byte("v"), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(ctx, "k", []byte("v"), expiry); err != nil {
			t.Fatal(err)
		}
		if present(t, s, "k") {
			t.Fatalf("Set with expiry %v kept the key", expiry)
		}
	}
}
