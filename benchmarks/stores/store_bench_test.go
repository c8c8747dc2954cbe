package stores_test

// The store comparison: memory only (l1) vs Redis only (l2) vs tiered, on a
// real redis-server started on a free loopback port, 500-byte values.
//
//	cd benchmarks && go test -run '^$' -bench . -benchmem -count 6 ./stores | tee bench.out
//	benchstat bench.out

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/tiered"
)

const benchValueSize = 500

type benchStore struct {
	name string
	tierstore.Store
}

// benchStores returns the three tiers, the Redis-backed ones on srv.
func benchStores(b *testing.B, srv *redistest.Server) []benchStore {
	b.Helper()
	mem, err := l1.New(l1.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mem.Close() })
	rdb := srv.Client(&redis.Options{ContextTimeoutEnabled: true})
	red, err := l2.New(l2.Config{Redis: rdb, KeyPrefix: "bench-l2:"})
	if err != nil {
		b.Fatal(err)
	}
	tier, err := tiered.New(tiered.Config{Redis: srv.Client(&redis.Options{ContextTimeoutEnabled: true}), KeyPrefix: "bench-tiered:"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tier.Close() })
	redistest.WaitLive(b, tier)
	return []benchStore{{"memory", mem}, {"redis", red}, {"tiered", tier}}
}

// warm writes key and reads it until it is served without a Redis round
// trip where the tier has a cache (ristretto admits new keys asynchronously).
func warm(b *testing.B, s tierstore.Store, key string, value []byte) {
	b.Helper()
	ctx := context.Background()
	if err := s.Set(ctx, key, value, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	t, ok := s.(*tiered.Store)
	for i := 0; ok && i < 1000; i++ {
		hits := t.Stats().L1.Hits
		if _, err := s.Get(ctx, key); err != nil {
			b.Fatal(err)
		}
		if t.Stats().L1.Hits > hits {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkGet(b *testing.B) {
	srv := redistest.Start(b)
	value := make([]byte, benchValueSize)
	ctx := context.Background()
	for _, s := range benchStores(b, srv) {
		b.Run(s.name+"/hit", func(b *testing.B) {
			warm(b, s, "session:hit", value)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Get(ctx, "session:hit"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(s.name+"/miss", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Get(ctx, "session:absent"); !errors.Is(err, tierstore.ErrNotFound) {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGetParallel(b *testing.B) {
	srv := redistest.Start(b)
	value := make([]byte, benchValueSize)
	ctx := context.Background()
	for _, s := range benchStores(b, srv) {
		b.Run(s.name+"/hit", func(b *testing.B) {
			warm(b, s, "session:hit", value)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Get(ctx, "session:hit"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkView(b *testing.B) {
	srv := redistest.Start(b)
	value := make([]byte, benchValueSize)
	ctx := context.Background()
	var sum int
	read := func(v []byte) error { sum += len(v); return nil }
	for _, s := range benchStores(b, srv) {
		b.Run(s.name+"/hit", func(b *testing.B) {
			warm(b, s, "session:hit", value)
			v, ok := s.Store.(interface {
				View(ctx context.Context, key string, fn func([]byte) error) error
			})
			if !ok {
				b.Skip("no lending read")
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := v.View(ctx, "session:hit", read); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSet(b *testing.B) {
	srv := redistest.Start(b)
	value := make([]byte, benchValueSize)
	ctx := context.Background()
	for _, s := range benchStores(b, srv) {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			expiry := time.Now().Add(time.Hour)
			i := 0
			for b.Loop() {
				i++
				if err := s.Set(ctx, fmt.Sprintf("session:%d", i%1000), value, expiry); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
