package tiered

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/l2"
)

// "Live means proven": the rows of the failure table, each on a real
// redis-server. A store is Live only while heartbeats made through
// another connection come back on its subscription, so a subscription
// refused by an ACL, a renamed command or a registration that goes
// nowhere can never leave it serving from memory.

// appUser creates an ACL user "app" with password "pw" and rules (after
// "on" and the password), and returns a client logged in as it.
func appUser(t *testing.T, srv *redistest.Server, rules ...string) *redis.Client {
	t.Helper()
	args := []any{"ACL", "SETUSER", "app", "reset", "on", ">pw"}
	for _, r := range rules {
		args = append(args, r)
	}
	srv.Do(args...)
	return srv.Client(&redis.Options{Username: "app", Password: "pw"})
}

// What a user needs in the default mode: the keys under the prefix and
// the heartbeat keys (test:* and test;heartbeat:*), the tracking channel
// and the commands of reads, writes, tracking and heartbeats. This is
// the ACL of docs/operations.md.
var trackingACL = []string{"~test:*", "~test;heartbeat:*", "&__redis__:invalidate",
	"+get", "+set", "+del", "+pttl", "+evalsha", "+eval", "+touch", "+info", "+scan", "+rename", "+pexpire",
	"+client|tracking", "+client|id", "+subscribe", "+unsubscribe"}

// A user with exactly the documented ACL gets a Live store.
func TestTheDocumentedACLIsEnough(t *testing.T) {
	srv := redistest.Start(t)
	a := newStore(t, appUser(t, srv, trackingACL...), Config{})
	b := newStore(t, srv.Client(nil), Config{})
	set(t, b, "k", "v1")
	cached(t, a, "k")
	redistest.AfterGrowth(t, "A hears B's write", received(a), func() { set(t, b, "k", "v2") })
	if got := get(t, a, "k"); got != "v2" {
		t.Fatalf("A read %q after B wrote v2", got)
	}
}

// With OwnWrites: the keys, the channels under the invalidation
// channel (the shared one and each instance's heartbeat channel), and
// the commands of reads, writes and pub/sub; nothing of CLIENT. This is
// the ACL of docs/operations.md.
var ownWritesACL = []string{"~test:*", "&tierstore:invalidate:test:*",
	"+get", "+set", "+del", "+pttl", "+evalsha", "+eval", "+publish", "+touch", "+info", "+scan",
	"+subscribe", "+unsubscribe"}

// A user with exactly the documented OwnWrites ACL gets a Live store
// that hears its peers; one permission less is refused at New.
func TestTheDocumentedOwnWritesACLIsEnough(t *testing.T) {
	srv := redistest.Start(t)
	cfg := Config{Invalidation: invalidation.OwnWrites}
	a := newStore(t, appUser(t, srv, ownWritesACL...), cfg)
	b := newStore(t, srv.Client(nil), cfg)
	set(t, b, "k", "v1")
	cached(t, a, "k")
	redistest.AfterGrowth(t, "A hears B's write", received(a), func() { set(t, b, "k", "v2") })
	if got := get(t, a, "k"); got != "v2" {
		t.Fatalf("A read %q after B wrote v2", got)
	}
	for _, drop := range []string{"&tierstore:invalidate:test:*", "+subscribe", "+publish"} {
		var rules []string
		for _, r := range ownWritesACL {
			if r != drop {
				rules = append(rules, r)
			}
		}
		s, err := New(Config{Redis: appUser(t, srv, rules...), KeyPrefix: "test:", Invalidation: invalidation.OwnWrites, HealthCheckInterval: testInterval})
		if err == nil {
			s.Close()
			t.Fatalf("without %s: New succeeded", drop)
		}
		if !errors.Is(err, tierstore.ErrRefused) {
			t.Fatalf("without %s: New: %v, want ErrRefused", drop, err)
		}
	}
}

