package tiered

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/storetest"
)

func TestConformanceRealCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	n := 0
	storetest.Run(t, func(t *testing.T) tierstore.Store {
		n++ // a fresh prefix per subtest instead of flushing every master
		return newStore(t, cluster.Client(nil), Config{KeyPrefix: fmt.Sprintf("c%d:", n)})
	})
}

// Writes land on the node owning each key's slot; their invalidations must
// reach instances subscribed through any node.
func TestClusterInvalidationsReachEveryInstance(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	a := newStore(t, cluster.Client(nil), Config{})
	b := newStore(t, cluster.Client(nil), Config{})
	keys := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"} // spread over the nodes
	for _, k := range keys {
		set(t, a, k, "v1")
		cached(t, b, k)
	}
	for _, k := range keys {
		set(t, a, k, "v2")
	}
	// With L1TTL at its default of a minute, only the invalidations can
	// make B see v2 within eventually's 10s.
	for _, k := range keys {
		redistest.Eventually(t, "B reads the new "+k, func() bool { return get(t, b, k) == "v2" })
	}
	if err := a.Delete(context.Background(), "alpha"); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, "B drops the deleted key", func() bool { return get(t, b, "alpha") == "<not found>" })
}

// keysOnEveryMaster returns n keys per master of c (by slot owner).
func keysOnEveryMaster(t *testing.T, cc *redis.ClusterClient, n int) []string {
	t.Helper()
	ctx := context.Background()
	per := map[string]int{}
	var keys []string
	for i := 0; len(keys) < n*3; i++ {
		k := fmt.Sprintf("key%d", i)
		node, err := cc.MasterForKey(ctx, "test:"+k)
		if err != nil {
			t.Fatal(err)
		}
		if addr := node.Options().Addr; per[addr] < n {
			per[addr]++
			keys = append(keys, k)
		}
	}
	return keys
}

