package nearcache

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"
)

// BenchmarkMemoryBreakdown says where the live heap of a full, churned
// cache goes (see BenchmarkMemory for the fill and the churn, here on one
// goroutine, waiting for ristretto every 256 operations), in bytes per
// entry: the value's and the key's allocations, the entry struct's, and
// the rest of what entries hold (ristretto's two maps: its store's and
// its policy's), and, over MaxBytes, what an empty cache holds (the
// frequency sketch and filter, the index, the stripes):
//
//	go test -run '^$' -bench MemoryBreakdown -benchtime 1x ./internal/nearcache
func BenchmarkMemoryBreakdown(b *testing.B) {
	for _, c := range []struct {
		name     string
		maxBytes int64
		value    int
	}{{"64MiB-500B", 64 << 20, 500}, {"256MiB-1KiB", 256 << 20, 1024}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				breakdown(b, c.maxBytes, c.value)
			}
		})
	}
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC() // the first only moves sync.Pool contents aside
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func breakdown(b *testing.B, maxBytes int64, size int) {
	h0 := liveHeap()
	s, err := New(Config{MaxBytes: maxBytes, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	h1 := liveHeap()
	keys := int(2 * maxBytes / int64(14+allocSize(size)+entryOverhead))
	keyOf := func(i int) string { return "session:" + strconv.Itoa(i) }
	for i := range keys {
		k := keyOf(i)
		s.Fill(k, make([]byte, size), Meta{}, s.Stamp(k))
		if i%4096 == 4095 {
			s.Wait()
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	noop := func([]byte) error { return nil }
	for i := range 8 * keys {
		k := keyOf(r.IntN(keys))
		if r.IntN(8) == 0 {
			st := s.BeginWrite(k)
			s.EndWrite(k, st, make([]byte, size), Meta{})
		} else {
			st := s.Stamp(k)
			if hit, _, _ := s.Lookup(k, noop); !hit {
				s.Fill(k, make([]byte, size), Meta{}, st)
			}
		}
		if i%256 == 255 {
			s.Wait()
		}
	}
	s.Wait()
	h2 := liveHeap()
	var n, values, keyBytes, charged int64
	s.cache.IterValues(func(e *entry) bool {
		n++
		values += int64(allocSize(cap(e.value)))
		keyBytes += int64(allocSize(len(e.key)))
		charged += cost(e.key, e.value)
		return false
	})
	structs := n * int64(allocSize(int(unsafe.Sizeof(entry{})))) // same classes as pointer-free objects
	per := func(v int64) float64 { return float64(v) / float64(n) }
	b.ReportMetric(float64(n), "entries")
	b.ReportMetric(per(values), "B-value/entry")
	b.ReportMetric(per(keyBytes), "B-key/entry")
	b.ReportMetric(per(structs), "B-entry-struct/entry")
	b.ReportMetric(per(h2-h1-values-keyBytes-structs), "B-ristretto-maps/entry")
	b.ReportMetric(per(h2-h1), "B-held/entry")
	b.ReportMetric(per(charged), "B-charged/entry")
	b.ReportMetric(float64(h2-h1)/float64(maxBytes), "x-entries")
	b.ReportMetric(float64(h1-h0)/float64(maxBytes), "x-empty-cache")
	b.ReportMetric(float64(h2-h0)/float64(maxBytes), "x-live")
}
