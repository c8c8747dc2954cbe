package l1_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/storetest"
)

func newStore(t testing.TB, cfg l1.Config) *l1.Store {
	t.Helper()
	s, err := l1.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tierstore.Store { return newStore(t, l1.Config{}) })
}

func TestBadInput(t *testing.T) {
	storetest.RunBadInput(t, func(t *testing.T) tierstore.Store { return newStore(t, l1.Config{}) }, nil)
}

func TestInvalidateKillsFillStampedBefore(t *testing.T) {
	s := newStore(t, l1.Config{})
	st := s.Stamp("k") // a reader takes its stamp, then reads the source...
	s.Invalidate("k")  // ...a write elsewhere invalidates...
	s.Fill("k", []byte("old"), time.Time{}, st)
	s.Wait()
	if hit, _, _ := s.Lookup("k", func([]byte) error { return nil }); hit {
		t.Fatal("a fill stamped before an invalidation was served")
	}
	// A fill stamped after the invalidation is served.
	s.Fill("k", []byte("new"), time.Time{}, s.Stamp("k"))
	waitHit(t, s, "k", "new")
}

func TestInvalidateAllKillsEveryEntryAndFillInFlight(t *testing.T) {
	s := newStore(t, l1.Config{})
	s.Fill("a", []byte("1"), time.Time{}, s.Stamp("a"))
	waitHit(t, s, "a", "1")
	st := s.Stamp("b")
	s.InvalidateAll()
	s.Fill("b", []byte("2"), time.Time{}, st)
	s.Wait()
	for _, k := range []string{"a", "b"} {
		if hit, _, _ := s.Lookup(k, func([]byte) error { return nil }); hit {
			t.Fatalf("%s served after InvalidateAll", k)
		}
	}
}

func TestEndWriteCachesOnlyWhenNothingIntervened(t *testing.T) {
	s := newStore(t, l1.Config{})
	st := s.BeginWrite("k")
	s.EndWrite("k", st, []byte("mine"), time.Time{})
	waitHit(t, s, "k", "mine")

	// An invalidation from a peer arrives while the write is in flight:
	// the peer's write may be the newer one, so nothing may be cached.
	st = s.BeginWrite("k")
	s.Invalidate("k")
	s.EndWrite("k", st, []byte("maybe-old"), time.Time{})
	s.Wait()
	if hit, _, _ := s.Lookup("k", func([]byte) error { return nil }); hit {
		t.Fatal("a write that raced a peer's invalidation was cached")
	}
}

// A write in flight keeps the old value serving; once it ends, only the
// new value (or, after a failed write or a delete, nothing) is served.
func TestOldValueServesUntilEndWrite(t *testing.T) {
	s := newStore(t, l1.Config{})
	for _, newValue := range [][]byte{[]byte("new"), nil} {
		s.Fill("k", []byte("old"), time.Time{}, s.Stamp("k"))
		waitHit(t, s, "k", "old")
		st := s.BeginWrite("k")
		if got := lookup(t, s, "k"); got != "old" {
			t.Fatalf("during the write: %q, want the old value", got)
		}
		s.EndWrite("k", st, newValue, time.Time{})
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
	s := newStore(t, l1.Config{})
	st := s.BeginWrite("k")
	readerStamp := s.Stamp("k") // a reader starts during the write, reads the old value
	s.EndWrite("k", st, []byte("new"), time.Time{})
	s.Fill("k", []byte("old"), time.Time{}, readerStamp) // and fills late
	waitHit(t, s, "k", "new")
}

func TestFillNeverOutlivesExpiry(t *testing.T) {
	s := newStore(t, l1.Config{})
	if s.Fill("k", []byte("v"), time.Now().Add(-time.Millisecond), s.Stamp("k")) {
		t.Fatal("an already expired value was handed to the cache")
	}
	s.Fill("k", []byte("v"), time.Now().Add(150*time.Millisecond), s.Stamp("k"))
	waitHit(t, s, "k", "v")
	waitMiss(t, s, "k")
}

func TestTTLCapsEntryLifetime(t *testing.T) {
	s := newStore(t, l1.Config{TTL: 150 * time.Millisecond})
	s.Fill("k", []byte("v"), time.Now().Add(time.Hour), s.Stamp("k"))
	waitHit(t, s, "k", "v")
	waitMiss(t, s, "k")
}

func TestExtendKeepsTheTTLCap(t *testing.T) {
	s := newStore(t, l1.Config{TTL: 300 * time.Millisecond})
	s.Fill("k", []byte("v"), time.Now().Add(time.Minute), s.Stamp("k"))
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
	s := newStore(t, l1.Config{MaxBytes: maxBytes})
	ctx := context.Background()
	value := make([]byte, 1000)
	key := func(i int) string { return fmt.Sprintf("key-%d", i) }
	for i := range 5000 { // ~5 MB offered to a 1 MiB cache
		err := s.Set(ctx, key(i), value, time.Time{})
		if err != nil && !errors.Is(err, l1.ErrNotAdmitted) {
			t.Fatal(err)
		}
	}
	present := 0
	for i := range 5000 {
		if _, err := s.Get(ctx, key(i)); err == nil {
			present++
		}
	}
	limit := maxBytes / (len(key(4999)) + len(value) + l1.EntryOverhead)
	if present == 0 || present > limit {
		t.Fatalf("%d entries held under MaxBytes %d, want 1..%d", present, maxBytes, limit)
	}
}

func TestClosedStoreRefusesOperations(t *testing.T) {
	s := newStore(t, l1.Config{})
	s.Close()
	ctx := context.Background()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	if err := s.Set(ctx, "k", []byte("v"), time.Time{}); !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("Set after Close = %v, want ErrClosed", err)
	}
}

// waitHit waits for ristretto's asynchronous admission of a new key.
func waitHit(t *testing.T, s *l1.Store, key, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got string
		hit, _, _ := s.Lookup(key, func(b []byte) error { got = string(b); return nil })
		if hit {
			if got != want {
				t.Fatalf("Lookup(%q) = %q, want %q", key, got, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lookup(%q) never hit", key)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitMiss(t *testing.T, s *l1.Store, key string) {
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
func lookup(t *testing.T, s *l1.Store, key string) string {
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
