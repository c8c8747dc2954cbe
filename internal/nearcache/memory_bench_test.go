package nearcache_test

import (
	"flag"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// churnPerKey is how many churn operations BenchmarkMemory runs per key
// of its key space.
var churnPerKey = flag.Int("memory.churn", 8, "BenchmarkMemory: churn operations per key")

// gcSetting is a garbage collector configuration: GOGC, and a soft memory
// limit (GOMEMLIMIT) of the RSS before the cache plus limit x MaxBytes
// (none if 0).
type gcSetting struct {
	name  string
	gogc  int
	limit float64
}

// BenchmarkMemory fills a cache of MaxBytes with distinct sessions, then
// keeps it churning as a live store does, and reports what the process
// holds against MaxBytes, for each garbage collector setting (GOGC, or
// GOMEMLIMIT = the RSS before the cache + k x MaxBytes, under GOGC=100).
//
// The fill offers 2 x MaxBytes of distinct 14-byte keys, waiting for
// ristretto every 4096 so that none is dropped. The churn runs one
// goroutine per P over a key space of the same size (about twice what
// fits) for -memory.churn (8) operations per key: an operation picks a
// key at random and writes it (one in 8: BeginWrite, then EndWrite with a
// fresh value, which replaces a cached entry) or looks it up and, on a
// miss, fills it with a fresh value, as a read through Redis would. The
// garbage is what a live store makes: values read, keys, ristretto's
// items. churn=paced waits for ristretto every 256 operations per
// goroutine, as a store whose fills come slower than ristretto applies
// them (its set buffer stays near empty); churn=saturated never waits,
// as a fill storm: ristretto's one goroutine falls behind and its set
// buffer (32768 items) stays full, each item keeping an entry and its
// value alive outside MaxBytes.
//
// Metrics, over MaxBytes where named x-:
//
//   - x-live: the live heap after the churn and a GC (entries, ristretto's
//     maps, sketch and filter, the index, the stripes);
//   - x-live-churn: the largest live heap the GC marked during the churn
//     (/gc/heap/live:bytes; it includes ristretto's set buffer): the
//     GOGC heap goal is (1 + GOGC/100) times it;
//   - x-rss-peak: the largest RSS growth (over the RSS before the cache)
//     sampled every 10 ms during the churn: what a user sees;
//     x-rss-peak-half, the same over the first half (equal: the churn
//     reached its steady state); x-rss-after-gc, after the churn, a GC
//     and debug.FreeOSMemory, which a live process does not do;
//   - gc-cpu-%: the collector's share of the CPU the process used during
//     the churn (runtime/metrics /cpu/classes/gc/total over
//     /cpu/classes/total less idle); gc-ns/fill: GC CPU per value filled
//     or written, to multiply by a store's fill rate;
//   - hit-%, entries, set-backlog-mean/max (items in ristretto's set
//     buffer, sampled), ns/churn-op (wall time per operation).
//
// Run it one GC setting per process (the RSS before is then the test
// binary's alone), -count 3:
//
//	for c in 64MiB-500B 256MiB-1KiB; do for m in paced saturated; do
//	  for g in gogc=100 gogc=50 gogc=25 memlimit=1.2x memlimit=1.5x memlimit=2x; do
//	    go test -run '^$' -bench "^BenchmarkMemory/$c/churn=$m/$g\$" -benchtime 1x -count 3 ./internal/nearcache
//	done; done; done
func BenchmarkMemory(b *testing.B) {
	sizes := []struct {
		name     string
		maxBytes int64
		value    int
	}{
		{"64MiB-500B", 64 << 20, 500},
		{"256MiB-1KiB", 256 << 20, 1024},
	}
	settings := []gcSetting{
		{"gogc=100", 100, 0}, // the defaults
		{"gogc=50", 50, 0},
		{"gogc=25", 25, 0},
		{"memlimit=1.2x", 100, 1.2},
		{"memlimit=1.5x", 100, 1.5},
		{"memlimit=2x", 100, 2},
	}
	for _, sz := range sizes {
		b.Run(sz.name, func(b *testing.B) {
			for _, paced := range []bool{true, false} {
				name := "churn=paced"
				if !paced {
					name = "churn=saturated"
				}
				b.Run(name, func(b *testing.B) {
					for _, g := range settings {
						b.Run(g.name, func(b *testing.B) { memoryChurn(b, sz.maxBytes, sz.value, paced, g) })
					}
				})
			}
		})
	}
}

// cpuMetrics are the runtime/metrics memoryChurn reads.
var cpuMetrics = []string{
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/cpu/classes/idle:cpu-seconds",
	"/gc/cycles/total:gc-cycles",
}

// heapLive returns the heap the last GC marked live
// (/gc/heap/live:bytes): during the churn, it includes what ristretto's
// set buffer holds.
func heapLive() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

func readCPU() (gc, used float64, cycles uint64) {
	s := make([]metrics.Sample, len(cpuMetrics))
	for i, name := range cpuMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	return s[0].Value.Float64(), s[1].Value.Float64() - s[2].Value.Float64(), s[3].Value.Uint64()
}

func memoryChurn(b *testing.B, maxBytes int64, size int, paced bool, g gcSetting) {
	for b.Loop() {
		churnOnce(b, maxBytes, size, paced, g)
	}
}

// churnOnce is one run of memoryChurn, with the GC setting restored at
// its end.
func churnOnce(b *testing.B, maxBytes int64, size int, paced bool, g gcSetting) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore, before := int64(ms.HeapAlloc), rss(b)
	defer debug.SetGCPercent(debug.SetGCPercent(g.gogc))
	if g.limit > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(before + int64(g.limit*float64(maxBytes))))
	}
	s, err := nearcache.New(nearcache.Config{MaxBytes: maxBytes, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	// Keys "session:N" of 14 bytes; a value's allocation, its size
	// class; the charge per entry, to size the key space.
	alloc := cap(append([]byte(nil), make([]byte, size)...))
	keys := int(2 * maxBytes / int64(14+alloc+nearcache.EntryOverhead))
	keyOf := func(buf []byte, i int) string {
		return string(strconv.AppendInt(append(buf[:0], "session:"...), int64(i), 10))
	}
	buf := make([]byte, 0, 32)
	for i := range keys {
		k := keyOf(buf, i)
		s.Fill(k, make([]byte, size), nearcache.Meta{}, s.Stamp(k))
		if i%4096 == 4095 {
			s.Wait()
		}
	}
	s.Wait()

	var peak, peakHalf, liveMax, backlogMax, backlogSum, samples atomic.Int64
	var halfway atomic.Bool
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			r := rss(b)
			if r > peak.Load() {
				peak.Store(r)
			}
			if l := heapLive(); l > liveMax.Load() {
				liveMax.Store(l)
			}
			n := int64(s.SetBacklog())
			backlogSum.Add(n)
			samples.Add(1)
			if n > backlogMax.Load() {
				backlogMax.Store(n)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	gc0, cpu0, cycles0 := readCPU()
	stats0 := s.Stats()
	start := time.Now()
	workers := runtime.GOMAXPROCS(0)
	ops := *churnPerKey * keys
	var wg sync.WaitGroup
	var fills atomic.Int64
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			buf := make([]byte, 0, 32)
			noop := func([]byte) error { return nil }
			n := int64(0)
			defer func() { fills.Add(n) }()
			for i := range ops / workers {
				if i == ops/workers/2 && halfway.CompareAndSwap(false, true) {
					peakHalf.Store(peak.Load())
				}
				if paced && i%256 == 255 {
					s.Wait()
				}
				k := keyOf(buf, r.IntN(keys))
				if r.IntN(8) == 0 {
					st := s.BeginWrite(k)
					s.EndWrite(k, st, make([]byte, size), nearcache.Meta{})
					n++
					continue
				}
				st := s.Stamp(k)
				if hit, _, _ := s.Lookup(k, noop); !hit {
					s.Fill(k, make([]byte, size), nearcache.Meta{}, st)
					n++
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	gc1, cpu1, cycles1 := readCPU()
	stats1 := s.Stats()
	close(stop)
	<-sampled

	s.Wait()
	runtime.GC()
	runtime.GC() // the first only moves sync.Pool contents aside
	runtime.ReadMemStats(&ms)
	live := int64(ms.HeapAlloc) - heapBefore
	debug.FreeOSMemory()
	afterGC := rss(b)
	mb := float64(maxBytes)
	b.ReportMetric(float64(live)/mb, "x-live")
	b.ReportMetric(float64(liveMax.Load()-heapBefore)/mb, "x-live-churn")
	hits, misses := stats1.Hits-stats0.Hits, stats1.Misses-stats0.Misses
	b.ReportMetric(100*float64(hits)/float64(hits+misses), "hit-%")
	b.ReportMetric(float64(peak.Load()-before)/mb, "x-rss-peak")
	b.ReportMetric(float64(peakHalf.Load()-before)/mb, "x-rss-peak-half")
	b.ReportMetric(float64(afterGC-before)/mb, "x-rss-after-gc")
	b.ReportMetric(100*(gc1-gc0)/(cpu1-cpu0), "gc-cpu-%")
	b.ReportMetric(1e9*(gc1-gc0)/float64(fills.Load()), "gc-ns/fill")
	b.ReportMetric(float64(cycles1-cycles0), "GCs")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(ops), "ns/churn-op")
	b.ReportMetric(float64(s.Len()), "entries")
	b.ReportMetric(float64(backlogMax.Load()), "set-backlog-max")
	b.ReportMetric(float64(backlogSum.Load())/float64(samples.Load()), "set-backlog-mean")
	b.ReportMetric(float64(before)/(1<<20), "MiB-rss-before")
	s.Close()
}
