package tiered

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
)

// Per-key tracking follows only what an instance read or wrote. Its own
// pitfalls, each on a real Redis.

// A peer's change right after this instance's own write is reported to
// it: the write itself (Set and SetIf alike) made Redis follow the key for
// the writer, whose cached copy the change then drops. Without the read
// that ends each write script, Redis would have forgotten the key for
// every instance, this one included, and A would serve its own value
// forever (up to L1TTL): a first Set of a key, which nothing followed
// before, is not even reported back to A to read it again.
func TestPeerChangeAfterOwnWriteIsReported(t *testing.T) {
	srv := redistest.Start(t)
	var markers redistest.Markers
	a := newStore(t, srv.Client(nil), Config{OnInvalidate: markers.OnInvalidate})
	b := newStore(t, srv.Client(nil), Config{})
	ctx := context.Background()
	for _, conditional := range []bool{false, true} {
		key := "plain"
		if conditional {
			key = "conditional"
		}
		if conditional {
			if _, err := a.SetIf(ctx, key, []byte("mine"), time.Time{}, tierstore.NoVersion); err != nil {
				t.Fatal(err)
			}
		} else {
			set(t, a, key, "mine")
		}
		if got := cached(t, a, key); got != "mine" {
			t.Fatalf("A caches %q", got)
		}
		// Not "one more report": A's own write reported back late could
		// be it.
		set(t, b, key, "theirs")
		markers.CaughtUp(t, a, b)
		if got := get(t, a, key); got != "theirs" {
			t.Fatalf("A serves %q after B's change of %s", got, key)
		}
	}
}

// Redis bounds its tracking table (tracking-table-max-keys): a key it
// stops following is reported as if it changed, so an instance never
// keeps serving a copy whose changes would no longer reach it.
func TestTrackingTableEvictionIsAnInvalidation(t *testing.T) {
	a, b, srv := pair(t, Config{})
	srv.Do("CONFIG", "SET", "tracking-table-max-keys", "2")
	keys := []string{"k1", "k2", "k3", "k4", "k5"}
	for _, k := range keys {
		set(t, b, k, "old")
	}
	// A reads them all: Redis follows at most two keys (its beats'
	// included) and reports the others as it drops them.
	redistest.AfterGrowth(t, "Redis evicts keys from its tracking table", received(a), func() {
		for _, k := range keys {
			cached(t, a, k)
		}
	})
	for _, k := range keys {
		set(t, b, k, "new")
	}
	for _, k := range keys {
		redistest.Eventually(t, "A reads the new "+k, func() bool { return get(t, a, k) == "new" })
	}
}

// The connection that carries an instance's reads holds a registration:
// when it breaks, whatever it followed is no longer reported, which is a
// gap at once (not only when the heartbeat lease, here a minute, runs out).
// The same for the writes' connection.
func TestTrackedConnectionLostIsAGap(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(nil), Config{HealthCheckInterval: time.Minute})
	redistest.WaitLive(t, s)
	c := srv.Client(nil)
	ctx := context.Background()
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var tracked []string
	for line := range strings.SplitSeq(list, "\n") {
		if strings.Contains(line, " flags=t ") {
			tracked = append(tracked, strings.TrimPrefix(strings.Fields(line)[0], "id="))
		}
	}
	if len(tracked) != 2 {
		t.Fatalf("%d tracked connections, want 2 (reads, writes):\n%s", len(tracked), list)
	}
	for _, id := range tracked {
		set(t, s, "k", "v")
		cached(t, s, "k")
		redistest.AfterGrowth(t, "killing tracked connection "+id+" is a gap", func() uint64 { return s.Stats().Invalidation.Gaps }, func() {
			if err := c.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatal(err)
			}
			// The break shows on the connection's next call.
			_, _ = s.Get(ctx, "other")
			_ = s.Set(ctx, "other", []byte("x"), time.Time{})
		})
		if lookupL1(s, "k") != "" {
			t.Fatal("L1 still serves after the gap")
		}
		redistest.WaitLive(t, s)
	}
}

// In broadcast mode Redis 7.0 reports a conditional save (a script) back
// to the instance that made it; in one event-loop cycle with a peer's
// change of the same key, Redis reports both as one. The saver never takes
// that report for its own echo: it reads the key again, and ends up
// serving what Redis holds, whoever wrote last. Both writes are held by a
// write pause and released together, so that Redis runs them in one cycle.
func TestOwnEchoNeverHidesAPeersChange(t *testing.T) {
	for _, mode := range []invalidation.Mode{invalidation.PerKey, invalidation.Broadcast} {
		t.Run(mode.String(), func(t *testing.T) {
			// No heartbeat (a write) during the pause, whose count of
			// blocked clients must be A's and B's writes alone.
			a, b, srv := pair(t, Config{Invalidation: mode, HealthCheckInterval: time.Minute})
			ctx := context.Background()
			for range 20 {
				set(t, a, "k", "a0")
				_, v, _, err := a.GetVersion(ctx, "k", 0)
				if err != nil {
					t.Fatal(err)
				}
				cached(t, a, "k")
				srv.Do("CLIENT", "PAUSE", "2000", "WRITE")
				var wg sync.WaitGroup
				wg.Go(func() {
					if _, err := a.SetIf(ctx, "k", []byte("a1"), time.Time{}, v); err != nil && !errors.Is(err, tierstore.ErrConflict) {
						t.Error(err)
					}
				})
				wg.Go(func() { set(t, b, "k", "b1") })
				redistest.Eventually(t, "both writes wait for the pause", func() bool {
					return strings.Contains(srv.Do("INFO", "clients").(string), "blocked_clients:2")
				})
				srv.Do("CLIENT", "UNPAUSE")
				wg.Wait()
				truth := srv.Client(nil).Get(ctx, "test:k").Val()
				redistest.Eventually(t, "A serves what Redis holds", func() bool {
					got := get(t, a, "k")
					return truth[len(truth)-2:] == got
				})
			}
		})
	}
}