// Changes made outside tiered, on whichever master owns the key, reach
// both instances; each instance hears each change once, from that master
// alone.
func TestClusterChangesByAnyoneReachEveryInstance(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	cc := cluster.Client(nil)
	ctx := context.Background()
	a := newStore(t, cluster.Client(nil), Config{})
	b := newStore(t, cluster.Client(nil), Config{})
	keys := keysOnEveryMaster(t, cc, 2)
	for _, k := range keys {
		set(t, a, k, "v1")
		cached(t, a, k)
		cached(t, b, k)
	}
	// B hears each of A's writes once, from the key's master; the masters'
	// reports are not ordered with each other, so wait for all of them.
	held := b.Stats().Invalidation.Received
	for _, k := range keys {
		set(t, a, k, "v2")
	}
	redistest.Eventually(t, "B hears A's writes", func() bool { return b.Stats().Invalidation.Received >= held+uint64(len(keys)) })
	for _, k := range keys {
		// Its own writes reported back, A reads them again.
		redistest.Eventually(t, "A serves its own write of "+k, func() bool { return lookupL1(a, k) == "v2" })
	}
	if got := b.Stats().Invalidation.Received - held; got != uint64(len(keys)) {
		t.Fatalf("B heard %d invalidations for A's %d writes", got, len(keys))
	}
	for _, k := range keys {
		cached(t, b, k)
	}
	before := b.Stats().Invalidation.Received
	for _, k := range keys {
		if err := cc.Del(ctx, "test:"+k).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*Store{a, b} {
		for _, k := range keys {
			redistest.Eventually(t, k+" is gone everywhere", func() bool { return get(t, s, k) == "<not found>" })
		}
	}
	// One message per change, whatever the number of masters (B holds
	// every key; A's own reads refilled nothing it was told of twice).
	if got := b.Stats().Invalidation.Received - before; got != uint64(len(keys)) {
		t.Fatalf("B heard %d invalidations for %d deletes", got, len(keys))
	}
	// A flush of one master flushes both instances.
	set(t, a, keys[0], "v2")
	cached(t, b, keys[0])
	owner, err := cc.MasterForKey(ctx, "test:"+keys[0])
	if err != nil {
		t.Fatal(err)
	}
	redistest.AfterGrowth(t, "B flushes", func() uint64 { return b.Stats().Invalidation.Gaps }, func() {
		if err := owner.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	})
	if got := get(t, b, keys[0]); got != "<not found>" {
		t.Fatalf("B read %q after the master was flushed", got)
	}
}

// A master killed: instances stop serving from L1 (they cannot hear that
// master's changes) and serve again, coherently, once it is back.
func TestClusterMasterKilledIsAGap(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	cc := cluster.Client(nil)
	ctx := context.Background()
	a := newStore(t, cluster.Client(nil), Config{})
	b := newStore(t, cluster.Client(nil), Config{})
	keys := keysOnEveryMaster(t, cc, 1)
	for _, k := range keys {
		set(t, a, k, "v1")
		cached(t, b, k)
	}
	cluster.Nodes[0].Kill()
	redistest.Eventually(t, "B stops serving from L1", func() bool { return !b.Live() })
	misses := b.Stats().L1.Misses
	_, _ = b.Get(ctx, keys[1])
	if b.Stats().L1.Misses != misses+1 {
		t.Fatal("B served from L1 while a master was down")
	}
	cluster.Nodes[0].Restart()
	redistest.WaitLive(t, a, b)
	for _, k := range keys {
		redistest.Eventually(t, "A writes "+k+" again", func() bool {
			return a.Set(ctx, k, []byte("v2"), time.Time{}) == nil
		})
	}
	for _, k := range keys {
		redistest.Eventually(t, "B reads the new "+k, func() bool { v, _ := b.Get(ctx, k); return string(v) == "v2" })
	}
}

// moveSlot gives the (empty) slot of key to another master, on every node,
// behind the back of the stores' clients.
func moveSlot(t *testing.T, cluster *redistest.Cluster, cc *redis.ClusterClient, key string) {
	t.Helper()
	ctx := context.Background()
	slot := cc.ClusterKeySlot(ctx, key).Val()
	owner, err := cc.MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var dest string
	for _, n := range cluster.Nodes {
		if n.Addr() != owner.Options().Addr {
			dest = n.Do("CLUSTER", "MYID").(string)
			break
		}
	}
	for _, n := range cluster.Nodes {
		n.Do("CLUSTER", "SETSLOT", slot, "NODE", dest)
	}
}

// Resharding: a write to a key whose slot has moved goes first to the old
// owner's registration connection, which answers MOVED; it is sent again
// through the Cluster client, which follows it.
func TestClusterWriteFollowsAMovedSlot(t *testing.T) {
	ctx := context.Background()
	cluster := redistest.StartCluster(t, 3)
	cc := cluster.Client(nil)
	// A long interval: the feed's own topology refresh does not run
	// between the move and the write.
	s := newStore(t, cluster.Client(nil), Config{HealthCheckInterval: time.Minute})
	moveSlot(t, cluster, cc, "test:k")
	if err := s.Set(ctx, "k", []byte("v"), time.Time{}); err != nil {
		t.Fatalf("Set after the slot moved: %v", err)
	}
}

// In per-key mode, what a call brought from a master through the Cluster
// client (a write or read redirected after its slot moved) is not cached:
// no registration of this instance follows the key on that master, so its
// next change there would not be reported. Once the instance knows the
// new owner, it reads and follows the key there, and a peer's change
// reaches it.
func TestClusterMovedSlotStaysCoherent(t *testing.T) {
	ctx := context.Background()
	cluster := redistest.StartCluster(t, 3)
	cc := cluster.Client(nil)
	a := newStore(t, cluster.Client(nil), Config{HealthCheckInterval: time.Minute})
	b := newStore(t, cluster.Client(nil), Config{HealthCheckInterval: time.Minute})
	moveSlot(t, cluster, cc, "test:k")
	set(t, a, "k", "v1") // redirected: MOVED, then through the Cluster client
	redistest.Eventually(t, "A follows the key on its new master", func() bool {
		_, _ = a.Get(ctx, "k")
		return lookupL1(a, "k") == "v1"
	})
	set(t, b, "k", "v2")
	redistest.Eventually(t, "A reads B's change", func() bool { return get(t, a, "k") == "v2" })
	if err := a.Set(ctx, "k", []byte("v3"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	set(t, b, "k", "v4")
	redistest.Eventually(t, "A reads B's change after its own write", func() bool { return get(t, a, "k") == "v4" })
}

// A write that races with its master's shard being replaced (closed after
// Run looked it up) is sent through the Cluster client, not failed with
// ErrClosed on an open Store. Simulated by closing that shard's tracker,
// as the topology watcher does.
func TestClusterWriteToAReplacedShardIsNotErrClosed(t *testing.T) {
	ctx := context.Background()
	cluster := redistest.StartCluster(t, 3)
	cc := cluster.Client(nil)
	s := newStore(t, cluster.Client(nil), Config{})
	cf := s.src.(*clusterSource)
	owner, err := cc.MasterForKey(ctx, "test:k")
	if err != nil {
		t.Fatal(err)
	}
	cf.mu.Lock()
	sh := cf.shards[owner.Options().Addr]
	cf.mu.Unlock()
	_ = sh.tracker.Close()
	err = s.Set(ctx, "k", []byte("v"), time.Time{})
	if errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("Set on an open Store: %v (ErrClosed)", err)
	}
}

// A health-check interval too short for a lease is refused by New on a
// Cluster too, where each master's subscription starts only later.
func TestClusterTinyHealthCheckIntervalIsAnError(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	if s, err := New(Config{Redis: cluster.Client(nil), HealthCheckInterval: time.Millisecond}); err == nil {
		s.Close()
		t.Fatal("New accepted a 1ms HealthCheckInterval")
	}
}
