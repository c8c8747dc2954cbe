package l1_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
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

func TestNewRefusesNegativeConfig(t *testing.T) {
	for _, cfg := range []l1.Config{{MaxBytes: -1}, {TTL: -1}, {MaxValueBytes: -1}} {
		if _, err := l1.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// The store holds the only copy of a session, so a full store must make
// room for a new login rather than refuse it: the old ristretto-based
// store refused some of these (its admission policy preferred the hot
// sessions), and session middleware turned that into HTTP 500s.
func TestFullStoreAdmitsEveryNewWrite(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, l1.Config{MaxBytes: 1 << 20})
	value := make([]byte, 1000)
	hour := time.Now().Add(time.Hour)
	// Fill the store twice over with sessions, each read many times.
	hot := (2 << 20) / (len(value) + 20 + l1.EntryOverhead)
	for i := range hot {
		key := "hot:" + strconv.Itoa(i)
		if err := s.Set(ctx, key, value, hour); err != nil {
			t.Fatalf("Set(hot %d) = %v", i, err)
		}
		for range 20 {
			_, _ = s.Get(ctx, key)
		}
	}
	for i := range 200 {
		key := "login:" + strconv.Itoa(i)
		if err := s.Set(ctx, key, value, hour); err != nil {
			t.Fatalf("Set(new login %d) = %v, want nil", i, err)
		}
		if got, err := s.Get(ctx, key); err != nil || len(got) != len(value) {
			t.Fatalf("Get(new login %d) right after its Set = %d bytes, %v", i, len(got), err)
		}
	}
}

// Close may run while calls are in flight: each either completes or
// returns ErrClosed, none panics, and every call after Close returns
// ErrClosed.
func TestCloseDuringCallsNeverPanics(t *testing.T) {
	for round := range 20 {
		s, err := l1.New(l1.Config{MaxBytes: 256 << 10})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		hour := time.Now().Add(time.Hour)
		ok := func(err error) bool {
			return err == nil || errors.Is(err, tierstore.ErrNotFound) || errors.Is(err, tierstore.ErrClosed)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range 8 {
			wg.Go(func() {
				<-start
				value := make([]byte, 500)
				for i := 0; ; i++ {
					key := fmt.Sprintf("k%d-%d", w, i%300)
					errs := []error{s.Set(ctx, key, value, hour)}
					_, err := s.Get(ctx, key)
					errs = append(errs, err,
						s.Touch(ctx, key, hour),
						s.View(ctx, key, func([]byte) error { return nil }),
						s.Keys(ctx, func(string) bool { return i%2 == 0 }),
						s.Delete(ctx, key))
					closed := 0
					for _, err := range errs {
						if !ok(err) {
							t.Errorf("round %d: %v", round, err)
							return
						}
						if errors.Is(err, tierstore.ErrClosed) {
							closed++
						}
					}
					if closed == len(errs) {
						return
					}
				}
			})
		}
		close(start)
		runtime.Gosched()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
		if _, err := s.Get(ctx, "k0-0"); !errors.Is(err, tierstore.ErrClosed) {
			t.Fatalf("Get after Close = %v, want ErrClosed", err)
		}
	}
}

// Every call that starts after Close returns ErrClosed, including Keys,
// and Close frees the entries.
func TestClosedStoreRefusesEveryCall(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, l1.Config{})
	if err := s.Set(ctx, "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := s.Get(ctx, "k")
	_, _, _, err2 := s.GetVersion(ctx, "k", tierstore.NoVersion)
	for name, err := range map[string]error{
		"Get": err, "GetVersion": err2,
		"View":   s.View(ctx, "k", func([]byte) error { return nil }),
		"Set":    s.Set(ctx, "k", []byte("v"), time.Time{}),
		"Delete": s.Delete(ctx, "k"),
		"Touch":  s.Touch(ctx, "k", time.Time{}),
		"Keys":   s.Keys(ctx, func(string) bool { return true }),
	} {
		if !errors.Is(err, tierstore.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// Writes past the bound evict the least recently used entries: entries
// read since they were written survive a wave of new writes that evicts
// a quarter of the store, and the unread ones go first. Shards order
// their own entries exactly (TestEvictsInLRUOrderWithinAShard); across
// shards the order is approximate, hence the margin.
func TestEvictionSparesRecentlyUsedEntries(t *testing.T) {
	ctx := context.Background()
	const maxBytes = 1 << 20
	s := newStore(t, l1.Config{MaxBytes: maxBytes})
	value := make([]byte, 500)
	key := func(p string, i int) string { return fmt.Sprintf("%s:%06d", p, i) }
	per := int64(len(key("old", 0)) + 512 + l1.EntryOverhead) // 500 bytes allocate 512
	n := int(maxBytes / per)
	for i := range n {
		if err := s.Set(ctx, key("old", i), value, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Evictions != 0 {
		t.Fatalf("%d evictions while filling exactly to the bound", st.Evictions)
	}
	for i := 0; i < n; i += 2 { // read the even half
		if _, err := s.Get(ctx, key("old", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n / 4 {
		if err := s.Set(ctx, key("new", i), value, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	var readLost, unreadLost int
	for i := range n {
		if _, err := s.Get(ctx, key("old", i)); errors.Is(err, tierstore.ErrNotFound) {
			if i%2 == 0 {
				readLost++
			} else {
				unreadLost++
			}
		}
	}
	evicted := int(s.Stats().Evictions)
	t.Logf("%d entries, %d evicted: %d unread, %d read", n, evicted, unreadLost, readLost)
	if evicted < n/4-1 || evicted > n/4+1 || readLost+unreadLost != evicted {
		t.Fatalf("%d evictions for %d new entries in a full store (%d old entries lost)", evicted, n/4, readLost+unreadLost)
	}
	if readLost > evicted/20 {
		t.Fatalf("%d of %d evicted entries had been read since the unread ones were written", readLost, evicted)
	}
}

// MaxBytes is a bound on memory, not an abstract cost: with the store
// filled well past it, the live heap its entries hold stays within it,
// for tiny, session-sized and larger values.
func TestMaxBytesBoundsTheLiveHeap(t *testing.T) {
	const maxBytes = 8 << 20
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	ctx := context.Background()
	for _, size := range []int{16, 500, 3000} {
		t.Run(strconv.Itoa(size)+"B", func(t *testing.T) {
			s, err := l1.New(l1.Config{MaxBytes: maxBytes, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			empty := heap()
			key := func(i int) string { return "session:" + strconv.Itoa(i) }
			n := maxBytes / (len(key(0)) + 4 + size + l1.EntryOverhead)
			value := make([]byte, size)
			for i := range 4 * n { // fill to the bound, then offer three times as much again
				if err := s.Set(ctx, key(i), value, time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
			held := heap() - empty
			entries := 0
			_ = s.Keys(ctx, func(string) bool { entries++; return true })
			t.Logf("held %d B by %d entries (%d B each; MaxBytes %d)", held, entries, held/int64(entries), maxBytes)
			if held > maxBytes {
				t.Fatalf("entries hold %d B of live heap, over MaxBytes %d: EntryOverhead undercounts", held, maxBytes)
			}
			if held < maxBytes/2 {
				t.Fatalf("entries hold only %d B of MaxBytes %d: EntryOverhead overcounts", held, maxBytes)
			}
		})
	}
}

// A value whose entry cannot fit in the store at all is refused, not
// stored by evicting everything and then exceeding the bound.
func TestValueLargerThanTheStoreIsTooLarge(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, l1.Config{MaxBytes: 4096})
	if err := s.Set(ctx, "small", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "big", make([]byte, 4096), time.Time{}); !errors.Is(err, tierstore.ErrTooLarge) {
		t.Fatalf("Set(4 KiB into a 4 KiB store) = %v, want ErrTooLarge", err)
	}
	if _, err := s.Get(ctx, "small"); err != nil {
		t.Fatalf("a refused write evicted: Get(small) = %v", err)
	}
	s2 := newStore(t, l1.Config{MaxValueBytes: 10})
	if err := s2.Set(ctx, "k", make([]byte, 11), time.Time{}); !errors.Is(err, tierstore.ErrTooLarge) {
		t.Fatalf("Set(11 bytes, MaxValueBytes 10) = %v, want ErrTooLarge", err)
	}
}

// One value may use most of the store: the budget is the store's, not a
// shard's.
func TestOneValueMayFillTheStore(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, l1.Config{MaxBytes: 1 << 20, MaxValueBytes: 1 << 20})
	for i := range 100 {
		if err := s.Set(ctx, "small:"+strconv.Itoa(i), make([]byte, 1000), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 1<<20-16<<10)
	if err := s.Set(ctx, "big", big, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "big"); err != nil || len(got) != len(big) {
		t.Fatalf("Get(big) = %d bytes, %v", len(got), err)
	}
}

func TestStatsCountHitsAndMisses(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, l1.Config{})
	_ = s.Set(ctx, "k", []byte("v"), time.Time{})
	_, _ = s.Get(ctx, "k")
	_ = s.View(ctx, "k", func([]byte) error { return nil })
	_, _ = s.Get(ctx, "absent")
	if st := s.Stats(); st.Hits != 2 || st.Misses != 1 || st.Evictions != 0 {
		t.Fatalf("Stats = %+v, want 2 hits, 1 miss", st)
	}
}

// View's fn runs without a lock held: it may use the store, even on the
// key it is viewing.
func TestViewFnMayUseTheStore(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, l1.Config{})
	_ = s.Set(ctx, "k", []byte("v"), time.Time{})
	err := s.View(ctx, "k", func(v []byte) error {
		if err := s.Set(ctx, "k", []byte("w"), time.Time{}); err != nil {
			return err
		}
		if string(v) != "v" {
			return fmt.Errorf("viewed value changed to %q under fn", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
