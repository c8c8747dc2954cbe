package nearcache_test

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tierstore/tierstore/internal/nearcache"
)

// rss returns the process's resident set size in bytes (Linux).
func rss(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skip("no /proc/self/statm: RSS unknown on this system")
	}
	pages, _ := strconv.ParseInt(strings.Fields(string(data))[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// BenchmarkMemory1M fills a 64 MiB cache with 1M distinct 500-byte sessions,
// as a tiered instance's fills would, and reports the process RSS against
// MaxBytes: once with the garbage collector's defaults, once with a soft
// memory limit (GOMEMLIMIT) of 1.5 x MaxBytes over the RSS before the
// cache. Run it alone:
//
//	go test -run '^$' -bench Memory1M -benchtime 1x ./internal/nearcache
func BenchmarkMemory1M(b *testing.B) {
	const maxBytes = 64 << 20
	b.Run("gc=default", func(b *testing.B) { memory1M(b, maxBytes, 0) })
	b.Run("memlimit=1.5x", func(b *testing.B) { memory1M(b, maxBytes, 1.5) })
}

func memory1M(b *testing.B, maxBytes int64, limit float64) {
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		before := rss(b)
		if limit > 0 {
			old := debug.SetMemoryLimit(before + int64(limit*float64(maxBytes)))
			defer debug.SetMemoryLimit(old)
		}
		s, err := nearcache.New(nearcache.Config{MaxBytes: maxBytes, TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		empty := rss(b)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		gcs := ms.NumGC
		key := make([]byte, 0, 64)
		for i := range 1_000_000 {
			key = strconv.AppendInt(append(key[:0], "session:"...), int64(i), 10)
			s.Fill(string(key), make([]byte, 500), nearcache.Meta{}, s.Stamp(string(key)))
		}
		s.Wait()
		runtime.GC()
		debug.FreeOSMemory()
		full := rss(b)
		runtime.ReadMemStats(&ms)
		// Live bytes vs bytes in spans holding them: evicted values free
		// scattered slots in spans that stay in use for their surviving
		// neighbours, so the heap in use keeps the size the heap reached
		// between two collections.
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-heap-live")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap-inuse")
		b.ReportMetric(float64(ms.NumGC-gcs), "GCs")
		b.ReportMetric(float64(s.Len()), "entries")
		b.ReportMetric(float64(before)/(1<<20), "MiB-rss-before")
		b.ReportMetric(float64(empty-before)/(1<<20), "MiB-empty-cache")
		b.ReportMetric(float64(full-before)/(1<<20), "MiB-full-cache")
		b.ReportMetric(float64(full-before)/float64(maxBytes), "x-MaxBytes")
		s.Close()
	}
}