// One permission less than the documented ACL, or SUBSCRIBE renamed:
// New fails with ErrRefused naming what was refused, instead of a store
// that is Live while it hears nothing.
func TestMissingPermissionIsRefusedAtNew(t *testing.T) {
	without := func(drop string) []string {
		var rules []string
		for _, r := range trackingACL {
			if r != drop {
				rules = append(rules, r)
			}
		}
		return rules
	}
	for _, c := range []struct {
		name  string
		rules []string // nil: the default user on a server with SUBSCRIBE renamed
		says  string
	}{
		{"no channel permission (Redis 7's default resetchannels)", without("&__redis__:invalidate"), "subscribe"},
		{"no SUBSCRIBE", without("+subscribe"), "subscribe"},
		{"no CLIENT TRACKING", without("+client|tracking"), "OwnWrites"},
		{"no heartbeat keys", without("~test;heartbeat:*"), "heartbeat"},
		{"no RENAME", without("+rename"), "heartbeat"},
		{"no EVALSHA", without("+evalsha"), "read script"},
		{"SUBSCRIBE renamed", nil, "subscribe"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var srv *redistest.Server
			var client *redis.Client
			if c.rules == nil {
				srv = redistest.Start(t, "--rename-command", "SUBSCRIBE", "SUBSCRIBE-renamed")
				client = srv.Client(nil)
			} else {
				srv = redistest.Start(t)
				client = appUser(t, srv, c.rules...)
			}
			s, err := New(Config{Redis: client, KeyPrefix: "test:", HealthCheckInterval: testInterval})
			if err == nil {
				s.Close()
				t.Fatalf("New succeeded (Live=%v)", s.Live())
			}
			if !errors.Is(err, tierstore.ErrRefused) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("New: %v; want ErrRefused mentioning %q", err, c.says)
			}
			if c.says != "OwnWrites" && strings.Contains(err.Error(), "OwnWrites") {
				t.Fatalf("New: %v; advises OwnWrites, which would not help", err)
			}
		})
	}
}

// The same on a Cluster: every master's subscription is refused.
func TestMissingChannelPermissionIsRefusedOnACluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	for _, addr := range cluster.Addrs() {
		c := redis.NewClient(&redis.Options{Addr: addr})
		args := []any{"ACL", "SETUSER", "app", "reset", "on", ">pw", "+@all", "~*", "resetchannels"}
		if err := c.Do(context.Background(), args...).Err(); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	cc := cluster.Client(&redis.ClusterOptions{Username: "app", Password: "pw"})
	s, err := New(Config{Redis: cc, KeyPrefix: "test:", HealthCheckInterval: testInterval})
	if err == nil {
		s.Close()
		t.Fatal("New succeeded on a Cluster whose user may not subscribe")
	}
	if !errors.Is(err, tierstore.ErrRefused) || !strings.Contains(err.Error(), "subscribe") {
		t.Fatalf("New: %v; want ErrRefused naming the subscription", err)
	}
}

// A channel permission withdrawn while the store runs: Redis cuts the
// subscriber, its resubscription is refused, and the store is not Live
// (counted, logged, Health says why) until the permission is back: a
// peer's change is never served stale meanwhile, and logout stays final.
func TestChannelPermissionWithdrawnAtRunTime(t *testing.T) {
	srv := redistest.Start(t)
	var logs syncBuffer
	a := newStore(t, appUser(t, srv, "+@all", "~*", "&*"), Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	b := newStore(t, srv.Client(nil), Config{})
	set(t, b, "k", "v1")
	cached(t, a, "k")
	srv.Do("ACL", "SETUSER", "app", "resetchannels")
	redistest.Eventually(t, "A is not Live once its subscription is refused", func() bool { return !a.Live() })
	set(t, b, "k", "v2")
	if err := b.Delete(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if got := get(t, a, "k"); got != "v2" {
			t.Fatalf("A served %q after B wrote v2, while it could not hear invalidations", got)
		}
	}
	redistest.Eventually(t, "the refusal is counted", func() bool { return a.Stats().Invalidation.Refusals > 0 })
	if err := a.Health(); !errors.Is(err, tierstore.ErrRefused) || !errors.Is(err, invalidation.ErrNotLive) {
		t.Fatalf("Health: %v, want ErrNotLive and ErrRefused", err)
	}
	if out := logs.String(); !strings.Contains(out, "refused") || !strings.Contains(out, "not live") {
		t.Fatalf("log:\n%s\nwant a refusal and the loss of Live", out)
	}
	srv.Do("ACL", "SETUSER", "app", "allchannels")
	redistest.WaitLive(t, a)
	redistest.AfterGrowth(t, "A hears changes again", received(a), func() { set(t, b, "k", "v3") })
	if got := get(t, a, "k"); got != "v3" {
		t.Fatalf("A read %q after B wrote v3", got)
	}
}

// PING is not needed: the heartbeats are not pings.
func TestUserWithoutPingIsLive(t *testing.T) {
	srv := redistest.Start(t)
	newStore(t, appUser(t, srv, "+@all", "~*", "&*", "-ping"), Config{})
}

// Wrong or missing credentials are an auth error that says so, with or
// without OwnWrites, and never advise OwnWrites.
func TestAuthErrorSaysAuth(t *testing.T) {
	srv := redistest.Start(t)
	srv.Do("ACL", "SETUSER", "app", "on", ">pw", "+@all", "~*", "&*")
	srv.Do("CONFIG", "SET", "requirepass", "secret") // the default user's; srv.Do no longer works
	for _, own := range []bool{false, true} {
		for _, login := range []redis.Options{{}, {Password: "wrong"}, {Username: "app", Password: "wrong"}} {
			_, err := New(Config{Redis: srv.Client(&login), Invalidation: invalidation.ModeIf(own)})
			if !errors.Is(err, tierstore.ErrRefused) || !strings.Contains(err.Error(), "auth") || strings.Contains(err.Error(), "OwnWrites") {
				t.Errorf("own writes=%v, user %q password %q: New: %v; want ErrRefused saying auth, without OwnWrites advice", own, login.Username, login.Password, err)
			}
		}
	}
}

// A wrong address: New does not wait for it, and WaitLive's error says
// what is wrong, not just that the time ran out.
func TestWaitLiveSaysWhy(t *testing.T) {
	addr := redistest.RefusedAddr(t)
	for _, own := range []bool{false, true} {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		s, err := New(Config{Redis: rdb, Invalidation: invalidation.ModeIf(own), HealthCheckInterval: testInterval})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err = s.WaitLive(ctx)
		cancel()
		s.Close()
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, tierstore.ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("own writes=%v: WaitLive: %v; want the deadline, ErrUnavailable and the refused dial", own, err)
		}
	}
}

