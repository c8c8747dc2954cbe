package tierstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redisproc"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/tiered"
)

// The comparison tierstore exists for: memory (l1), Redis (l2) and both
// (tiered), each through the Store interface, on the core module's own
// dependencies. Redis is a real redis-server started on a free loopback
// port when one is on PATH, else an embedded miniredis (slower, and
// without client tracking, so tiered runs with invalidation.OwnWrites there); each
// benchmark's name says which.
//
//	go test -run '^$' -bench . -benchtime 100x .
//	go test -run '^$' -bench . -count 6 . | tee stores.out; benchstat stores.out
//
// Peers (rueidis, go-redis/cache) and sessions are in benchmarks/.

const (
	benchKeys  = 1000 // keys written before each benchmark
	benchValue = 500  // bytes per value, a typical session
)

// benchRedis returns a client of a redis-server of the benchmark's own,
// or of a miniredis, and which it is.
func benchRedis(b *testing.B) (*redis.Client, string) {
	srv, err := redisproc.Start(b.TempDir())
	if err == nil {
		b.Cleanup(srv.Stop)
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
		b.Cleanup(func() { c.Close() })
		return c, "redis-server"
	}
	if !errors.Is(err, redisproc.ErrNoBinary) {
		b.Fatal(err)
	}
	m := miniredis.RunT(b)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	b.Cleanup(func() { c.Close() })
	return c, "miniredis"
}

// benchStores returns the three stores, named, on one Redis.
func benchStores(b *testing.B) (names []string, stores []tierstore.Store) {
	c, kind := benchRedis(b)
	mem, err := l1.New(l1.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mem.Close() })
	red, err := l2.New(l2.Config{Redis: c, KeyPrefix: "bench-l2:"})
	if err != nil {
		b.Fatal(err)
	}
	both, err := tiered.New(tiered.Config{Redis: c, KeyPrefix: "bench-tiered:", Invalidation: modeOf(kind)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { both.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := both.WaitLive(ctx); err != nil {
		b.Fatal(err)
	}
	return []string{"memory", "redis/" + kind, "tiered/" + kind}, []tierstore.Store{mem, red, both}
}

func benchKey(i int) string { return fmt.Sprintf("session:%06d", i) }

// fill writes every key, then reads each once, so that tiered's L1 holds
// them as it would after warm-up.
func fill(b *testing.B, s tierstore.Store, value []byte) {
	ctx := context.Background()
	for i := range benchKeys {
		if err := s.Set(ctx, benchKey(i), value, time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	for i := range benchKeys {
		if _, err := s.Get(ctx, benchKey(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStores runs Get (every key present), Set and a 95% read / 5%
// write mix over Zipf-distributed keys, from parallel goroutines, on
// memory, Redis and tiered.
func BenchmarkStores(b *testing.B) {
	names, stores := benchStores(b)
	value := make([]byte, benchValue)
	for i, s := range stores {
		fill(b, s, value)
		ops := []struct {
			name   string
			writes int // in 100
		}{{"Get", 0}, {"Set", 100}, {"Mixed95-5", 5}}
		for _, op := range ops {
			b.Run(names[i]+"/"+op.name, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					r := rand.New(rand.NewPCG(rand.Uint64(), 0))
					zipf := rand.NewZipf(r, 1.1, 1, benchKeys-1)
					for pb.Next() {
						key := benchKey(int(zipf.Uint64()))
						var err error
						if r.IntN(100) < op.writes {
							err = s.Set(ctx, key, value, time.Now().Add(time.Hour))
						} else {
							_, err = s.Get(ctx, key)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// modeOf is the invalidation mode tiered runs with on a server kind:
// miniredis has no client tracking.
func modeOf(kind string) invalidation.Mode {
	if kind == "miniredis" {
		return invalidation.OwnWrites
	}
	return invalidation.PerKey
}
