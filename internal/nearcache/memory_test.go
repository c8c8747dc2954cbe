package nearcache_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/nearcache"
)

// MaxBytes is a bound on memory, not an abstract cost: with the cache
// filled well past it, the live heap its entries hold stays under
// 1.05 x MaxBytes for every value size up to MaxValueBytes:
// session-sized values, and those just past a size class or a page
// (32769 bytes allocate 40960), whose rounding the charge must include.
func TestMaxBytesBoundsTheLiveHeap(t *testing.T) {
	const maxBytes = 8 << 20
	heap := func() int64 {
		// Twice: the first collection only moves sync.Pool contents
		// aside, the second frees them.
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	sizes := []int{100, 500, 1000, 4096, 4097, 32768, 32769, 40000, 65537, 100000, 1_000_000, tierstore.DefaultMaxValueBytes}
	for _, size := range sizes {
		t.Run(strconv.Itoa(size)+"B", func(t *testing.T) {
			s, err := nearcache.New(nearcache.Config{MaxBytes: maxBytes, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			empty := heap()
			// The first entries are admitted without competition: fill
			// to the bound, then offer as much again.
			// ristretto applies fills asynchronously and drops those
			// that find its buffer full; waiting for it every
			// MaxBytes/16 offered keeps every fill in and the bytes in
			// flight small.
			key := func(i int) string { return "session:" + strconv.Itoa(i) }
			var pending int
			for i := 0; i*(size+nearcache.EntryOverhead) < 2*maxBytes; i++ {
				k := key(i)
				s.Fill(k, make([]byte, size), nearcache.Meta{}, s.Stamp(k))
				if pending += size + nearcache.EntryOverhead; pending >= maxBytes/16 {
					s.Wait()
					pending = 0
				}
			}
			s.Wait()
			held := heap() - empty
			entries := s.Len()
			t.Logf("held %d B (%.3f x MaxBytes) by %d entries of %d B", held, float64(held)/maxBytes, entries, size)
			if held > maxBytes*105/100 {
				t.Fatalf("entries of %d B hold %d B of live heap, %.3f x MaxBytes %d: their charge undercounts", size, held, float64(held)/maxBytes, maxBytes)
			}
			if held < maxBytes/2 {
				t.Fatalf("entries of %d B hold only %d B of MaxBytes %d: the fill did not reach the bound", size, held, maxBytes)
			}
		})
	}
}
