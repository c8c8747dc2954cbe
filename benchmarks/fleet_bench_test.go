package benchmarks

// BenchmarkFleet: N instances of each store on one redis-server, as N
// processes of a service would be (each instance its own clients and
// cache), 32 goroutines in all (goroutine g on instance g mod N), 95%
// reads / 5% writes, 100k keys, 500-byte values, Zipf 1.1. Keys "sticky":
// key k belongs to instance k mod N, and 90% of an instance's operations
// go to its own keys (Zipf over them), 10% to another instance's, as
// with session affinity; "uniform": every instance draws from all keys.
// Stores: tiered with per-key tracking (invalidation.PerKey, the default)
// and with broadcast tracking, rueidis v1.0.79 DoCache (its default
// opt-in tracking, the TTL of tiered's L1TTL, 1 min), and the Redis-only
// store (l2). Each leaf preloads the keys into an emptied Redis, starts
// its fleet, runs b.N operations unmeasured (the warm-up), then the same
// b.N operations measured; its -count repetitions reuse the fleet and run
// the same operations again. Every goroutine's sequence of keys, reads
// and writes is fixed by its seed, the same for every store, so after the
// warm-up a read misses only if a write has invalidated the key since
// this instance last read it (see fleet.Fleet.Warm). The driver is
// internal/fleet.
//
// Metrics: ops/s of the fleet; invalidations/write, received by the
// instances (tiered: Stats().Invalidation.Received summed over them, its
// own writes not counted; rueidis: the keys of its OnInvalidations
// callbacks, its own writes included); redis-cpu-µs/write (INFO cpu,
// used_cpu_sys + used_cpu_user, over writes); client-cpu-µs/op
// (getrusage of this process, every instance and the driver, over
// operations); %hit, reads served from the instance's memory (tiered's L1,
// rueidis's cache); %stale, as in package workload.
//
// Run (2 cores: about 20 minutes for every size, both key modes, 3 runs):
//
//	cd benchmarks && go test -run '^$' -bench Fleet -benchtime 300000x -count 3 . | tee fleet.out
//
// One size, quickly:
//
//	go test -run '^$' -bench 'Fleet/keys=sticky/n=8/' -benchtime 20000x .
//
// The table (medians of the runs, the layout of docs/benchmarks.md):
//
//	go run ./internal/fleettable < fleet.out

import (
	"context"
	"fmt"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/benchmarks/internal/fleet"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// fleetSizes are the fleet sizes BenchmarkFleet runs.
var fleetSizes = []int{2, 4, 8, 16, 32}

func BenchmarkFleet(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	opts := &goredis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true}
	for _, sticky := range []bool{true, false} {
		cfg := fleet.FleetConfig{Sticky: sticky}
		b.Run("keys="+cfg.KeysName(), func(b *testing.B) {
			for _, n := range fleetSizes {
				cfg := cfg
				cfg.Instances = n
				b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
					for _, store := range fleet.FleetStores {
						// Made by the leaf's first run, only if the leaf
						// runs at all, and kept for its later runs
						// (b.N = 1 first, -count): closed here after the last.
						var f *fleet.Fleet
						warmed := 0
						b.Run("store="+store, func(b *testing.B) {
							if f == nil {
								// No fleet is open now: the flush touches
								// nobody's cache.
								if _, err := srv.Server.Do("FLUSHALL"); err != nil {
									b.Fatal(err)
								}
								var err error
								if f, err = fleet.NewFleet(ctx, opts, store, cfg); err != nil {
									b.Fatal(err)
								}
							}
							if warmed < b.N {
								if err := f.Warm(ctx, b.N, 0); err != nil {
									b.Fatal(err)
								}
								warmed = b.N
							}
							b.ResetTimer()
							r, err := f.Run(ctx, b.N, 0)
							b.StopTimer()
							if err != nil {
								b.Fatal(err)
							}
							if r.Errors > 0 {
								b.Fatalf("%d errors", r.Errors)
							}
							reportFleet(b, r)
						})
						if f != nil {
							f.Close()
						}
					}
				})
			}
		})
	}
}

func reportFleet(b *testing.B, r fleet.FleetResult) {
	row := r.Row()
	b.ReportMetric(row.OpsPerSecond, "ops/s")
	b.ReportMetric(row.InvalidationsPerWrite, "invalidations/write")
	b.ReportMetric(row.RedisCPUPerWrite, "redis-cpu-µs/write")
	b.ReportMetric(row.ClientCPUPerOp, "client-cpu-µs/op")
	b.ReportMetric(row.StalePercent, "%stale")
	if row.HitPercent >= 0 {
		b.ReportMetric(row.HitPercent, "%hit")
	}
}
