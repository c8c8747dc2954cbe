package tiered

import (
	"context"
	"testing"
	"time"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// Through a Sentinel failover client: writes, reads and invalidations.
func TestSentinelClientInvalidatesPeers(t *testing.T) {
	sen := redistest.StartSentinel(t)
	a := newStore(t, sen.Client(), Config{})
	b := newStore(t, sen.Client(), Config{})
	set(t, a, "k", "v1")
	if got := cached(t, b, "k"); got != "v1" {
		t.Fatalf("B cached %q", got)
	}
	redistest.AfterGrowth(t, "B receives the invalidation", received(b), func() { set(t, a, "k", "v2") })
	if got := get(t, b, "k"); got != "v2" {
		t.Fatalf("B read %q, want v2", got)
	}
	if err := a.Delete(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, "B drops the deleted key", func() bool { return get(t, b, "k") == "<not found>" })
}

// A failover moves writes and the subscription to the promoted replica; no
// instance may keep serving a value replaced after it.
func TestSentinelFailoverKeepsInstancesCoherent(t *testing.T) {
	sen := redistest.StartSentinel(t)
	a := newStore(t, sen.Client(), Config{})
	b := newStore(t, sen.Client(), Config{})
	set(t, a, "k", "before")
	cached(t, b, "k")
	sen.Failover()
	redistest.Eventually(t, "A writes through the new master", func() bool {
		return a.Set(context.Background(), "k", []byte("after"), time.Now().Add(time.Hour)) == nil
	})
	redistest.Eventually(t, "B reads the value written after the failover", func() bool {
		v, err := b.Get(context.Background(), "k")
		return err == nil && string(v) == "after"
	})
	// And invalidations flow again.
	redistest.AfterGrowth(t, "B receives a post-failover invalidation", received(b), func() { set(t, a, "k", "again") })
	if got := get(t, b, "k"); got != "again" {
		t.Fatalf("B read %q, want again", got)
	}
}
