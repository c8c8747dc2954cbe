package benchmarks

import (
	"context"
	"errors"
	"testing"
	"time"

	gocache "github.com/go-redis/cache/v9"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/benchmarks/internal/mixed"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/internal/testenv/workload"
	"github.com/tierstore/tierstore/tiered"
)

const valueSize = 500

func newTiered(tb testing.TB, srv *redistest.Server, prefix string) *tiered.Store {
	s, err := tiered.New(tiered.Config{Redis: srv.Client(&goredis.Options{ContextTimeoutEnabled: true}), KeyPrefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	redistest.WaitLive(tb, s)
	return s
}

// BenchmarkHitPeers compares an L1 hit with rueidis's server-assisted
// client-side cache hit (DoCache) on the same key and value.
func BenchmarkHitPeers(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	value := make([]byte, valueSize)

	tier := newTiered(b, srv, "peers:")
	if err := tier.Set(ctx, "hit", value, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	redistest.Eventually(b, "the value is in L1", func() bool {
		hits := tier.Stats().L1.Hits
		_, _ = tier.Get(ctx, "hit")
		return tier.Stats().L1.Hits > hits
	})

	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableRetry: true})
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	if err := rc.Do(ctx, rc.B().Set().Key("rueidis:hit").Value(rueidis.BinaryString(value)).Build()).Error(); err != nil {
		b.Fatal(err)
	}
	// Commands are built per call, as rueidis recycles them.
	get := func() rueidis.RedisResult { return rc.DoCache(ctx, rc.B().Get().Key("rueidis:hit").Cache(), time.Hour) }
	for range 3 { // the first DoCache fills the client-side cache
		if err := get().Error(); err != nil {
			b.Fatal(err)
		}
	}
	if !get().IsCacheHit() {
		b.Fatal("rueidis did not serve from its client-side cache")
	}

	b.Run("tiered-Get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, err := tier.Get(ctx, "hit"); err != nil || len(v) != valueSize {
				b.Fatal(err)
			}
		}
	})
	b.Run("tiered-View", func(b *testing.B) {
		b.ReportAllocs()
		read := func(v []byte) error {
			if len(v) != valueSize {
				return errors.New("short")
			}
			return nil
		}
		for b.Loop() {
			if err := tier.View(ctx, "hit", read); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rueidis-DoCache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, err := get().AsBytes()
			if err != nil || len(v) != valueSize {
				b.Fatal(err)
			}
		}
	})
}

// goRedisCache is go-redis/cache v9 as a tierstore.Store: a local TinyLFU
// cache in front of Redis, without cross-instance invalidation.
type goRedisCache struct{ c *gocache.Cache }

func (g goRedisCache) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := g.c.Get(ctx, key, &v)
	if errors.Is(err, gocache.ErrCacheMiss) {
		return nil, tierstore.ErrNotFound
	}
	return v, err
}

func (g goRedisCache) Set(ctx context.Context, key string, v []byte, expiry time.Time) error {
	return g.c.Set(&gocache.Item{Ctx: ctx, Key: key, Value: v, TTL: time.Until(expiry)})
}

func (g goRedisCache) Delete(ctx context.Context, key string) error { return g.c.Delete(ctx, key) }

// BenchmarkMixedPeers runs the mixed workload of the root benchmarks
// (two instances, 95/5, 10k Zipf keys) on tiered and on go-redis/cache,
// counting stale reads: go-redis/cache's local copies are never
// invalidated by the other instance's writes.
func BenchmarkMixedPeers(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	cfg := workload.Config{}
	newGoRedisCache := func() tierstore.Store {
		return goRedisCache{gocache.New(&gocache.Options{
			Redis:      srv.Client(&goredis.Options{ContextTimeoutEnabled: true}),
			LocalCache: gocache.NewTinyLFU(10000, time.Minute),
		})}
	}
	setups := []struct {
		name      string
		instances []tierstore.Store
	}{
		{"tiered", []tierstore.Store{newTiered(b, srv, "mixed:"), newTiered(b, srv, "mixed:")}},
		{"go-redis-cache", []tierstore.Store{newGoRedisCache(), newGoRedisCache()}},
	}
	for _, s := range setups {
		if err := workload.Preload(ctx, s.instances[0], cfg); err != nil {
			b.Fatal(err)
		}
		b.Run(s.name, func(b *testing.B) { mixed.Run(b, srv, s.instances, cfg) })
	}
}
