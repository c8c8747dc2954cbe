package stores_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/internal/testenv/workload"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/tiered"
)

// BenchmarkOutsideChange measures, for each kind of change made to Redis
// outside tiered, how long after the change returned two instances
// holding the key in L1 still served the old value (L1TTL 5 s, so 5 s
// means "until the entry ended"). One b.N iteration is one change; run
// with -benchtime 20x. mode=publish is invalidation.OwnWrites, for comparison.
func BenchmarkOutsideChange(b *testing.B) {
	ctx := context.Background()
	type change struct {
		name string
		do   func(b *testing.B, srv *redistest.Server, c *redis.Client)
	}
	cmd := func(args ...any) func(*testing.B, *redistest.Server, *redis.Client) {
		return func(b *testing.B, _ *redistest.Server, c *redis.Client) {
			if err := c.Do(ctx, args...).Err(); err != nil {
				b.Fatal(err)
			}
		}
	}
	changes := []change{
		{"DEL", cmd("DEL", "o:k")},
		{"UNLINK", cmd("UNLINK", "o:k")},
		{"FLUSHDB", cmd("FLUSHDB")},
		{"SWAPDB", cmd("SWAPDB", 0, 1)},
		{"PEXPIRE", cmd("PEXPIRE", "o:k", 1)},
		{"SET-other-program", func(b *testing.B, _ *redistest.Server, c *redis.Client) {
			raw, _ := c.Get(ctx, "o:src").Result()
			if err := c.Set(ctx, "o:k", raw, 0).Err(); err != nil {
				b.Fatal(err)
			}
		}},
		{"RENAME", cmd("RENAME", "o:src", "o:k")},
		{"l2.Store-Set", func(b *testing.B, _ *redistest.Server, c *redis.Client) {
			admin, _ := l2.New(l2.Config{Redis: c, KeyPrefix: "o:"})
			if err := admin.Set(ctx, "k", []byte("v2"), time.Time{}); err != nil {
				b.Fatal(err)
			}
		}},
		{"eviction", func(b *testing.B, _ *redistest.Server, c *redis.Client) {
			c.PExpire(ctx, "o:k", time.Hour)
			c.ConfigSet(ctx, "maxmemory-policy", "volatile-lru")
			c.ConfigSet(ctx, "maxmemory", "4mb")
			junk := strings.Repeat("x", 10<<10)
			for i := 0; c.Exists(ctx, "o:k").Val() == 1; i++ {
				c.Set(ctx, fmt.Sprintf("junk:%d", i), junk, 0)
			}
		}},
		{"REPLICAOF", func(b *testing.B, _ *redistest.Server, c *redis.Client) {
			other := redistest.Start(b)
			host, port, _ := strings.Cut(other.Addr(), ":")
			other.Do("SET", "o:marker", "x")
			c.ReplicaOf(ctx, host, port)
			redistest.Eventually(b, "synced", func() bool { return c.Exists(ctx, "o:marker").Val() == 1 })
		}},
	}
	for _, mode := range []string{"tracking", "publish"} {
		for _, ch := range changes {
			b.Run(mode+"/"+ch.name, func(b *testing.B) {
				var stale []time.Duration
				for b.Loop() {
					b.StopTimer()
					srv := redistest.Start(b)
					open := func() *tiered.Store {
						s, err := tiered.New(tiered.Config{Redis: srv.Client(nil), KeyPrefix: "o:", L1TTL: 5 * time.Second, Invalidation: invalidation.ModeIf(mode == "publish")})
						if err != nil {
							b.Fatal(err)
						}
						redistest.WaitLive(b, s)
						return s
					}
					a, other := open(), open()
					for _, kv := range [][2]string{{"src", "v2"}, {"k", "v1"}} {
						if err := a.Set(ctx, kv[0], []byte(kv[1]), time.Time{}); err != nil {
							b.Fatal(err)
						}
					}
					for _, s := range []*tiered.Store{a, other} {
						redistest.Eventually(b, "k cached", func() bool {
							before := s.Stats().L1.Hits
							v, _ := s.Get(ctx, "k")
							return string(v) == "v1" && s.Stats().L1.Hits > before
						})
					}
					c := srv.Client(nil)
					ch.do(b, srv, c)
					changed := time.Now()
					var worst time.Duration
					for _, s := range []*tiered.Store{a, other} {
						for {
							v, _ := s.Get(ctx, "k")
							if string(v) != "v1" {
								break
							}
						}
						worst = max(worst, time.Since(changed))
					}
					stale = append(stale, worst)
					a.Close()
					other.Close()
					srv.Stop()
					b.StartTimer()
				}
				slices.Sort(stale)
				b.ReportMetric(float64(workload.Percentile(stale, 50).Microseconds()), "p50-stale-µs")
				b.ReportMetric(float64(workload.Percentile(stale, 100).Microseconds()), "max-stale-µs")
			})
		}
	}
}
