package tiered

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/l2"
)

// Every kind of change to Redis, made outside tiered, reaches both
// instances holding the key. L1TTL is a minute, so only an invalidation
// or a gap can make them read the change within the test.
func TestEveryChangeReachesEveryInstance(t *testing.T) {
	ctx := context.Background()
	type change struct {
		name string
		do   func(t *testing.T, srv *redistest.Server, c *redis.Client)
		want string // what a read returns after it, unless check is set
		gap  bool   // reported as a flush of everything, not key by key
		// check, if set, inspects what the instance reads instead.
		check func(t *testing.T, s *Store)
	}
	v2 := func(t *testing.T, c *redis.Client) string { // framed bytes of "v2"
		b, err := c.Get(ctx, "test:src").Result()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	expiresWithin := func(d time.Duration) func(t *testing.T, s *Store) {
		return func(t *testing.T, s *Store) {
			v, _, exp, err := s.GetVersion(ctx, "k", tierstore.NoVersion)
			if err != nil || string(v) != "v1" || exp.IsZero() || time.Until(exp) > d {
				t.Fatalf("read %q, expiry in %v, %v; want v1 expiring within %v", v, time.Until(exp), err, d)
			}
		}
	}
	do := func(args ...any) func(t *testing.T, srv *redistest.Server, c *redis.Client) {
		return func(t *testing.T, srv *redistest.Server, c *redis.Client) {
			if err := c.Do(ctx, args...).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	changes := []change{
		{name: "DEL", do: do("DEL", "test:k"), want: "<not found>"},
		{name: "UNLINK", do: do("UNLINK", "test:k"), want: "<not found>"},
		{name: "SET by another program", do: func(t *testing.T, _ *redistest.Server, c *redis.Client) {
			if err := c.Set(ctx, "test:k", v2(t, c), 0).Err(); err != nil {
				t.Fatal(err)
			}
		}, want: "v2"},
		{name: "RENAME onto", do: do("RENAME", "test:src", "test:k"), want: "v2"},
		{name: "RENAME away", do: do("RENAME", "test:k", "test:elsewhere"), want: "<not found>"},
		{name: "COPY onto", do: do("COPY", "test:src", "test:k", "REPLACE"), want: "v2"},
		{name: "EXPIRE shortened", do: do("EXPIRE", "test:k", 30), check: expiresWithin(30 * time.Second)},
		{name: "PEXPIRE shortened", do: do("PEXPIRE", "test:k", 20000), check: expiresWithin(20 * time.Second)},
		{name: "expired", do: func(t *testing.T, _ *redistest.Server, c *redis.Client) {
			if err := c.PExpire(ctx, "test:k", time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
			redistest.Eventually(t, "k expires", func() bool { return c.Exists(ctx, "test:k").Val() == 0 })
		}, want: "<not found>"},
		{name: "l2.Store Set", do: func(t *testing.T, _ *redistest.Server, c *redis.Client) {
			admin, err := l2.New(l2.Config{Redis: c, KeyPrefix: "test:"})
			if err != nil {
				t.Fatal(err)
			}
			if err := admin.Set(ctx, "k", []byte("v2"), time.Time{}); err != nil {
				t.Fatal(err)
			}
		}, want: "v2"},
		{name: "l2.Store Delete", do: func(t *testing.T, _ *redistest.Server, c *redis.Client) {
			admin, err := l2.New(l2.Config{Redis: c, KeyPrefix: "test:"})
			if err != nil {
				t.Fatal(err)
			}
			if err := admin.Delete(ctx, "k"); err != nil {
				t.Fatal(err)
			}
		}, want: "<not found>"},
		// The epoch key is put back in the same step, so that only Redis's
		// report of the flush can tell the instances (the next check would
		// otherwise notice the missing key too).
		{name: "FLUSHDB", do: flushKeepingEpoch("FLUSHDB"), want: "<not found>", gap: true},
		{name: "FLUSHALL", do: flushKeepingEpoch("FLUSHALL"), want: "<not found>", gap: true},
		{name: "SWAPDB", do: do("SWAPDB", 0, 1), want: "<not found>", gap: true},
		{name: "eviction", do: func(t *testing.T, _ *redistest.Server, c *redis.Client) {
			// k is the only key with an expiry, so volatile-lru can evict
			// nothing else.
			if err := c.PExpire(ctx, "test:k", time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			if err := c.ConfigSet(ctx, "maxmemory-policy", "volatile-lru").Err(); err != nil {
				t.Fatal(err)
			}
			if err := c.ConfigSet(ctx, "maxmemory", "4mb").Err(); err != nil {
				t.Fatal(err)
			}
			junk := strings.Repeat("x", 10<<10)
			for i := 0; c.Exists(ctx, "test:k").Val() == 1; i++ {
				// The write that makes Redis evict k may still be refused.
				if err := c.Set(ctx, fmt.Sprintf("junk:%d", i), junk, 0).Err(); err != nil && c.Exists(ctx, "test:k").Val() == 1 {
					t.Fatalf("k was never evicted: %v", err)
				}
			}
		}, want: "<not found>"},
		{name: "REPLICAOF", do: func(t *testing.T, _ *redistest.Server, c *redis.Client) {
			// The dataset is replaced by another server's, which has no k.
			other := redistest.Start(t)
			other.Do("SET", "test:other", "x")
			host, port, _ := strings.Cut(other.Addr(), ":")
			if err := c.ReplicaOf(ctx, host, port).Err(); err != nil {
				t.Fatal(err)
			}
			redistest.Eventually(t, "the replica has synced", func() bool { return c.Exists(ctx, "test:other").Val() == 1 })
		}, want: "<not found>", gap: true},
	}
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			a, b, srv := pair(t, Config{})
			c := srv.Client(nil)
			// A third instance writes: A and B hold what they read, not
			// what they wrote (which they would read again when a report
			// drops it).
			w := newStore(t, srv.Client(nil), Config{})
			set(t, w, "src", "v2")
			set(t, w, "k", "v1")
			for _, s := range []*Store{a, b} {
				if got := cached(t, s, "k"); got != "v1" {
					t.Fatalf("cached %q, want v1", got)
				}
			}
			gaps := map[*Store]uint64{a: a.Stats().Invalidation.Gaps, b: b.Stats().Invalidation.Gaps}
			ch.do(t, srv, c)
			for name, s := range map[string]*Store{"A": a, "B": b} {
				// Its copy of k gone, a read goes to Redis, which has
				// applied the change. (A count of invalidations heard
				// could grow with a late report of an earlier write.)
				redistest.Eventually(t, name+" drops its copy of k", func() bool { return lookupL1(s, "k") == "" })
				if ch.gap && s.Stats().Invalidation.Gaps == gaps[s] {
					t.Fatalf("%s dropped k after %s without a gap", name, ch.name)
				}
				if ch.check != nil {
					ch.check(t, s)
				} else if got := get(t, s, "k"); got != ch.want {
					t.Fatalf("%s read %q after %s, want %q", name, got, ch.name, ch.want)
				}
			}
		})
	}
}

// flushKeepingEpoch runs cmd (FLUSHDB or FLUSHALL) and puts the epoch key
// back in the same script.
func flushKeepingEpoch(cmd string) func(t *testing.T, srv *redistest.Server, c *redis.Client) {
	return func(t *testing.T, srv *redistest.Server, c *redis.Client) {
		script := "local e = redis.call('GET', KEYS[1]) redis.call('" + cmd + "') if e then redis.call('SET', KEYS[1], e) end return e"
		if err := c.Eval(context.Background(), script, []string{"test:\x00epoch"}).Err(); err != nil {
			t.Fatalf("%s keeping the epoch key: %v", cmd, err)
		}
	}
}

// A writer is not told of its own writes (NOLOOP on the connection that
// carries them), so it keeps serving what it wrote, and its peers are
// told once per write.
//
// Broadcast mode only: in per-key mode Redis reports an instance's own
// writes back (see TestSavedSessionIsServedFromMemory).
func TestOwnWritesAreNotEchoed(t *testing.T) {
	a, b, _ := pair(t, Config{Invalidation: invalidation.Broadcast})
	get(t, a, "theirs") // followed by A from now on, in per-key mode
	get(t, b, "mine")   // and this by B
	set(t, a, "mine", "v1")
	// B's write of another key reaches A after any echo of A's write
	// would have: Redis sends each instance's invalidations in order.
	redistest.AfterGrowth(t, "A hears B's write", received(a), func() { set(t, b, "theirs", "x") })
	if st := a.Stats(); st.Invalidation.Received != 1 {
		t.Fatalf("A received %d invalidations, want 1 (B's): %+v", st.Invalidation.Received, st)
	}
	hits, reads := a.Stats().L1.Hits, a.Stats().Redis.Hits
	if got := get(t, a, "mine"); got != "v1" || a.Stats().L1.Hits != hits+1 || a.Stats().Redis.Hits != reads {
		t.Fatalf("A read %q: its own write was not served from L1 (%+v)", got, a.Stats())
	}
	if st := b.Stats(); st.Invalidation.Received != 1 {
		t.Fatalf("B received %d invalidations for A's one write: %+v", st.Invalidation.Received, st)
	}
}

// A peer's change of a key in the same instant as this instance's Touch
// is not lost: Touch drops the cached copy instead of extending it.
func TestTouchDropsTheCachedCopy(t *testing.T) {
	a, _, srv := pair(t, Config{})
	set(t, a, "k", "v1")
	cached(t, a, "k")
	if err := a.Touch(context.Background(), "k", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := lookupL1(a, "k"); got != "" {
		t.Fatalf("L1 still serves %q after Touch", got)
	}
	if ttl := srv.Client(nil).PTTL(context.Background(), "test:k").Val(); ttl < 59*time.Minute {
		t.Fatalf("Touch left a TTL of %v", ttl)
	}
}

// The registration's connection killed: the instance must re-register
// before serving again, and then hear changes again.
func TestLostRegistrationIsAGap(t *testing.T) {
	for _, victim := range []string{"registration", "subscriber"} {
		t.Run(victim, func(t *testing.T) {
			a, b, srv := pair(t, Config{})
			c := srv.Client(nil)
			set(t, a, "k", "v1")
			cached(t, b, "k")
			id := trackingClientID(t, c, victim == "subscriber")
			redistest.AfterGrowth(t, "B flushes after losing its "+victim, func() uint64 { return b.Stats().Invalidation.Gaps }, func() {
				for _, i := range id {
					srv.Do("CLIENT", "KILL", "ID", i)
				}
			})
			redistest.WaitLive(t, b)
			cached(t, b, "k") // followed again, on the new registration
			redistest.AfterGrowth(t, "B hears a change after re-registering", received(b), func() {
				if err := c.Del(context.Background(), "test:k").Err(); err != nil {
					t.Fatal(err)
				}
			})
			if got := get(t, b, "k"); got != "<not found>" {
				t.Fatalf("B read %q after the key was deleted", got)
			}
		})
	}
}

// trackingClientID returns the IDs of the tracking registrations (or of
// the subscribers they redirect to) of all instances.
func trackingClientID(t *testing.T, c *redis.Client, subscribers bool) []int64 {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for line := range strings.SplitSeq(strings.TrimSpace(list), "\n") {
		var id int64
		var flags string
		var sub int
		for f := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "id":
				fmt.Sscan(v, &id)
			case "flags":
				flags = v
			case "sub":
				fmt.Sscan(v, &sub)
			}
		}
		if (subscribers && sub > 0) || (!subscribers && strings.Contains(flags, "t")) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		t.Fatalf("no tracking client in %s", list)
	}
	return ids
}

// A Redis that refuses CLIENT TRACKING makes New fail, naming the way out.
func TestTrackingRefusedIsAClearError(t *testing.T) {
	srv := redistest.Start(t, "--rename-command", "CLIENT", "")
	_, err := New(Config{Redis: srv.Client(nil)})
	if !errors.Is(err, tierstore.ErrRefused) || !strings.Contains(err.Error(), "OwnWrites") {
		t.Fatalf("New: %v, want ErrRefused naming OwnWrites", err)
	}
	s, err := New(Config{Redis: srv.Client(nil), Invalidation: invalidation.OwnWrites})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// SWAPDB away and back between two checks: a value read from the other
// dataset while it was swapped in must not stay in L1 after the swap
// back, which no check can see (the epoch key is the same as at the last
// one). Reads carry the epoch of their dataset, and fill only under the
// one the last check found.
func TestSwapDBAndBackBetweenChecksCachesNothingForeign(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	const interval = 8 * time.Second // checks every 2s
	a := newStore(t, srv.Client(nil), Config{HealthCheckInterval: interval})
	db0, err := l2.New(l2.Config{Redis: srv.Client(nil), KeyPrefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	db1, err := l2.New(l2.Config{Redis: srv.Client(&redis.Options{DB: 1}), KeyPrefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db1.Set(ctx, "k", []byte("from-db1"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := db0.Set(ctx, "k", []byte("from-db0"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Act right after a check+ping, so the next check is ~2s away.
	redistest.AfterGrowth(t, "a ping", func() uint64 { return a.Stats().Invalidation.Heartbeats }, func() {})
	srv.Do("SWAPDB", 0, 1)
	if got := get(t, a, "k"); got != "from-db1" {
		t.Fatalf("read %q while swapped", got)
	}
	srv.Do("SWAPDB", 0, 1)
	// Two more checks and pongs: well past any check that could notice.
	p := a.Stats().Invalidation.HeartbeatsHeard
	redistest.Eventually(t, "two more pongs", func() bool { return a.Stats().Invalidation.HeartbeatsHeard >= p+2 })
	inRedis, err := db0.Get(ctx, "k")
	if err != nil || string(inRedis) != "from-db0" {
		t.Fatalf("Redis holds %q, %v", inRedis, err)
	}
	if got := get(t, a, "k"); got != "from-db0" {
		t.Fatalf("L1 serves %q from the swapped-out dataset two checks after the swap back; Redis holds from-db0", got)
	}
}

// CLIENT TRACKINGINFO is not needed: heartbeats, not a registration's
// description, prove that the registration works.
func TestTrackingInfoIsNotNeeded(t *testing.T) {
	srv := redistest.Start(t)
	srv.Do("ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-client|trackinginfo")
	c := srv.Client(&redis.Options{Username: "app", Password: "pw"})
	newStore(t, c, Config{})
}

// A READONLY reply (the server became a replica) drops the registration
// connection, so that the next one finds the master: through a Sentinel
// client's dialer after a failover that left the old master's clients
// connected. go-redis marks a connection that got READONLY as bad for
// good, so keeping it would fail every later check and write.
func TestReadOnlyReplyDropsTheRegistration(t *testing.T) {
	a, _, srv := pair(t, Config{})
	other := redistest.Start(t)
	other.Do("SET", "test:marker", "x")
	host, port, _ := strings.Cut(other.Addr(), ":")
	srv.Do("REPLICAOF", host, port)
	c := srv.Client(nil)
	redistest.Eventually(t, "the replica has synced", func() bool { return c.Exists(context.Background(), "test:marker").Val() == 1 })
	if err := a.Set(context.Background(), "k", []byte("v"), time.Time{}); err == nil {
		t.Fatal("a write to a replica succeeded")
	}
	// The synced dataset has no epoch key: a check now tries to create it
	// and gets READONLY too.
	pings := a.Stats().Invalidation.Heartbeats
	redistest.Eventually(t, "a check on the replica", func() bool { return a.Stats().Invalidation.Heartbeats > pings || !a.Live() })
	srv.Do("REPLICAOF", "NO", "ONE")
	redistest.WaitLive(t, a)
	redistest.Eventually(t, "A writes again", func() bool {
		return a.Set(context.Background(), "k", []byte("v"), time.Time{}) == nil
	})
}

// A full Redis under noeviction refuses writes, but reads work and
// nothing changes: L1 keeps serving (the check reads the epoch key
// without a SET, which a full Redis refuses even when it would change
// nothing).
func TestFullNoevictionRedisKeepsL1(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(nil), Config{})
	redistest.WaitLive(t, s)
	set(t, s, "k", "v1")
	cached(t, s, "k")
	srv.Do("CONFIG", "SET", "maxmemory-policy", "noeviction")
	srv.Do("CONFIG", "SET", "maxmemory", "1")
	t.Cleanup(func() { srv.Do("CONFIG", "SET", "maxmemory", "0") })
	if err := s.Set(context.Background(), "other", []byte("x"), time.Time{}); err == nil {
		t.Fatal("Redis is not full: a write succeeded")
	}
	gaps := s.Stats().Invalidation.Gaps
	// Three more checks+pings (each check runs before a ping).
	p := s.Stats().Invalidation.Heartbeats
	redistest.Eventually(t, "three pings or a gap", func() bool {
		st := s.Stats()
		return st.Invalidation.Heartbeats >= p+3 || st.Invalidation.Gaps > gaps
	})
	st := s.Stats()
	if st.Invalidation.Gaps != gaps || !st.Invalidation.Live {
		t.Fatalf("full Redis (reads fine, nothing changed): %d gaps, Live=%v; L1 is disabled", st.Invalidation.Gaps-gaps, st.Invalidation.Live)
	}
	if got := lookupL1(s, "k"); got != "v1" {
		t.Fatalf("L1 no longer serves k (%q)", got)
	}
}
