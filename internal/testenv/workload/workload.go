// Package workload drives the mixed benchmark workload: reads and writes of
// session-sized values over a key space with Zipf-like popularity, spread
// over several instances of a store, counting stale reads.
package workload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tierstore/tierstore"
)

// Config describes a workload. Zero fields take the defaults in
// parentheses.
type Config struct {
	Keys        int           // key space (10000)
	ReadShare   float64       // share of reads (0.95)
	ValueSize   int           // bytes per value (500)
	Zipf        float64       // Zipf exponent s > 1 of key popularity (1.1)
	Concurrency int           // goroutines, spread over the instances (8)
	Duration    time.Duration // how long to run (2s), unless Ops is set
	// Ops, if set, is the number of operations each goroutine runs,
	// instead of running for Duration: the same seed then gives the same
	// operations, whatever the machine's speed.
	Ops int
	// Serial runs the goroutines one after another, in order, instead of
	// at once: with Ops, a run whose outcome does not depend on the
	// scheduler, for tests.
	Serial bool
	// StaleAfter is the grace for a read: it is stale if it returns a
	// version older than one whose write had returned more than
	// StaleAfter before the read began (1ms).
	StaleAfter time.Duration
	// Progress, if set, is called about every 100ms with the fraction done.
	Progress func(done float64)
}