// Redis black-holed (dials accepted and never answered, replies never
// coming), through a client whose dialer honours only its context: the
// store stops serving from memory, Close does not hang, and once the
// network heals the store is Live again.
func TestBlackHoledRedisRecoversAndCloses(t *testing.T) {
	for _, own := range []bool{false, true} {
		srv := redistest.Start(t)
		proxy := redistest.NewProxy(t, srv.Addr())
		dialer := &net.Dialer{} // no timeout of its own: only its context
		rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), Dialer: dialer.DialContext})
		t.Cleanup(func() { rdb.Close() })
		s := newStore(t, rdb, Config{Invalidation: invalidation.ModeIf(own)})
		set(t, s, "k", "v1")
		cached(t, s, "k")
		proxy.BlackHole()
		redistest.Eventually(t, "the store is not Live while Redis is black-holed", func() bool { return !s.Live() })
		proxy.Heal()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.WaitLive(ctx); err != nil {
			t.Fatalf("own writes=%v: not Live again after the network healed: %v", own, err)
		}
		cancel()
		proxy.BlackHole()
		redistest.Eventually(t, "the store is not Live while Redis is black-holed", func() bool { return !s.Live() })
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("own writes=%v: Close hangs while Redis is black-holed", own)
		}
		proxy.Heal()
	}
}

