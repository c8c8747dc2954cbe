package l2_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/storetest"
)

func newStore(t testing.TB, rdb redis.UniversalClient) *l2.Store {
	t.Helper()
	s, err := l2.New(l2.Config{Redis: rdb, KeyPrefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformanceMiniredis(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tierstore.Store {
		_, c := redistest.Miniredis(t)
		return newStore(t, c)
	}, storetest.FrozenTTLs)
}

func TestConformanceRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(nil)
	storetest.Run(t, func(t *testing.T) tierstore.Store {
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		return newStore(t, c)
	})
}

func TestBadInputRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(nil)
	storetest.RunBadInput(t, func(t *testing.T) tierstore.Store {
		c.FlushAll(context.Background())
		return newStore(t, c)
	}, redistest.RawWriter(c, "test:"))
}

func TestKeysCarryPrefixAndRedisExpiry(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(nil)
	s := newStore(t, c)
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("v"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ttl := c.PTTL(ctx, "test:k").Val()
	if ttl <= 50*time.Second || ttl > time.Minute {
		t.Fatalf("PTTL(test:k) = %v, want about 1m", ttl)
	}
	_, _, exp, err := s.GetVersion(ctx, "k", tierstore.NoVersion)
	if err != nil || time.Until(exp) > time.Minute || time.Until(exp) < 50*time.Second {
		t.Fatalf("GetVersion expiry in %v, %v; want about 1m", time.Until(exp), err)
	}
}

func TestValueExpiresInRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(nil))
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("v"), time.Now().Add(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("Get before expiry: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.Get(ctx, "k")
		if errors.Is(err, tierstore.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("value still readable long after its expiry: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Toucher promises ErrNotFound for an absent key, also when the new expiry
// is already past (which deletes instead of touching).
func TestTouchOfAbsentKeyIsNotFoundWhateverTheExpiry(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(nil))
	for _, expiry := range []time.Time{time.Now().Add(time.Hour), time.Now().Add(-time.Second), {}} {
		if err := s.Touch(context.Background(), "absent", expiry); !errors.Is(err, tierstore.ErrNotFound) {
			t.Fatalf("Touch(absent, %v) = %v, want ErrNotFound", expiry, err)
		}
	}
}

func TestCorruptBytesAreReportedNotServed(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(nil)
	s := newStore(t, c)
	ctx := context.Background()
	if err := s.Set(ctx, "good", []byte("a value"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	framed := c.Get(ctx, "test:good").Val()
	cases := map[string]func(){
		"foreign string": func() { c.Set(ctx, "test:k", "plain text", 0) },
		"empty":          func() { c.Set(ctx, "test:k", "", 0) },
		"truncated":      func() { c.Set(ctx, "test:k", framed[:len(framed)-2], 0) },
		"bit flip":       func() { c.Set(ctx, "test:k", framed[:len(framed)-1]+"X", 0) },
		"header only":    func() { c.Set(ctx, "test:k", framed[:5], 0) },
		"list":           func() { c.Del(ctx, "test:k"); c.RPush(ctx, "test:k", "a") },
	}
	for name, put := range cases {
		t.Run(name, func(t *testing.T) {
			c.Del(ctx, "test:k")
			put()
			v, err := s.Get(ctx, "k")
			if !errors.Is(err, tierstore.ErrCorrupt) {
				t.Fatalf("Get = %q, %v; want ErrCorrupt", v, err)
			}
			if strings.Contains(err.Error(), "test:k ") || !strings.Contains(err.Error(), "test:key#") {
				t.Fatalf("error %q should name the prefix and a key hash, not the key", err)
			}
		})
	}
}

func TestRedisDownIsUnavailableThenRecovers(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(&redis.Options{MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	s := newStore(t, c)
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("Get with Redis down = %v, want ErrUnavailable", err)
	}
	if err := s.Set(ctx, "k", []byte("w"), time.Time{}); !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("Set with Redis down = %v, want ErrUnavailable", err)
	}
	srv.Restart() // empty dataset, same port
	if err := s.Set(ctx, "k", []byte("after"), time.Time{}); err != nil {
		t.Fatalf("Set after restart: %v", err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "after" {
		t.Fatalf("Get after restart = %q, %v", v, err)
	}
}

func TestDeadlineIsHonoured(t *testing.T) {
	srv := redistest.Start(t)
	// go-redis applies context deadlines to socket I/O only when asked to.
	s := newStore(t, srv.Client(&redis.Options{ContextTimeoutEnabled: true}))
	srv.Do("CLIENT", "PAUSE", "5000", "ALL")
	getsPastDeadlinesAreUnavailable(t, s, 20)
}

// getsPastDeadlinesAreUnavailable makes n Gets with 5 ms deadlines against
// a server that does not answer. The socket's deadline and the context's
// fire together, and either may be seen first; the error must be the same
// (about one call in three lacked DeadlineExceeded when only ctx.Err() was
// consulted).
func getsPastDeadlinesAreUnavailable(t *testing.T, s *l2.Store, n int) {
	t.Helper()
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_, err := s.Get(ctx, "k")
		cancel()
		if !errors.Is(err, tierstore.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get = %v, want ErrUnavailable and context.DeadlineExceeded", err)
		}
	}
}

// A request deadline that expires while Redis does not answer is an
// outage (ErrUnavailable, so handlers answer 503), whatever go-redis was
// doing: dialling a closed port, or waiting on a server that accepted
// the connection and never answers. A cancelled request is not.
func TestDeadAndSilentRedisAreUnavailable(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	closedAddr := redistest.RefusedAddr(t)
	for name, addr := range map[string]string{"silent server": silent.Addr().String(), "closed port": closedAddr} {
		t.Run(name, func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
			defer c.Close()
			s := newStore(t, c)
			getsPastDeadlinesAreUnavailable(t, s, 30)
			cctx, ccancel := context.WithCancel(context.Background())
			ccancel()
			if err := s.Set(cctx, "k", []byte("v"), time.Time{}); !errors.Is(err, context.Canceled) || errors.Is(err, tierstore.ErrUnavailable) {
				t.Fatalf("Set with a cancelled context = %v, want context.Canceled alone", err)
			}
		})
	}
}

// A misconfiguration is not an outage: callers retry ErrUnavailable, and
// must not retry these.
func TestRefusedCommandsAreErrRefusedNotUnavailable(t *testing.T) {
	ctx := context.Background()
	t.Run("no write permission", func(t *testing.T) {
		srv := redistest.Start(t)
		srv.Do("ACL", "SETUSER", "reader", "on", ">secret", "~*", "+@read", "+@connection", "+info")
		s := newStore(t, srv.Client(&redis.Options{Username: "reader", Password: "secret"}))
		err := s.Set(ctx, "k", []byte("v"), time.Time{})
		if !errors.Is(err, tierstore.ErrRefused) || errors.Is(err, tierstore.ErrUnavailable) {
			t.Fatalf("Set without permission = %v, want ErrRefused", err)
		}
		if !strings.Contains(err.Error(), "NOPERM") {
			t.Fatalf("Set without permission = %v, want Redis's NOPERM reply in it", err)
		}
	})
	t.Run("scripting disabled", func(t *testing.T) {
		srv := redistest.Start(t, "--rename-command", "EVALSHA", "renamed-evalsha", "--rename-command", "EVAL", "renamed-eval")
		s := newStore(t, srv.Client(nil))
		if err := s.Set(ctx, "k", []byte("v"), time.Time{}); err != nil {
			t.Fatalf("Set needs no script: %v", err)
		}
		if err := s.Touch(ctx, "k", time.Time{}); !errors.Is(err, tierstore.ErrRefused) {
			t.Fatalf("Touch without EVAL = %v, want ErrRefused", err)
		}
	})
	t.Run("out of memory", func(t *testing.T) {
		srv := redistest.Start(t)
		srv.Do("CONFIG", "SET", "maxmemory-policy", "noeviction")
		srv.Do("CONFIG", "SET", "maxmemory", "1")
		s := newStore(t, srv.Client(nil))
		if err := s.Set(ctx, "k", []byte("v"), time.Time{}); !errors.Is(err, tierstore.ErrRefused) || !strings.Contains(err.Error(), "OOM") {
			t.Fatalf("Set over maxmemory = %v, want ErrRefused with OOM", err)
		}
	})
}
