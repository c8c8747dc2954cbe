package tiered

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// A key served from L1 is reported to Redis with TOUCH, and no more often
// than the interval: with an hour's interval, hits after the fill report
// nothing.
func TestL1HitsAreReportedToRedisAtMostOncePerInterval(t *testing.T) {
	srv := redistest.Start(t, "--maxmemory-policy", "allkeys-lru")
	c := srv.Client(nil)
	often := newStore(t, c, Config{KeyPrefix: "often:", AccessReportInterval: time.Nanosecond})
	set(t, often, "k", "v")
	redistest.Eventually(t, "a hit of k is reported as a TOUCH", func() bool {
		get(t, often, "k")
		return touchCalls(t, c) > 0
	})

	rarely := newStore(t, c, Config{KeyPrefix: "rarely:", AccessReportInterval: time.Hour})
	set(t, rarely, "k", "v")
	for range 1000 {
		get(t, rarely, "k")
	}
	if n := rarely.access.queued.Load() + rarely.access.dropped.Load(); n != 0 {
		t.Fatalf("%d reports of a key filled less than an hour ago, want 0", n)
	}
	if got := often.Stats().Redis.AccessReports; got == 0 {
		t.Fatal("Stats().Redis.AccessReports = 0 after a report")
	}
}

// touchCalls returns how many TOUCH commands Redis has run.
func touchCalls(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(info, "cmdstat_touch:calls=")
	if !ok {
		return 0
	}
	var n int
	fmt.Sscan(strings.TrimRightFunc(rest[:strings.IndexByte(rest, ',')], func(r rune) bool { return r == ',' }), &n)
	return n
}

func TestAccessReportsFollowTheEvictionPolicy(t *testing.T) {
	for _, c := range []struct {
		info string
		want bool
	}{
		{"# Memory\r\nmaxmemory_policy:allkeys-lru\r\n", true},
		{"# Memory\r\nmaxmemory_policy:volatile-lfu\r\n", true},
		{"# Memory\r\nmaxmemory_policy:noeviction\r\n", false},
		{"# Memory\r\nmaxmemory_policy:allkeys-random\r\n", false},
		{"# Memory\r\nmaxmemory_policy:volatile-ttl\r\n", false},
		{"", true}, // unknown: report
	} {
		if got := usesAccessTimes(c.info); got != c.want {
			t.Errorf("usesAccessTimes(%q) = %v, want %v", c.info, got, c.want)
		}
	}
}

// Under an LRU maxmemory-policy, keys read through tiered (from L1, never
// reaching Redis but for the reports) survive a stream of cold writes that
// evicts twice Redis's memory, as keys read from Redis on every request
// do. Without the reports Redis sees them as idle since their first read
// and evicts them like cold keys (checked: none of 100 survived).
func TestKeysReadFromL1SurviveLRUEviction(t *testing.T) {
	srv := redistest.Start(t, "--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")
	c := srv.Client(nil)
	s := newStore(t, c, Config{KeyPrefix: "lru:", AccessReportInterval: 100 * time.Millisecond})
	ctx := context.Background()
	value := strings.Repeat("v", 1000)
	const hot = 100
	for i := range hot {
		set(t, s, fmt.Sprintf("hot%d", i), value)
		if err := c.Set(ctx, fmt.Sprintf("lru:direct%d", i), value, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Cold writes at about 1000 a second: each lives about 3 s before
	// eviction, longer than Redis's 1 s LRU clock, so that access times
	// can tell hot from cold. 6000 writes: twice what the memory holds.
	for round := range 120 {
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range 50 {
				p.Set(ctx, fmt.Sprintf("lru:cold%d-%d", round, i), value, 0)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range hot {
			get(t, s, fmt.Sprintf("hot%d", i))
			c.Get(ctx, fmt.Sprintf("lru:direct%d", i)) // as the Redis-only store reads
		}
		time.Sleep(50 * time.Millisecond) // paces the writes; nothing waits on it
	}
	if evicted := c.Info(ctx, "stats").Val(); !strings.Contains(evicted, "evicted_keys:") || strings.Contains(evicted, "evicted_keys:0\r") {
		t.Fatal("no key was evicted: the test did not exercise eviction")
	}
	alive, direct := 0, 0
	for i := range hot {
		alive += int(c.Exists(ctx, fmt.Sprintf("lru:hot%d", i)).Val())
		direct += int(c.Exists(ctx, fmt.Sprintf("lru:direct%d", i)).Val())
	}
	t.Logf("survived LRU eviction: %d of %d keys read through tiered, %d of %d read from Redis", alive, hot, direct, hot)
	if alive < hot*9/10 {
		t.Fatalf("%d of %d keys read from L1 survived LRU eviction, want at least 90%%", alive, hot)
	}
}