// A write pause (CLIENT PAUSE WRITE, as FAILOVER and manual failovers
// make) holds writes, not reads: a cold read, and a read of a cached key,
// return while a write of the same instance is still held.
func TestWritePauseDoesNotHoldReads(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(nil), Config{})
	set(t, s, "hot", "v")
	cached(t, s, "hot")
	other, err := l2.New(l2.Config{Redis: srv.Client(nil), KeyPrefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Set(context.Background(), "cold", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	srv.Do("CLIENT", "PAUSE", "3000", "WRITE")
	t.Cleanup(func() { srv.Do("CLIENT", "UNPAUSE") })
	written := make(chan error, 1)
	go func() { written <- s.Set(context.Background(), "held", []byte("x"), time.Time{}) }()
	redistest.Eventually(t, "the write is held by the pause", func() bool {
		return strings.Contains(srv.Do("CLIENT", "LIST").(string), "flags=b")
	})
	for _, key := range []string{"hot", "cold"} {
		if _, err := s.Get(context.Background(), key); err != nil {
			t.Fatalf("Get(%s) during the pause: %v", key, err)
		}
		select {
		case err := <-written:
			t.Fatalf("Get(%s) returned only after the paused write did (%v): it waited for the pause", key, err)
		default:
		}
	}
	srv.Do("CLIENT", "UNPAUSE")
	if err := <-written; err != nil {
		t.Fatalf("the held write, after the pause: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A subscription held up (a slow handler, a backlog) stops renewing the
// lease even though Redis acknowledges every heartbeat: only a heartbeat
// heard behind everything before it proves anything, so a peer's change
// queued behind the hold is never served stale beyond the interval.
func TestHeldSubscriptionLosesTheLease(t *testing.T) {
	var hold redistest.Invalidations
	srv := redistest.Start(t)
	a := newStore(t, srv.Client(nil), Config{OnInvalidate: hold.OnInvalidate})
	b := newStore(t, srv.Client(nil), Config{})
	set(t, b, "k", "v1")
	cached(t, a, "k")
	release := hold.Hold(t, func(marker string) { get(t, a, marker); set(t, b, marker, "x") })
	set(t, b, "k", "v2") // its report waits behind the hold
	redistest.Eventually(t, "A's lease expires while its subscription is held", func() bool { return !a.Live() })
	// Heartbeats go on, acknowledged by Redis; none may bring the lease
	// back while the subscription is held.
	for beats := a.Stats().Invalidation.Heartbeats; a.Stats().Invalidation.Heartbeats < beats+8; {
		if a.Live() {
			t.Fatal("A is Live again while its subscription is held: a heartbeat renewed the lease without arriving")
		}
		if got := get(t, a, "k"); got != "v2" {
			t.Fatalf("A read %q while held; Redis holds v2", got)
		}
	}
	release()
	redistest.WaitLive(t, a)
}

// Credentials refused while the store reconnects (Redis restarted before
// its ACL user was made again): reads and writes fail with ErrRefused
// meanwhile, and once the user is back the store's own connections
// recover; none stays in go-redis's failed-handshake state, answering
// nothing.
func TestRefusedLoginOnReconnectRecovers(t *testing.T) {
	srv := redistest.Start(t)
	user := []any{"ACL", "SETUSER", "app", "on", ">pw", "+@all", "~*", "&*"}
	srv.Do(user...)
	s := newStore(t, srv.Client(&redis.Options{Username: "app", Password: "pw"}), Config{})
	ctx := context.Background()
	srv.Kill()
	srv.Restart() // without the user
	redistest.Eventually(t, "a read is refused", func() bool {
		_, err := s.Get(ctx, "missing")
		return errors.Is(err, tierstore.ErrRefused)
	})
	redistest.Eventually(t, "a write is refused", func() bool {
		return errors.Is(s.Set(ctx, "k", []byte("v"), time.Time{}), tierstore.ErrRefused)
	})
	srv.Do(user...)
	redistest.Eventually(t, "reads work again", func() bool {
		_, err := s.Get(ctx, "missing")
		return errors.Is(err, tierstore.ErrNotFound)
	})
	redistest.Eventually(t, "writes work again", func() bool { return s.Set(ctx, "k", []byte("v"), time.Time{}) == nil })
	redistest.WaitLive(t, s)
}

// A Redis that cannot serve for now (BUSY running a script, LOADING a
// dataset) is not a refusal: New does not fail with ErrRefused and the
// OwnWrites advice.
func TestBusyRedisIsNotRefused(t *testing.T) {
	srv := redistest.Start(t)
	srv.Do("CONFIG", "SET", "busy-reply-threshold", "10")
	ctx := context.Background()
	script := "local t = redis.call('TIME') while true do local n = redis.call('TIME') if n[1] - t[1] > 30 then break end end return 1"
	go srv.Client(nil).Eval(ctx, script, nil)
	probe := srv.Client(nil)
	redistest.Eventually(t, "Redis answers BUSY", func() bool { return redis.HasErrorPrefix(probe.Ping(ctx).Err(), "BUSY") })
	s, err := New(Config{Redis: srv.Client(nil)})
	if s != nil {
		s.Close()
	}
	stillBusy := redis.HasErrorPrefix(probe.Ping(ctx).Err(), "BUSY")
	probe.Do(ctx, "SCRIPT", "KILL")
	if !stillBusy {
		t.Fatal("Redis was no longer busy after New: the test proved nothing")
	}
	if errors.Is(err, tierstore.ErrRefused) {
		t.Fatalf("New while Redis is BUSY: %v, want no refusal", err)
	}
}
