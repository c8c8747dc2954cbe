package stores_test

import (
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/benchmarks/internal/mixed"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/internal/testenv/workload"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/tiered"
)

func newTiered(b *testing.B, addr, prefix string) *tiered.Store {
	return newTieredConfig(b, addr, tiered.Config{KeyPrefix: prefix})
}

// newTieredConfig is newTiered with cfg (its Redis is set).
func newTieredConfig(b *testing.B, addr string, cfg tiered.Config) *tiered.Store {
	b.Helper()
	cfg.Redis = dial(b, addr)
	s, err := tiered.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	redistest.WaitLive(b, s)
	return s
}

// dial returns a client of the Redis at addr, closed when b ends.
func dial(b *testing.B, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// twoInstances returns two instances of a service using the Redis at addr
// through store ("redis": l2, "tiered" (per-key tracking, the default),
// "tiered-broadcast" or "tiered-ownwrites": tiered with
// invalidation.Broadcast or invalidation.OwnWrites), with the workload's
// keys preloaded.
func twoInstances(b *testing.B, store, addr string) []tierstore.Store {
	b.Helper()
	prefix := "mixed-" + store + ":"
	var instances []tierstore.Store
	for range 2 {
		switch store {
		case "tiered":
			instances = append(instances, newTiered(b, addr, prefix))
			continue
		case "tiered-broadcast":
			instances = append(instances, newTieredConfig(b, addr, tiered.Config{KeyPrefix: prefix, Invalidation: invalidation.Broadcast}))
			continue
		case "tiered-ownwrites":
			instances = append(instances, newTieredConfig(b, addr, tiered.Config{KeyPrefix: prefix, Invalidation: invalidation.OwnWrites}))
			continue
		}
		s, err := l2.New(l2.Config{Redis: dial(b, addr), KeyPrefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		instances = append(instances, s)
	}
	if err := workload.Preload(context.Background(), instances[0], workload.Config{}); err != nil {
		b.Fatal(err)
	}
	return instances
}

func BenchmarkDelete(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	for _, s := range benchStores(b, srv) {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Delete(ctx, "session:x"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMixed is the seed's workload: two instances of a service on one
// real redis-server, 95% reads and 5% writes of 500-byte values over 10k
// keys with Zipf-like popularity, 8 goroutines. One b.N iteration is one
// 2-second run; ops/s is the figure to read, the CPU per operation what
// bounds it. The writes-only and reads-only runs measure the parts that
// the 95/5 mix is made of.
func BenchmarkMixed(b *testing.B) {
	srv := redistest.Start(b)
	instances := map[string][]tierstore.Store{
		"redis":            twoInstances(b, "redis", srv.Addr()),
		"tiered":           twoInstances(b, "tiered", srv.Addr()),
		"tiered-broadcast": twoInstances(b, "tiered-broadcast", srv.Addr()),
		"tiered-ownwrites": twoInstances(b, "tiered-ownwrites", srv.Addr()),
	}
	for _, run := range []struct {
		name, store string
		reads       float64
	}{
		{"redis", "redis", 0.95},
		{"tiered", "tiered", 0.95},
		{"tiered-broadcast", "tiered-broadcast", 0.95},
		{"tiered-ownwrites", "tiered-ownwrites", 0.95},
		{"redis-writes-only", "redis", math.SmallestNonzeroFloat64}, // zero would mean the default
		{"tiered-writes-only", "tiered", math.SmallestNonzeroFloat64},
		{"tiered-broadcast-writes-only", "tiered-broadcast", math.SmallestNonzeroFloat64},
		{"tiered-ownwrites-writes-only", "tiered-ownwrites", math.SmallestNonzeroFloat64},
		{"tiered-reads-only", "tiered", 1},
	} {
		name, cfg := run.store, workload.Config{ReadShare: run.reads}
		b.Run(run.name, func(b *testing.B) { mixed.Run(b, srv, instances[name], cfg) })
	}
}

// BenchmarkMixedRemote runs the 95/5 mix of BenchmarkMixed with Redis
// behind a proxy that delays each direction by 1 ms, as a Redis across a
// network would: there both stores wait on round trips instead of
// computing, and the ratio shows how many operations tiered serves per
// round trip it waits for.
func BenchmarkMixedRemote(b *testing.B) {
	srv := redistest.Start(b)
	addr := redistest.Latency(b, srv.Addr(), time.Millisecond)
	for _, name := range []string{"redis", "tiered"} {
		instances := twoInstances(b, name, addr)
		b.Run(name, func(b *testing.B) { mixed.Run(b, srv, instances, workload.Config{}) })
	}
}

// BenchmarkInvalidationDelay measures how long after a Set starts on one
// instance the other has dropped the old value from its L1, against the
// floor: how long after a PUBLISH starts a subscriber receives it, with raw
// go-redis on the same server. One b.N iteration is one write.
func BenchmarkInvalidationDelay(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	report := func(b *testing.B, d []time.Duration) {
		b.ReportMetric(float64(workload.Percentile(d, 50).Microseconds()), "p50-µs")
		b.ReportMetric(float64(workload.Percentile(d, 99).Microseconds()), "p99-µs")
	}
	b.Run("pubsub-raw", func(b *testing.B) {
		pub, sub := srv.Client(nil), srv.Client(nil).Subscribe(ctx, "raw")
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			b.Fatal(err)
		}
		seen := workload.NewMarks()
		go func() {
			for {
				m, err := sub.ReceiveMessage(ctx)
				if err != nil {
					return
				}
				n, _ := strconv.Atoi(m.Payload)
				seen.Mark(n)
			}
		}()
		d, err := workload.Delays(b.N, nil,
			func(i int) error { return pub.Publish(ctx, "raw", strconv.Itoa(i)).Err() },
			seen)
		if err != nil {
			b.Fatal(err)
		}
		report(b, d)
	})
	b.Run("tiered", func(b *testing.B) {
		// The delay ends when B has applied the invalidation: from then on
		// its L1 no longer serves the old value.
		seen := workload.NewMarks()
		a := newTiered(b, srv.Addr(), "delay:")
		other, err := tiered.New(tiered.Config{
			Redis: srv.Client(&redis.Options{ContextTimeoutEnabled: true}), KeyPrefix: "delay:",
			OnInvalidate: func(string) { seen.MarkNext() },
		})
		if err != nil {
			b.Fatal(err)
		}
		defer other.Close()
		redistest.WaitLive(b, other)
		value := make([]byte, benchValueSize)
		// B reads the key before each write, so that it holds the old
		// value and, in per-key mode, Redis reports the change to it.
		d, err := workload.Delays(b.N, func(int) { _, _ = other.Get(ctx, "k") },
			func(i int) error {
				binary.BigEndian.PutUint64(value, uint64(i))
				return a.Set(ctx, "k", value, time.Now().Add(time.Hour))
			},
			seen)
		if err != nil {
			b.Fatal(err)
		}
		report(b, d)
	})
}
