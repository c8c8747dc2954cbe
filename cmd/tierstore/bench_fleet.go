// The fleet workload: N instances of one store on one Redis, as N
// processes of a service would be, driven by a fixed number of goroutines
// in all. This file is compiled twice: as package fleet in the benchmarks
// module (BenchmarkFleet) and, apart from its package clause, as
// cmd/tierstore/bench_fleet.go in the cmd module (`tierstore bench
// -instances N`), which cannot import the benchmarks module.
// TestCmdCopy in the benchmarks module keeps the two copies equal: edit
// this one and copy it over.

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/workload"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/tiered"
)

// FleetStores are the stores a fleet can be made of, in the order tables
// show them: tiered with per-key and with broadcast tracking, rueidis's
// client-side cache (DoCache, its default opt-in tracking) and the
// Redis-only store (l2).
var FleetStores = []string{"tiered-perkey", "tiered-broadcast", "rueidis", "redis-only"}

// FleetConfig describes a fleet and its workload. Zero fields take the
// defaults in parentheses.
type FleetConfig struct {
	Instances  int     // instances, each with its own clients and cache (2)
	Goroutines int     // goroutines in all, goroutine g on instance g mod Instances (32)
	Keys       int     // key space (100000)
	ReadShare  float64 // share of reads (0.95)
	ValueSize  int     // bytes per value (500)
	Zipf       float64 // Zipf exponent s > 1 of key popularity (1.1)
	// Sticky gives each instance a partition of the keys (key k belongs
	// to instance k mod Instances) and sends Affinity of its operations
	// there, Zipf-distributed over the partition, and the rest to another
	// instance's partition, chosen at random: sessions with affinity to
	// an instance, a few of whose requests land elsewhere. Otherwise every
	// instance draws from the whole key space (Zipf over all keys).
	Sticky   bool
	Affinity float64 // (0.9)
	// L1TTL is tiered's L1TTL and rueidis's DoCache TTL
	// (tiered.DefaultL1TTL); L1MaxBytes tiered's L1MaxBytes
	// (tiered.DefaultL1MaxBytes; rueidis keeps its default cache size).
	L1TTL      time.Duration
	L1MaxBytes int64
	// KeyPrefix is prepended to the store's name to make the prefix of
	// its keys ("fleet:").
	KeyPrefix string
	// StaleAfter is the grace for a read, as in package workload (1ms).
	StaleAfter time.Duration
}

