package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Eventually polls cond until it holds, failing t after 10 seconds with
// what was awaited.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Liver is a store whose invalidation subscription can be live
// (*tiered.Store).
type Liver interface{ Live() bool }

// WaitLive waits until every store's subscription is live, so that its L1
// serves.
func WaitLive(t testing.TB, stores ...Liver) {
	t.Helper()
	for _, s := range stores {
		Eventually(t, "the store is live", s.Live)
	}
}

// Miniredis starts an in-process miniredis and a client of it, both
// stopped when the test ends.
func Miniredis(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { c.Close() })
	return m, c
}

// RawWriter returns a function that puts bytes tierstore did not write
// under prefix+key (for storetest.Raw): "corrupt" foreign bytes,
// "truncated" a frame cut short, or "list" a Redis list.
func RawWriter(c *redis.Client, prefix string) func(t *testing.T, key, kind string) {
	return func(t *testing.T, key, kind string) {
		ctx := context.Background()
		k := prefix + key
		c.Del(ctx, k)
		var err error
		switch kind {
		case "corrupt":
			err = c.Set(ctx, k, "plain text", 0).Err()
		case "truncated":
			err = c.Set(ctx, k, "\xb1\x01\x02\x03\x04a val", 0).Err()
		case "list":
			err = c.RPush(ctx, k, "a").Err()
		default:
			t.Fatalf("redistest: unknown raw kind %q", kind)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// AfterGrowth runs do, then waits until count exceeds what it was before
// do ran, failing t after 10 seconds: for "write on one instance, then wait
// until the other has applied the invalidation", with count reading the
// other's Stats().Invalidation.Received.
func AfterGrowth(t testing.TB, what string, count func() uint64, do func()) {
	t.Helper()
	before := count()
	do()
	Eventually(t, what, func() bool { return count() > before })
}
