// Package storetest is the conformance suite for tierstore.Store
// implementations, in the manner of testing/fstest: a Store that passes
// it behaves like tierstore's own (memory, Redis and tiered all run it),
// so session managers and adapters can use it interchangeably.
//
// Use it from a test of your own Store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tierstore.Store {
//			return newEmptyStore(t) // a fresh, empty store per subtest
//		})
//		storetest.RunBadInput(t, func(t *testing.T) tierstore.Store {
//			return newEmptyStore(t)
//		}, nil)
//	}
//
// The optional capabilities (tierstore.Toucher, Lister, Versioned,
// VersionViewer) are checked when the store implements them; the subtests of a
// capability it lacks are skipped, saying so.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
)

// Option adjusts the suite to a backend's known deviation.
type Option int

// FrozenTTLs: the Redis server does not count TTLs down in real time
// (miniredis), so PTTL-derived expiries may lie later than the set expiry
// by the time elapsed since the write.
const FrozenTTLs Option = 1

// Run runs the suite. newStore returns an empty store whose MaxValueBytes
// is tierstore.DefaultMaxValueBytes; it is called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) tierstore.Store, opts ...Option) {
	slack := time.Duration(0)
	for _, o := range opts {
		if o == FrozenTTLs {
			slack = time.Second
		}
	}
	ctx := context.Background()
	hour := func() time.Time { return time.Now().Add(time.Hour) }

	t.Run("SetThenGetReturnsValue", func(t *testing.T) {
		s := newStore(t)
		mustSet(t, s, "k", []byte("v1"), hour())
		mustGet(t, s, "k", "v1")
		mustSet(t, s, "k", []byte("v2"), hour())
		mustGet(t, s, "k", "v2")
	})
	t.Run("GetMissingIsNotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Get(ctx, "absent"); !errors.Is(err, tierstore.ErrNotFound) {
			t.Fatalf("Get(absent) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("EmptyValueRoundTrips", func(t *testing.T) {
		s := newStore(t)
		mustSet(t, s, "k", []byte{}, hour())
		mustGet(t, s, "k", "")
	})
	t.Run("ReturnedBytesBelongToCaller", func(t *testing.T) {
		s := newStore(t)
		in := []byte("value")
		mustSet(t, s, "k", in, hour())
		copy(in, "XXXXX") // the store must not keep the caller's slice
		got, err := s.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		copy(got, "YYYYY") // nor hand out its own
		mustGet(t, s, "k", "value")
	})
	t.Run("DeleteRemovesAndMissingIsNoError", func(t *testing.T) {
		s := newStore(t)
		mustSet(t, s, "k", []byte("v"), hour())
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		mustMiss(t, s, "k")
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatalf("Delete(missing) = %v, want nil", err)
		}
	})
	t.Run("ZeroExpiryMeansNoExpiry", func(t *testing.T) {
		s := newStore(t)
		mustSet(t, s, "k", []byte("v"), time.Time{})
		mustGet(t, s, "k", "v")
	})
	t.Run("PastExpiryDeletes", func(t *testing.T) {
		s := newStore(t)
		mustSet(t, s, "k", []byte("v"), hour())
		mustSet(t, s, "k", []byte("new"), time.Now().Add(-time.Second))
		mustMiss(t, s, "k")
	})
	t.Run("InvalidKeysAreRefused", func(t *testing.T) {
		s := newStore(t)
		for _, key := range []string{"", strings.Repeat("k", tierstore.MaxKeyBytes+1), "a\x00b", "line\nbreak", "\xff\xfe"} {
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, tierstore.ErrInvalidKey) {
					t.Errorf("%s(%q) error = %v, want ErrInvalidKey", op, key, err)
				}
			}
			_, err := s.Get(ctx, key)
			check("Get", err)
			check("Set", s.Set(ctx, key, []byte("v"), hour()))
			check("Delete", s.Delete(ctx, key))
			if tc, ok := s.(tierstore.Toucher); ok {
				check("Touch", tc.Touch(ctx, key, hour()))
			}
		}
		// The longest legal key works.
		long := strings.Repeat("k", tierstore.MaxKeyBytes)
		mustSet(t, s, long, []byte("v"), hour())
		mustGet(t, s, long, "v")
	})
	t.Run("OversizedValueIsRefusedAndNothingStored", func(t *testing.T) {
		s := newStore(t)
		mustSet(t, s, "k", []byte("old"), hour())
		err := s.Set(ctx, "k", make([]byte, tierstore.DefaultMaxValueBytes+1), hour())
		if !errors.Is(err, tierstore.ErrTooLarge) {
			t.Fatalf("Set(1 MiB + 1) error = %v, want ErrTooLarge", err)
		}
		mustGet(t, s, "k", "old")
		mustSet(t, s, "k", make([]byte, tierstore.DefaultMaxValueBytes), hour())
	})
	t.Run("CancelledContextFailsEveryOperation", func(t *testing.T) {
		s := newStore(t)
		mustSet(t, s, "k", []byte("v"), hour())
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with cancelled context: error = %v, want context.Canceled", op, err)
			}
		}
		_, err := s.Get(cctx, "k")
		check("Get", err)
		check("Set", s.Set(cctx, "k", []byte("w"), hour()))
		check("Delete", s.Delete(cctx, "k"))
		mustGet(t, s, "k", "v") // nothing happened
	})
	t.Run("TouchKeepsValueAndReportsMissing", func(t *testing.T) {
		s := newStore(t)
		tc, ok := s.(tierstore.Toucher)
		if !ok {
			t.Skip("store does not implement tierstore.Toucher")
		}
		if err := tc.Touch(ctx, "absent", hour()); !errors.Is(err, tierstore.ErrNotFound) {
			t.Fatalf("Touch(absent) = %v, want ErrNotFound", err)
		}
		mustSet(t, s, "k", []byte("v"), time.Now().Add(time.Minute))
		if err := tc.Touch(ctx, "k", hour()); err != nil {
			t.Fatal(err)
		}
		mustGet(t, s, "k", "v")
		if err := tc.Touch(ctx, "k", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		mustMiss(t, s, "k")
	})
	t.Run("ViewVersionLendsValueAndPassesErrors", func(t *testing.T) {
		s := newStore(t)
		v, ok := s.(tierstore.VersionViewer)
		if !ok {
			t.Skip("store does not implement tierstore.VersionViewer")
		}
		called := false
		err := v.ViewVersion(ctx, "absent", tierstore.NoVersion, func([]byte, tierstore.Version, time.Time) error { called = true; return nil })
		if !errors.Is(err, tierstore.ErrNotFound) || called {
			t.Fatalf("ViewVersion(absent) = %v, fn called %v; want ErrNotFound and no call", err, called)
		}
		mustSet(t, s, "k", []byte("v"), hour())
		for range 2 { // a miss, then (for cached tiers) a hit
			var got []byte
			var version tierstore.Version
			if err := v.ViewVersion(ctx, "k", tierstore.NoVersion, func(b []byte, ver tierstore.Version, _ time.Time) error {
				got, version = bytes.Clone(b), ver
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if string(got) != "v" || version == tierstore.NoVersion {
				t.Fatalf("ViewVersion saw %q, version %d; want %q and a version", got, version, "v")
			}
		}
		boom := errors.New("boom")
		if err := v.ViewVersion(ctx, "k", tierstore.NoVersion, func([]byte, tierstore.Version, time.Time) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("ViewVersion error = %v, want fn's error", err)
		}
	})
	t.Run("KeysListsLiveKeys", func(t *testing.T) {
		s := newStore(t)
		l, ok := s.(tierstore.Lister)
		if !ok {
			t.Skip("store does not implement tierstore.Lister")
		}
		for _, k := range []string{"a", "b", "c", "d*?[x]"} {
			mustSet(t, s, k, []byte("v"), hour())
		}
		if err := s.Delete(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		if err := l.Keys(ctx, func(k string) bool { got[k] = true; return true }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || !got["a"] || !got["c"] || !got["d*?[x]"] {
			t.Fatalf("Keys = %v, want a, c and d*?[x]", got)
		}
		calls := 0
		if err := l.Keys(ctx, func(string) bool { calls++; return false }); err != nil || calls != 1 {
			t.Fatalf("Keys with a stopping fn: %d calls, %v; want 1 call", calls, err)
		}
	})
	t.Run("GetVersionReportsExpiry", func(t *testing.T) {
		s := newStore(t)
		vs, ok := s.(tierstore.Versioned)
		if !ok {
			t.Skip("store does not implement tierstore.Versioned")
		}
		expiryOf := func(key string) ([]byte, time.Time, error) {
			v, _, exp, err := vs.GetVersion(ctx, key, tierstore.NoVersion)
			return v, exp, err
		}
		exp := time.Now().Add(10 * time.Minute).Truncate(time.Millisecond)
		mustSet(t, s, "k", []byte("v"), exp)
		for range 2 { // a miss, then (for cached tiers) a hit
			v, got, err := expiryOf("k")
			if err != nil || string(v) != "v" || got.After(exp.Add(slack)) || got.Before(exp.Add(-2*time.Second)) {
				t.Fatalf("GetVersion = %q, expiry %v, %v; want v, at most %v", v, got, err, exp)
			}
		}
		tc, ok := s.(tierstore.Toucher)
		if !ok {
			return
		}
		later := exp.Add(time.Hour)
		if err := tc.Touch(ctx, "k", later); err != nil {
			t.Fatal(err)
		}
		if _, got, err := expiryOf("k"); err != nil || !got.After(exp) || got.After(later.Add(slack)) {
			t.Fatalf("after Touch, GetVersion expiry = %v, %v; want in (%v, %v]", got, err, exp, later)
		}
		mustSet(t, s, "forever", []byte("v"), time.Time{})
		if _, got, err := expiryOf("forever"); err != nil || !got.IsZero() {
			t.Fatalf("GetVersion(no expiry) expiry = %v, %v; want zero time", got, err)
		}
	})
	runVersioned(t, newStore, slack)
	t.Run("ConcurrentUseIsSafe", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				own := "own-" + string(rune('0'+w))
				for i := range 100 {
					val := []byte{byte(w), byte(i)}
					// Read-your-writes on a key nobody else writes...
					if err := s.Set(ctx, own, val, hour()); err != nil {
						t.Error(err)
						return
					}
					if got, err := s.Get(ctx, own); err != nil || !bytes.Equal(got, val) {
						t.Errorf("Get(%s) = %v, %v; want %v", own, got, err, val)
						return
					}
					// ...and no torn or foreign values on a contended one.
					if err := s.Set(ctx, "shared", val, hour()); err != nil {
						t.Error(err)
						return
					}
					got, err := s.Get(ctx, "shared")
					if err != nil && !errors.Is(err, tierstore.ErrNotFound) || err == nil && len(got) != 2 {
						t.Errorf("Get(shared) = %v, %v", got, err)
						return
					}
					if i%10 == 0 {
						if err := s.Delete(ctx, "shared"); err != nil {
							t.Error(err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
	})
}

func mustSet(t *testing.T, s tierstore.Store, key string, v []byte, exp time.Time) {
	t.Helper()
	if err := s.Set(context.Background(), key, v, exp); err != nil {
		t.Fatalf("Set(%q) = %v", key, err)
	}
}

func mustGet(t *testing.T, s tierstore.Store, key, want string) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if err != nil || string(got) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, want)
	}
}

func mustMiss(t *testing.T, s tierstore.Store, key string) {
	t.Helper()
	if got, err := s.Get(context.Background(), key); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}