func (c *FleetConfig) defaults() {
	if c.Instances == 0 {
		c.Instances = 2
	}
	if c.Goroutines == 0 {
		c.Goroutines = 32
	}
	if c.Keys == 0 {
		c.Keys = 100000
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
	if c.Affinity == 0 {
		c.Affinity = 0.9
	}
	if c.L1TTL == 0 {
		c.L1TTL = tiered.DefaultL1TTL
	}
	if c.L1MaxBytes == 0 {
		c.L1MaxBytes = tiered.DefaultL1MaxBytes
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "fleet:"
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = time.Millisecond
	}
}

// KeysName is "sticky" or "uniform".
func (c FleetConfig) KeysName() string {
	if c.Sticky {
		return "sticky"
	}
	return "uniform"
}

// fleetInstance is one instance's store with the counters the fleet reads.
type fleetInstance struct {
	tierstore.Store
	tier *tiered.Store  // set for tiered stores
	inv  *atomic.Uint64 // set for rueidis: keys invalidated, counted in OnInvalidations
	stop func()         // closes the instance and its clients
}

// Fleet is N instances of one store on one Redis.
type Fleet struct {
	store     string
	cfg       FleetConfig
	info      *redis.Client // reads INFO cpu
	instances []fleetInstance
	names     []string // key names as the stores are given them
}

// NewFleet preloads every key under the store's prefix (through a
// separate client, so that no instance starts with them in its cache),
// then starts cfg.Instances instances of store (one of FleetStores) on
// the Redis of opts, and waits until tiered ones are live. Close it.
func NewFleet(ctx context.Context, opts *redis.Options, store string, cfg FleetConfig) (f *Fleet, err error) {
	cfg.defaults()
	if cfg.Keys < cfg.Instances {
		return nil, errors.New("fleet: fewer keys than instances")
	}
	prefix := cfg.KeyPrefix + store + ":"
	client := func() *redis.Client { o := *opts; return redis.NewClient(&o) }
	f = &Fleet{store: store, cfg: cfg, info: client(), names: make([]string, cfg.Keys)}
	defer func() {
		if err != nil {
			f.Close()
			f = nil
		}
	}()
	for k := range f.names {
		f.names[k] = workload.KeyName(k)
	}
	var newInstance func() (fleetInstance, error)
	var preload tierstore.Store
	switch store {
	case "tiered-perkey", "tiered-broadcast":
		mode := invalidation.PerKey
		if store == "tiered-broadcast" {
			mode = invalidation.Broadcast
		}
		newInstance = func() (fleetInstance, error) {
			c := client()
			s, err := tiered.New(tiered.Config{
				Redis: c, KeyPrefix: prefix, L1TTL: cfg.L1TTL, L1MaxBytes: cfg.L1MaxBytes, Invalidation: mode,
			})
			if err != nil {
				_ = c.Close()
				return fleetInstance{}, err
			}
			return fleetInstance{Store: s, tier: s, stop: func() { _ = s.Close(); _ = c.Close() }}, nil
		}
	case "rueidis":
		for k := range f.names {
			f.names[k] = prefix + f.names[k] // rueidis has no prefix of its own
		}
		newInstance = func() (fleetInstance, error) {
			inv := new(atomic.Uint64)
			r, err := newFleetRueidis(opts, cfg.L1TTL, true, func(keys []rueidis.RedisMessage) { inv.Add(uint64(len(keys))) })
			if err != nil {
				return fleetInstance{}, err
			}
			return fleetInstance{Store: r, inv: inv, stop: r.c.Close}, nil
		}
	case "redis-only":
		newInstance = func() (fleetInstance, error) {
			c := client()
			s, err := l2.New(l2.Config{Redis: c, KeyPrefix: prefix})
			if err != nil {
				_ = c.Close()
				return fleetInstance{}, err
			}
			return fleetInstance{Store: s, stop: func() { _ = c.Close() }}, nil
		}
	default:
		return f, fmt.Errorf("fleet: unknown store %q (one of %s)", store, strings.Join(FleetStores, ", "))
	}

	// Preload: tiered and the Redis-only store keep the same format in
	// Redis, written here by an l2.Store; rueidis's values are the raw
	// bytes, written by a rueidis client whose cache is off.
	if store == "rueidis" {
		r, err := newFleetRueidis(opts, cfg.L1TTL, false, nil)
		if err != nil {
			return f, err
		}
		defer r.c.Close()
		preload = r
	} else {
		c := client()
		defer func() { _ = c.Close() }()
		s, err := l2.New(l2.Config{Redis: c, KeyPrefix: prefix})
		if err != nil {
			return f, err
		}
		preload = s
	}
	if err := f.preload(ctx, preload); err != nil {
		return f, fmt.Errorf("fleet: preload: %w", err)
	}

	for range cfg.Instances {
		in, err := newInstance()
		if err != nil {
			return f, fmt.Errorf("fleet: %s: %w", store, err)
		}
		f.instances = append(f.instances, in)
	}
	live, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, in := range f.instances {
		if in.tier != nil {
			if err := in.tier.WaitLive(live); err != nil {
				return f, fmt.Errorf("fleet: %s did not become live: %w", store, err)
			}
		}
	}
	return f, nil
}

// preload writes every key (version 1, older than any a run writes)
// through s, 32 at a time.
func (f *Fleet) preload(ctx context.Context, s tierstore.Store) error {
	v := make([]byte, f.cfg.ValueSize)
	binary.BigEndian.PutUint64(v, 1)
	var next atomic.Int64
	errs := make([]error, 32)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for k := int(next.Add(1) - 1); k < len(f.names); k = int(next.Add(1) - 1) {
				if err := s.Set(ctx, f.names[k], v, time.Now().Add(time.Hour)); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close closes every instance and client of the fleet.
func (f *Fleet) Close() {
	for _, in := range f.instances {
		in.stop()
	}
	f.instances = nil
	_ = f.info.Close()
}

// Warm runs what Run(ctx, ops, d) runs, unmeasured: every read of the
// measured run then finds the key in the instance's memory unless a write
// has invalidated it since, as in a fleet that has run for a while with
// caches that hold its working set (a minute of it, at L1TTL 1m, is far
// more operations than a run). The misses of a run are then those the
// invalidations cause, and the runs that follow (the same operations
// again) start alike.
func (f *Fleet) Warm(ctx context.Context, ops int, d time.Duration) error {
	r, err := f.run(ctx, ops, d, runSeed)
	if err == nil && r.Errors > 0 {
		err = fmt.Errorf("fleet: %d errors in the warm-up", r.Errors)
	}
	return err
}

const runSeed = 42

// FleetResult is what a run measured.
type FleetResult struct {
	Store                        string
	Keys                         string // "sticky" or "uniform"
	Instances                    int
	Reads, Writes, Errors, Stale int64
	// Hits counts the reads served from the instances' own memory (tiered's
	// L1, rueidis's client-side cache).
	Hits int64
	// Invalidations counts the invalidations the instances received:
	// tiered's Stats().Invalidation.Received (its own writes are not
	// counted), the keys of rueidis's invalidation messages (its own
	// writes included: Redis tells a tracking client of them too).
	Invalidations uint64
	Elapsed       time.Duration
	ClientCPU     time.Duration // this process's CPU (getrusage): instances, driver, anything else in it
	RedisCPU      time.Duration // redis-server's CPU (INFO cpu): used_cpu_sys + used_cpu_user
	Cached        bool          // the store has an in-process cache
}

func (r FleetResult) ops() float64 { return float64(r.Reads + r.Writes) }

// OpsPerSecond is the throughput of the whole fleet.
func (r FleetResult) OpsPerSecond() float64 { return r.ops() / r.Elapsed.Seconds() }

// InvalidationsPerWrite is the invalidations received per write.
func (r FleetResult) InvalidationsPerWrite() float64 {
	return float64(r.Invalidations) / max(1, float64(r.Writes))
}

// RedisCPUPerWrite is redis-server's CPU per write, in µs.
func (r FleetResult) RedisCPUPerWrite() float64 {
	return float64(r.RedisCPU.Nanoseconds()) / 1e3 / max(1, float64(r.Writes))
}

// ClientCPUPerOp is this process's CPU per operation, in µs.
func (r FleetResult) ClientCPUPerOp() float64 {
	return float64(r.ClientCPU.Nanoseconds()) / 1e3 / max(1, r.ops())
}

// HitPercent is the share of reads served from memory, in percent.
func (r FleetResult) HitPercent() float64 { return 100 * float64(r.Hits) / max(1, float64(r.Reads)) }

// StalePercent is the share of reads that were stale, in percent.
func (r FleetResult) StalePercent() float64 {
	return 100 * float64(r.Stale) / max(1, float64(r.Reads))
}

// Row is the result as a table shows it.
func (r FleetResult) Row() FleetRow {
	row := FleetRow{
		Keys: r.Keys, Instances: r.Instances, Store: r.Store,
		OpsPerSecond: r.OpsPerSecond(), InvalidationsPerWrite: r.InvalidationsPerWrite(),
		RedisCPUPerWrite: r.RedisCPUPerWrite(), ClientCPUPerOp: r.ClientCPUPerOp(),
		HitPercent: -1, StalePercent: r.StalePercent(),
	}
	if r.Cached {
		row.HitPercent = r.HitPercent()
	}
	return row
}

// Run runs ops operations (spread evenly over the goroutines, each
// goroutine's sequence of keys, reads and writes fixed by its seed, the
// same for every store), or, if ops is 0, runs for d.
func (f *Fleet) Run(ctx context.Context, ops int, d time.Duration) (FleetResult, error) {
	return f.run(ctx, ops, d, runSeed)
}

// counters returns the fleet's cumulative invalidations received and, for
// tiered, L1 hits.
func (f *Fleet) counters() (inv, hits uint64) {
	for _, in := range f.instances {
		switch {
		case in.tier != nil:
			st := in.tier.Stats()
			inv += st.Invalidation.Received
			hits += st.L1.Hits
		case in.inv != nil:
			inv += in.inv.Load()
		}
	}
	return inv, hits
}

// redisCPU returns used_cpu_sys + used_cpu_user from INFO cpu.
func (f *Fleet) redisCPU(ctx context.Context) (time.Duration, error) {
	info, err := f.info.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var total float64
	for _, field := range []string{"used_cpu_sys:", "used_cpu_user:"} {
		_, rest, ok := strings.Cut(info, field)
		line, _, _ := strings.Cut(rest, "\r")
		sec, err := strconv.ParseFloat(strings.TrimSpace(line), 64)
		if !ok || err != nil {
			return 0, fmt.Errorf("fleet: no %s in INFO cpu", field)
		}
		total += sec
	}
	return time.Duration(total * float64(time.Second)), nil
}

// fleetKey is one key's write history, as readers need it (as in package
// workload).
type fleetKey struct {
	mu      sync.Mutex // serialises writes of the key: versions land in order
	version uint64     // last version written (under mu)
	acked   atomic.Uint64
	ackedAt atomic.Int64 // when the write of acked returned, Unix ns
}

// fleetHitGetter is a store that says whether a read was served from its
// memory.
type fleetHitGetter interface {
	GetHit(ctx context.Context, key string) ([]byte, bool, error)
}

// fleetChooser picks the keys of one goroutine.
type fleetChooser struct {
	rng       *rand.Rand
	zipf      *rand.Zipf // over the whole key space, or over one partition
	n, own    int        // instances; this goroutine's instance
	sticky    bool
	affinity  float64
	readShare float64
}

func newFleetChooser(cfg FleetConfig, g int, seed uint64) *fleetChooser {
	rng := rand.New(rand.NewPCG(uint64(g), seed))
	c := &fleetChooser{rng: rng, n: cfg.Instances, own: g % cfg.Instances, sticky: cfg.Sticky,
		affinity: cfg.Affinity, readShare: cfg.ReadShare}
	ranks := cfg.Keys
	if c.sticky {
		ranks = cfg.Keys / cfg.Instances // key own + rank*n; the last Keys mod n keys go unused
	}
	c.zipf = rand.NewZipf(rng, cfg.Zipf, 1, uint64(ranks-1))
	return c
}

// next returns the next operation: a key and whether to read it.
func (c *fleetChooser) next() (key int, read bool) {
	if !c.sticky {
		key = int(c.zipf.Uint64())
	} else {
		p := c.own
		if c.n > 1 && c.rng.Float64() >= c.affinity {
			p = (c.own + 1 + c.rng.IntN(c.n-1)) % c.n
		}
		key = p + c.n*int(c.zipf.Uint64())
	}
	return key, c.rng.Float64() < c.readShare
}

func (f *Fleet) run(ctx context.Context, ops int, d time.Duration, seed uint64) (FleetResult, error) {
	cfg := f.cfg
	res := FleetResult{Store: f.store, Keys: cfg.KeysName(), Instances: cfg.Instances, Cached: f.store != "redis-only"}
	// Versions written by this run start above any earlier run's.
	keys := make([]fleetKey, cfg.Keys)
	base := uint64(time.Now().UnixNano())
	for i := range keys {
		keys[i].version = base
	}
	invBefore, hitsBefore := f.counters()
	redisBefore, err := f.redisCPU(ctx)
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start, cpu := time.Now(), fleetProcessCPU()
	for g := range cfg.Goroutines {
		n := ops / cfg.Goroutines
		if g < ops%cfg.Goroutines {
			n++
		}
		in := f.instances[g%len(f.instances)]
		wg.Go(func() {
			// Counted locally: a shared counter would bounce between cores.
			var r FleetResult
			defer func() {
				mu.Lock()
				res.Reads += r.Reads
				res.Writes += r.Writes
				res.Errors += r.Errors
				res.Stale += r.Stale
				res.Hits += r.Hits
				mu.Unlock()
			}()
			choose := newFleetChooser(cfg, g, seed)
			hg, _ := in.Store.(fleetHitGetter)
			value := make([]byte, cfg.ValueSize)
			for i := 0; ops == 0 || i < n; i++ {
				if i%64 == 0 && ((ops == 0 && time.Now().After(deadline)) || ctx.Err() != nil) {
					return
				}
				k, read := choose.next()
				ks := &keys[k]
				if read {
					want, wantAt := ks.acked.Load(), ks.ackedAt.Load()
					began := time.Now().UnixNano()
					var v []byte
					var err error
					if hg != nil {
						var hit bool
						v, hit, err = hg.GetHit(ctx, f.names[k])
						if hit {
							r.Hits++
						}
					} else {
						v, err = in.Get(ctx, f.names[k])
					}
					r.Reads++
					if err != nil || len(v) < 8 {
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
				err := in.Set(ctx, f.names[k], value, time.Now().Add(time.Hour))
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
		})
	}
	wg.Wait()
	res.Elapsed, res.ClientCPU = time.Since(start), fleetProcessCPU()-cpu
	redisAfter, err := f.redisCPU(ctx)
	if err != nil {
		return res, err
	}
	res.RedisCPU = redisAfter - redisBefore
	// Invalidations still in flight when the last operation returned are
	// counted if they arrive within a moment, as they are part of the
	// run's cost.
	time.Sleep(20 * time.Millisecond)
	invAfter, hitsAfter := f.counters()
	res.Invalidations = invAfter - invBefore
	if f.instances[0].tier != nil {
		res.Hits = int64(hitsAfter - hitsBefore)
	}
	return res, nil
}

// fleetRueidis is rueidis with server-assisted client-side caching as a
// tierstore.Store: Get is DoCache with the fleet's TTL (its cached bytes,
// not a copy), Set and Delete plain commands. Its options are rueidis's
// defaults, but for onInvalidations, the counting hook.
type fleetRueidis struct {
	c   rueidis.Client
	ttl time.Duration
}

func newFleetRueidis(opts *redis.Options, ttl time.Duration, cache bool, onInvalidations func([]rueidis.RedisMessage)) (*fleetRueidis, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{opts.Addr}, Username: opts.Username, Password: opts.Password,
		SelectDB: opts.DB, TLSConfig: opts.TLSConfig, OnInvalidations: onInvalidations,
		DisableCache: !cache,
	})
	if err != nil {
		return nil, err
	}
	return &fleetRueidis{c: c, ttl: ttl}, nil
}

func (r *fleetRueidis) GetHit(ctx context.Context, key string) ([]byte, bool, error) {
	res := r.c.DoCache(ctx, r.c.B().Get().Key(key).Cache(), r.ttl)
	v, err := res.AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, false, tierstore.ErrNotFound
	}
	return v, res.IsCacheHit(), err
}

func (r *fleetRueidis) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := r.GetHit(ctx, key)
	return v, err
}

func (r *fleetRueidis) Set(ctx context.Context, key string, v []byte, expiry time.Time) error {
	return r.c.Do(ctx, r.c.B().Set().Key(key).Value(rueidis.BinaryString(v)).Pxat(expiry).Build()).Error()
}

func (r *fleetRueidis) Delete(ctx context.Context, key string) error {
	return r.c.Do(ctx, r.c.B().Del().Key(key).Build()).Error()
}

// FleetRow is one store's figures at one fleet size, as the table shows
// them: the benchmark's metrics, or medians of them.
type FleetRow struct {
	Keys                  string // "sticky" or "uniform"
	Instances             int
	Store                 string
	OpsPerSecond          float64
	InvalidationsPerWrite float64
	RedisCPUPerWrite      float64 // µs
	ClientCPUPerOp        float64 // µs
	HitPercent            float64 // negative: no in-process cache
	StalePercent          float64
}

// FleetTable formats rows as a markdown table, a line per keys mode and
// fleet size, the stores side by side in the order of FleetStores.
func FleetTable(rows []FleetRow) string {
	type at struct {
		keys string
		n    int
	}
	byAt := map[at]map[string]FleetRow{}
	var order []at
	for _, r := range rows {
		a := at{r.Keys, r.Instances}
		if byAt[a] == nil {
			byAt[a] = map[string]FleetRow{}
			order = append(order, a)
		}
		byAt[a][r.Store] = r
	}
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].keys != order[j].keys {
			return order[i].keys < order[j].keys
		}
		return order[i].n < order[j].n
	})
	var b strings.Builder
	b.WriteString("| keys | N | ops/s: tiered per-key / broadcast / rueidis / Redis only " +
		"| tiered / rueidis: per-key, broadcast " +
		"| invalidations per write: per-key / broadcast / rueidis " +
		"| Redis CPU µs per write: per-key / broadcast / rueidis / Redis only " +
		"| client CPU µs per op: per-key / broadcast / rueidis / Redis only " +
		"| local hits %: per-key / broadcast / rueidis " +
		"| stale reads %: per-key / broadcast / rueidis |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	cached := FleetStores[:3]
	for _, a := range order {
		m := byAt[a]
		col := func(stores []string, format func(FleetRow) string) string {
			var parts []string
			for _, s := range stores {
				r, ok := m[s]
				if !ok {
					parts = append(parts, "—")
					continue
				}
				parts = append(parts, format(r))
			}
			return strings.Join(parts, " / ")
		}
		ratio := func(s string) string {
			r, ok1 := m[s]
			p, ok2 := m["rueidis"]
			if !ok1 || !ok2 || p.OpsPerSecond == 0 {
				return "—"
			}
			return strconv.FormatFloat(r.OpsPerSecond/p.OpsPerSecond, 'f', 2, 64) + "×"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s, %s | %s | %s | %s | %s | %s |\n", a.keys, a.n,
			col(FleetStores, func(r FleetRow) string { return fleetSI(r.OpsPerSecond) }),
			ratio("tiered-perkey"), ratio("tiered-broadcast"),
			col(cached, func(r FleetRow) string { return strconv.FormatFloat(r.InvalidationsPerWrite, 'f', 2, 64) }),
			col(FleetStores, func(r FleetRow) string { return strconv.FormatFloat(r.RedisCPUPerWrite, 'f', 0, 64) }),
			col(FleetStores, func(r FleetRow) string { return strconv.FormatFloat(r.ClientCPUPerOp, 'f', 1, 64) }),
			col(cached, func(r FleetRow) string { return strconv.FormatFloat(r.HitPercent, 'f', 1, 64) }),
			col(cached, func(r FleetRow) string { return strconv.FormatFloat(r.StalePercent, 'f', 3, 64) }))
	}
	return b.String()
}

// fleetSI formats a throughput as 250k or 1.2M.
func fleetSI(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// FleetMedian returns the row of medians of rows (runs of one store at
// one size).
func FleetMedian(rows []FleetRow) FleetRow {
	med := func(get func(FleetRow) float64) float64 {
		v := make([]float64, len(rows))
		for i, r := range rows {
			v[i] = get(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	out := rows[0]
	out.OpsPerSecond = med(func(r FleetRow) float64 { return r.OpsPerSecond })
	out.InvalidationsPerWrite = med(func(r FleetRow) float64 { return r.InvalidationsPerWrite })
	out.RedisCPUPerWrite = med(func(r FleetRow) float64 { return r.RedisCPUPerWrite })
	out.ClientCPUPerOp = med(func(r FleetRow) float64 { return r.ClientCPUPerOp })
	out.HitPercent = med(func(r FleetRow) float64 { return r.HitPercent })
	out.StalePercent = med(func(r FleetRow) float64 { return r.StalePercent })
	return out
}
