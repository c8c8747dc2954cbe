package cache_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tierstore/tierstore/internal/cache"
)

// MaxBytes is a bound on memory, not an abstract cost: with the cache
// filled well past it, the live heap it holds stays within MaxBytes plus
// its fixed structures (ristretto's frequency sketch).
func TestMaxBytesBoundsTheLiveHeap(t *testing.T) {
	const maxBytes = 8 << 20
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	s, err := cache.New(cache.Config{MaxBytes: maxBytes, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fixed := heap() - base
	// The first entries are admitted without competition: fill exactly to
	// the bound, then offer three times as much again.
	key := func(i int) string { return "session:" + strconv.Itoa(i) }
	n := maxBytes / (len(key(0)) + 4 + 500 + cache.EntryOverhead)
	for i := range 4 * n {
		k := key(i)
		s.Fill(k, make([]byte, 500), cache.Meta{}, s.Stamp(k))
		if i%1024 == 0 {
			s.Wait()
		}
	}
	s.Wait()
	held := heap() - base - fixed
	entries := s.Len()
	t.Logf("fixed %d B, held %d B by %d entries (%d B each; MaxBytes %d)", fixed, held, entries, held/uint64(entries), maxBytes)
	if held > maxBytes*105/100 {
		t.Fatalf("entries hold %d B of live heap, over MaxBytes %d: EntryOverhead undercounts", held, maxBytes)
	}
	if held < maxBytes/2 {
		t.Fatalf("entries hold only %d B of MaxBytes %d: the fill did not reach the bound", held, maxBytes)
	}
}
