package tiered

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// heldPeer is an instance whose invalidations the test can hold: while
// held, its copies stay stale for as long as the test needs (its lease is
// long, so it stays Live).
type heldPeer struct {
	*Store
	inv redistest.Invalidations
}

func newHeldPeer(t *testing.T, c redis.UniversalClient) *heldPeer {
	p := &heldPeer{}
	p.Store = newStore(t, c, Config{HealthCheckInterval: time.Minute, OnInvalidate: p.inv.OnInvalidate})
	return p
}

// hold makes p apply no invalidation until release.
func (p *heldPeer) hold(t *testing.T, c *redis.Client) (release func()) {
	return p.inv.Hold(t, func(marker string) {
		_, _ = p.Get(context.Background(), marker) // followed, in per-key mode
		if err := c.Set(context.Background(), "test:"+marker, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
}

// cached makes p hold key in L1 and returns its version.
func (p *heldPeer) cached(t *testing.T, key string) tierstore.Version {
	t.Helper()
	for i := 0; ; i++ {
		hits := p.Stats().L1.Hits
		_, v, _, err := p.GetVersion(context.Background(), key, tierstore.NoVersion)
		if err != nil {
			t.Fatal(err)
		}
		if p.Stats().L1.Hits > hits {
			return v
		}
		if i == 1000 {
			t.Fatal("never served from L1")
		}
	}
}

// A caller that knows of a version newer than the instance's copy (a
// browser's cookie) gets it from Redis, while callers without one keep
// being served the copy until its invalidation arrives.
func TestGetVersionAtLeastReadsPastAnOlderCopy(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	a, b := newStore(t, srv.Client(nil), Config{}), newHeldPeer(t, srv.Client(nil))
	v1, err := a.SetIf(ctx, "k", []byte("one"), time.Time{}, tierstore.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	// Held first: the invalidation of A's first write could otherwise
	// drop B's copy after it served.
	release := b.hold(t, srv.Client(nil))
	if got := b.cached(t, "k"); got != v1 {
		t.Fatalf("B holds version %d, A wrote %d", got, v1)
	}
	v2, err := a.SetIf(ctx, "k", []byte("two"), time.Time{}, v1)
	if err != nil {
		t.Fatal(err)
	}
	if v, ver, _, _ := b.GetVersion(ctx, "k", tierstore.NoVersion); string(v) != "one" || ver != v1 {
		t.Fatalf("B serves %q at %d: its copy is not stale, the test does not test", v, ver)
	}
	if v, ver, _, err := b.GetVersion(ctx, "k", v2); string(v) != "two" || ver != v2 || err != nil {
		t.Fatalf("GetVersion(atLeast %d) = %q at %d, %v; want two at %d", v2, v, ver, err, v2)
	}
	release()
}

// A conditional write that conflicts drops the writer's stale copy, so
// that its next read, to merge, sees what Redis holds, even before the
// invalidation arrives; a failed DeleteIf too.
func TestConflictDropsTheStaleCopy(t *testing.T) {
	ctx := context.Background()
	for _, op := range []string{"SetIf", "DeleteIf"} {
		t.Run(op, func(t *testing.T) {
			srv := redistest.Start(t)
			a, b := newStore(t, srv.Client(nil), Config{}), newHeldPeer(t, srv.Client(nil))
			v1, err := a.SetIf(ctx, "k", []byte("one"), time.Time{}, tierstore.NoVersion)
			if err != nil {
				t.Fatal(err)
			}
			b.hold(t, srv.Client(nil))
			b.cached(t, "k")
			v2, err := a.SetIf(ctx, "k", []byte("two"), time.Time{}, v1)
			if err != nil {
				t.Fatal(err)
			}
			if op == "SetIf" {
				_, err = b.SetIf(ctx, "k", []byte("mine"), time.Time{}, v1)
			} else {
				err = b.DeleteIf(ctx, "k", v1)
			}
			if !errors.Is(err, tierstore.ErrConflict) {
				t.Fatalf("%s on a stale version: %v, want ErrConflict", op, err)
			}
			if v, ver, _, _ := b.GetVersion(ctx, "k", tierstore.NoVersion); string(v) != "two" || ver != v2 {
				t.Fatalf("after the conflict B reads %q at %d, want two at %d", v, ver, v2)
			}
		})
	}
}

// Values written by Set, by an older tierstore (an unversioned frame), read
// with a version derived from their bytes, and a conditional write on it
// succeeds: a rolling upgrade keeps its sessions.
func TestUnversionedValuesAreConditionallyWritable(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	a := newStore(t, srv.Client(nil), Config{})
	set(t, a, "k", "old")
	_, v, _, err := a.GetVersion(ctx, "k", tierstore.NoVersion)
	if err != nil || v == tierstore.NoVersion {
		t.Fatalf("GetVersion = %d, %v", v, err)
	}
	vr, err := a.l2.Read(ctx, "k", "")
	if err != nil || vr.Version != v {
		t.Fatalf("Redis holds version %d, L1 reports %d (%v)", vr.Version, v, err)
	}
	if _, err := a.SetIf(ctx, "k", []byte("new"), time.Time{}, v); err != nil {
		t.Fatalf("SetIf on the version of a plain Set: %v", err)
	}
}

// A version above the stored one (a forged cookie, a Redis restored from
// an older backup) costs one Redis read per GetVersion, not two: a read
// the caller started itself is what Redis holds.
func TestGetVersionAboveTheStoredOneReadsRedisOnce(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(nil), Config{})
	ctx := context.Background()
	refreshed := make(chan struct{}, 4)
	s.hooks().afterRefresh = func(string) { refreshed <- struct{}{} }
	v, err := s.SetIf(ctx, "k", []byte("v"), time.Time{}, tierstore.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	// Redis reports the save back (per-key mode: the script read the key
	// before writing it), and s reads it again once.
	<-refreshed
	for range 3 {
		before := s.Stats()
		_, got, _, err := s.GetVersion(ctx, "k", v+1000)
		if err != nil || got != v {
			t.Fatalf("GetVersion: version %d, %v; want the stored %d", got, err, v)
		}
		after := s.Stats()
		if n := after.Redis.Hits + after.Redis.Misses - before.Redis.Hits - before.Redis.Misses; n != 1 {
			t.Fatalf("GetVersion above the stored version read Redis %d times, want 1", n)
		}
	}
}
