package nearcache_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tierstore/tierstore/internal/nearcache"
)

func newStore(t testing.TB, cfg nearcache.Config) *nearcache.Cache {
	t.Helper()
	s, err := nearcache.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestInvalidateKillsFillStampedBefore(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	st := s.Stamp("k") // a reader takes its stamp, then reads the source...
	s.Invalidate("k")  // ...a write elsewhere invalidates...
	s.Fill("k", []byte("old"), nearcache.Meta{}, st)
	s.Wait()
	if hit, _, _ := s.Lookup("k", func([]byte) error { return nil }); hit {
		t.Fatal("a fill stamped before an invalidation was served")
	}
	// A fill stamped after the invalidation is served.
	s.Fill("k", []byte("new"), nearcache.Meta{}, s.Stamp("k"))
	waitHit(t, s, "k", "new")
}

func TestInvalidateAllKillsEveryEntryAndFillInFlight(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	s.Fill("a", []byte("1"), nearcache.Meta{}, s.Stamp("a"))
	waitHit(t, s, "a", "1")
	st := s.Stamp("b")
	s.InvalidateAll()
	s.Fill("b", []byte("2"), nearcache.Meta{}, st)
	s.Wait()
	for _, k := range []string{"a", "b"} {
		if hit, _, _ := s.Lookup(k, func([]byte) error { return nil }); hit {
			t.Fatalf("%s served after InvalidateAll", k)
		}
	}
}

func TestEndWriteCachesOnlyWhenNothingIntervened(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	st := s.BeginWrite("k")
	s.EndWrite("k", st, []byte("mine"), nearcache.Meta{})
	waitHit(t, s, "k", "mine")

	// An invalidation from a peer arrives while the write is in flight:
	// the peer's write may be the newer one, so nothing may be cached.
	st = s.BeginWrite("k")
	s.Invalidate("k")
	s.EndWrite("k", st, []byte("maybe-old"), nearcache.Meta{})
	s.Wait()
	if hit, _, _ := s.Lookup("k", func([]byte) error { return nil }); hit {
		t.Fatal("a write that raced a peer's invalidation was cached")
	}
}

// A write in flight keeps the old value serving; once it ends, only the
// new value (or, after a failed write or a delete, nothing) is served.
func TestOldValueServesUntilEndWrite(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	for _, newValue := range [][]byte{[]byte("new"), nil} {
		s.Fill("k", []byte("old"), nearcache.Meta{}, s.Stamp("k"))
		waitHit(t, s, "k", "old")
		st := s.BeginWrite("k")
		if got := lookup(t, s, "k"); got != "old" {
			t.Fatalf("during the write: %q, want the old value", got)
		}
		s.EndWrite("k", st, newValue, nearcache.Meta{})
		if newValue == nil {
			if got := lookup(t, s, "k"); got != "" {
				t.Fatalf("after a delete or failed write: %q served", got)
			}
			continue
		}
		waitHit(t, s, "k", "new")
	}
}

func TestEndWriteKillsConcurrentReaderFill(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	st := s.BeginWrite("k")
	readerStamp := s.Stamp("k") // a reader starts during the write, reads the old value
	s.EndWrite("k", st, []byte("new"), nearcache.Meta{})
	s.Fill("k", []byte("old"), nearcache.Meta{}, readerStamp) // and fills late
	waitHit(t, s, "k", "new")
}

func TestFillNeverOutlivesExpiry(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	if s.Fill("k", []byte("v"), nearcache.Meta{Expiry: time.Now().Add(-time.Millisecond)}, s.Stamp("k")) {
		t.Fatal("an already expired value was handed to the cache")
	}
	s.Fill("k", []byte("v"), nearcache.Meta{Expiry: time.Now().Add(150 * time.Millisecond)}, s.Stamp("k"))
	waitHit(t, s, "k", "v")
	waitMiss(t, s, "k")
}

func TestTTLCapsEntryLifetime(t *testing.T) {
	s := newStore(t, nearcache.Config{TTL: 150 * time.Millisecond})
	s.Fill("k", []byte("v"), nearcache.Meta{Expiry: time.Now().Add(time.Hour)}, s.Stamp("k"))
	waitHit(t, s, "k", "v")
	waitMiss(t, s, "k")
}

func TestExtendKeepsTheTTLCap(t *testing.T) {
	s := newStore(t, nearcache.Config{TTL: 300 * time.Millisecond})
	s.Fill("k", []byte("v"), nearcache.Meta{Expiry: time.Now().Add(time.Minute)}, s.Stamp("k"))
	waitHit(t, s, "k", "v")
	// Touches extend the value's expiry, but the copy must still leave
	// memory when its TTL runs out.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.Extend("k", time.Now().Add(time.Hour))
		if hit, _, _ := s.Lookup("k", func([]byte) error { return nil }); !hit {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("an entry extended every few milliseconds outlived its TTL")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMemoryIsBoundedByMaxBytes(t *testing.T) {
	const maxBytes = 1 << 20
	s := newStore(t, nearcache.Config{MaxBytes: maxBytes})
	value := make([]byte, 1000)
	key := func(i int) string { return fmt.Sprintf("key-%d", i) }
	for i := range 5000 { // ~5 MB offered to a 1 MiB cache
		s.Fill(key(i), value, nearcache.Meta{}, s.Stamp(key(i)))
	}
	s.Wait()
	limit := maxBytes / (len(key(4999)) + len(value) + nearcache.EntryOverhead)
	if n := s.Len(); n == 0 || n > limit {
		t.Fatalf("%d entries held under MaxBytes %d, want 1..%d", n, maxBytes, limit)
	}
}

// ristretto panics on a send to a closed channel when its Close runs
// concurrently with Get, Set, Del or Wait; a graceful shutdown with
// requests still in flight does exactly that. Close must wait for them.
func TestCloseDuringCallsNeverPanics(t *testing.T) {
	for range 20 {
		s, err := nearcache.New(nearcache.Config{MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		started := make(chan struct{}, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					k := fmt.Sprintf("k%d-%d", g, i%64)
					s.Fill(k, []byte("v"), nearcache.Meta{}, s.Stamp(k))
					s.Lookup(k, func([]byte) error { return nil })
					st := s.BeginWrite(k)
					s.EndWrite(k, st, nil, nearcache.Meta{})
					s.Invalidate(k)
					s.Extend(k, time.Now().Add(time.Hour))
					s.Wait()
					if i == 10 {
						started <- struct{}{}
					}
					if i > 10 && s.Len() == 0 && !s.Fill(k, []byte("v"), nearcache.Meta{}, s.Stamp(k)) {
						return // closed: every call is now a no-op
					}
				}
			}()
		}
		for range 8 {
			<-started
		}
		s.Close()
		wg.Wait()
		if s.Fill("k", []byte("v"), nearcache.Meta{}, s.Stamp("k")) {
			t.Fatal("a closed cache accepted a fill")
		}
		if hit, _, _ := s.Lookup("k", func([]byte) error { return nil }); hit {
			t.Fatal("a closed cache served a hit")
		}
	}
}

// waitHit waits for ristretto to apply the writes handed to it, then
// expects key to hit with want.
func waitHit(t *testing.T, s *nearcache.Cache, key, want string) {
	t.Helper()
	s.Wait()
	if got := lookup(t, s, key); got != want {
		t.Fatalf("Lookup(%q) = %q, want %q", key, got, want)
	}
}

func waitMiss(t *testing.T, s *nearcache.Cache, key string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if hit, _, _ := s.Lookup(key, func([]byte) error { return nil }); !hit {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lookup(%q) still hits", key)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lookup returns the value Lookup serves for key, or "" on a miss.
func lookup(t *testing.T, s *nearcache.Cache, key string) string {
	t.Helper()
	var got string
	hit, _, err := s.Lookup(key, func(b []byte) error { got = string(b); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !hit {
		return ""
	}
	return got
}

// An expiry centuries away (past what time.Until can count) is cached
// like no expiry, not refused as an overflowed deadline.
func TestFarFutureExpiryIsCached(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	for _, year := range []int{2300, 2400, 9999} {
		key := fmt.Sprint("k", year)
		if !s.Fill(key, []byte("v"), nearcache.Meta{Expiry: time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)}, s.Stamp(key)) {
			t.Fatalf("Fill with an expiry in %d refused", year)
		}
		waitHit(t, s, key, "v")
	}
}