func (c *Config) defaults() {
	if c.Keys == 0 {
		c.Keys = 10000
	}
	if c.ReadShare == 0 {
		c.ReadShare = 0.95
	}
	if c.ValueSize == 0 {
		c.ValueSize = 500
	}
	if c.Zipf == 0 {
		c.Zipf = 1.1
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Duration == 0 {
		c.Duration = 2 * time.Second
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = time.Millisecond
	}
}

// Result is what a run measured.
type Result struct {
	Reads, Writes, Errors, Stale int64
	Elapsed                      time.Duration
	// CPU is the CPU time (user + system) the whole process used during
	// the run: the instances, the workload's goroutines and anything else
	// running in it. It is zero where it is not measured (non-Unix).
	CPU time.Duration
}

// Add adds the counts and times of o to r: the result of two runs, or of
// two parts of one.
func (r *Result) Add(o Result) {
	r.Reads += o.Reads
	r.Writes += o.Writes
	r.Errors += o.Errors
	r.Stale += o.Stale
	r.Elapsed += o.Elapsed
	r.CPU += o.CPU
}

// OpsPerSecond is the throughput.
func (r Result) OpsPerSecond() float64 {
	return float64(r.Reads+r.Writes) / r.Elapsed.Seconds()
}

// StaleShare is the share of reads that were stale.
func (r Result) StaleShare() float64 {
	if r.Reads == 0 {
		return 0
	}
	return float64(r.Stale) / float64(r.Reads)
}

func (r Result) String() string {
	return fmt.Sprintf("%.0f ops/s (%d reads, %d writes, %d errors, %d stale reads = %.3f%%)",
		r.OpsPerSecond(), r.Reads, r.Writes, r.Errors, r.Stale, 100*r.StaleShare())
}

// KeyName is the name of key k.
func KeyName(k int) string { return fmt.Sprintf("bench:%05d", k) }

// Preload writes every key through store (version 1, older than any
// version Run writes), several at a time, so that a Redis a network away
// costs a few round trips per batch of keys rather than one per key.
func Preload(ctx context.Context, store tierstore.Store, cfg Config) error {
	cfg.defaults()
	v := make([]byte, cfg.ValueSize)
	binary.BigEndian.PutUint64(v, 1)
	return forEachKey(cfg.Keys, func(k int) error {
		return store.Set(ctx, KeyName(k), v, time.Now().Add(time.Hour))
	})
}

// Warm reads every key once through each instance, as a service that has
// been running a while would have: a run then measures the steady state,
// not how fast each instance fills its cache.
func Warm(ctx context.Context, instances []tierstore.Store, cfg Config) error {
	cfg.defaults()
	for _, store := range instances {
		err := forEachKey(cfg.Keys, func(k int) error {
			_, err := store.Get(ctx, KeyName(k))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// forEachKey calls fn for keys 0 to n-1, 32 at a time, and returns the
// first error.
func forEachKey(n int, fn func(k int) error) error {
	const workers = 32
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := int(next.Add(1) - 1); k < n; k = int(next.Add(1) - 1) {
				if err := fn(k); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// keyState is one key's write history, as readers need it.
type keyState struct {
	mu      sync.Mutex // serialises writes of the key: versions land in order
	version uint64     // last version written (under mu)
	acked   atomic.Uint64
	ackedAt atomic.Int64 // when the write of acked returned, Unix ns
}

// Run runs the workload over instances (all sharing one backing store, as
// instances of one service would) until Duration has passed. Keys must
// have been preloaded (Preload).
func Run(ctx context.Context, instances []tierstore.Store, cfg Config) (Result, error) {
	cfg.defaults()
	if len(instances) == 0 {
		return Result{}, errors.New("workload: no instances")
	}
	// Versions written by this run start above any earlier run's (the
	// clock in nanoseconds), so that a value left by an earlier run can
	// never pass for a recent one. Until this run writes a key, any value
	// read of it is current.
	keys := make([]keyState, cfg.Keys)
	base := uint64(time.Now().UnixNano())
	for i := range keys {
		keys[i].version = base
	}
	names := make([]string, cfg.Keys) // formatting a name per op would cost more than an L1 hit
	for k := range names {
		names[k] = KeyName(k)
	}
	var total Result // summed under mu as each goroutine ends
	var mu sync.Mutex
	deadline := time.Now().Add(cfg.Duration)
	start, cpu := time.Now(), processCPU()
	var wg sync.WaitGroup
	for g := range cfg.Concurrency {
		store := instances[g%len(instances)]
		worker := func() {
			// Counted locally: a counter shared by every goroutine would
			// bounce between the cores on each operation.
			var r Result
			defer func() {
				mu.Lock()
				total.Add(r)
				mu.Unlock()
			}()
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			zipf := rand.NewZipf(rng, cfg.Zipf, 1, uint64(cfg.Keys-1))
			value := make([]byte, cfg.ValueSize)
			for n := 0; ; n++ {
				if cfg.Ops > 0 && n == cfg.Ops {
					return
				}
				if n%64 == 0 && ((cfg.Ops == 0 && time.Now().After(deadline)) || ctx.Err() != nil) {
					return
				}
				k := int(zipf.Uint64())
				ks := &keys[k]
				if rng.Float64() < cfg.ReadShare {
					want, wantAt := ks.acked.Load(), ks.ackedAt.Load()
					began := time.Now().UnixNano()
					v, err := store.Get(ctx, names[k])
					r.Reads++
					if err != nil {
						r.Errors++
						continue
					}
					if got := binary.BigEndian.Uint64(v); got < want && began-wantAt > int64(cfg.StaleAfter) {
						r.Stale++
					}
					continue
				}
				ks.mu.Lock()
				ks.version++
				binary.BigEndian.PutUint64(value, ks.version)
				err := store.Set(ctx, names[k], value, time.Now().Add(time.Hour))
				if err == nil {
					ks.ackedAt.Store(time.Now().UnixNano())
					ks.acked.Store(ks.version)
				}
				ks.mu.Unlock()
				r.Writes++
				if err != nil {
					r.Errors++
				}
			}
		}
		if cfg.Serial {
			worker()
		} else {
			wg.Go(worker)
		}
	}
	if cfg.Progress != nil {
		// Reports until the workers are done; Run returns only after its
		// last report, so the caller's callback never runs after Run.
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					cfg.Progress(min(1, float64(time.Since(start))/float64(cfg.Duration)))
				}
			}
		}()
		defer func() { close(stop); <-stopped }()
	}
	wg.Wait()
	total.Elapsed, total.CPU = time.Since(start), processCPU()-cpu
	return total, nil
}

// Marks carries, from a reader's goroutine to Delays, the moments the
// reader saw each change. The reader calls Mark itself, so a delay ends
// when the change was seen, not when a polling loop noticed: and Delays
// waits without spinning, which on a small machine would take a core from
// the very goroutines being measured.
type Marks struct {
	c    chan mark
	seen atomic.Int64 // changes marked with MarkNext
}

type mark struct {
	i  int
	at time.Time
}

// NewMarks returns an empty Marks.
func NewMarks() *Marks { return &Marks{c: make(chan mark, 1024)} }

// MarkNext records that the reader saw the next change (1, 2, ...) now:
// for readers that see each change once, in order, without its number.
func (m *Marks) MarkNext() { m.Mark(int(m.seen.Add(1))) }

// Mark records that the reader saw change i now. It never blocks: a mark
// that does not fit (nobody is measuring) is dropped.
func (m *Marks) Mark(i int) {
	select {
	case m.c <- mark{i, time.Now()}:
	default:
	}
}

// Delays measures, n times, how long after a write starts a reader sees
// it: write(i) makes change i (and returns when it is acknowledged), and
// the reader calls seen.Mark(i) when it sees change i (or any later one).
// Before each write, prepare(i) (if set) readies the reader. The delays
// are sorted.
func Delays(n int, prepare func(i int), write func(i int) error, seen *Marks) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	timeout := time.NewTimer(time.Hour)
	defer timeout.Stop()
	for i := 1; i <= n; i++ {
		if prepare != nil {
			prepare(i)
		}
		start := time.Now()
		if err := write(i); err != nil {
			return nil, err
		}
		timeout.Reset(5 * time.Second)
	wait:
		for {
			select {
			case m := <-seen.c:
				if m.i >= i {
					out = append(out, m.at.Sub(start))
					break wait
				}
			case <-timeout.C:
				return nil, fmt.Errorf("workload: change %d not seen within 5s", i)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// Percentile returns the p-th percentile (0–100) of sorted durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p/100))]
}
