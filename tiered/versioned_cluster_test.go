package tiered

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// A GetVersion(atLeast) that misses L1 and joins a shared
// read that began before the newer version was written is not served
// that read's older version: it reads Redis itself.
func TestGetVersionAtLeastDoesNotJoinAnOlderRead(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	a, b := newStore(t, srv.Client(nil), Config{}), newHeldPeer(t, srv.Client(nil))
	v1, err := a.SetIf(ctx, "k", []byte("one"), time.Time{}, tierstore.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	release := b.hold(t, srv.Client(nil)) // B's invalidation of A's next write is in flight
	defer release()

	paused, resume := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	b.hooks().afterL2Read = func(key string) {
		if key == "k" && first.CompareAndSwap(false, true) {
			close(paused)
			<-resume
		}
	}
	var joins atomic.Int32
	joined := make(chan struct{})
	b.hooks().afterFlightJoin = func(key string) {
		if key == "k" && joins.Add(1) == 2 {
			close(joined)
		}
	}
	// A reader without a version starts B's shared read, which gets "one".
	go func() { _, _, _, _ = b.GetVersion(ctx, "k", tierstore.NoVersion) }()
	<-paused
	// A writes "two"; the browser's cookie now says v2.
	v2, err := a.SetIf(ctx, "k", []byte("two"), time.Time{}, v1)
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		v   string
		ver tierstore.Version
		err error
	}
	got := make(chan res, 1)
	go func() {
		v, ver, _, err := b.GetVersion(ctx, "k", v2)
		got <- res{string(v), ver, err}
	}()
	<-joined
	close(resume)
	r := <-got
	if r.err != nil || r.ver < v2 || r.v != "two" {
		t.Fatalf("GetVersion(atLeast %d) = %q at %d, %v: served a version older than atLeast (joined a read that began before it was written)", v2, r.v, r.ver, r.err)
	}
}

// Conditional writes follow a moved slot too (MOVED on the registration
// connection, resent through the Cluster client), keeping their condition.
func TestClusterConditionalWritesFollowAMovedSlot(t *testing.T) {
	ctx := context.Background()
	cluster := redistest.StartCluster(t, 3)
	cc := cluster.Client(nil)
	s := newStore(t, cluster.Client(nil), Config{HealthCheckInterval: time.Minute})
	moveSlot(t, cluster, cc, "test:k")
	v, err := s.SetIf(ctx, "k", []byte("v"), time.Time{}, tierstore.NoVersion)
	if err != nil {
		t.Fatalf("SetIf after the slot moved: %v", err)
	}
	if _, err := s.SetIf(ctx, "k", []byte("w"), time.Time{}, tierstore.NoVersion); !errors.Is(err, tierstore.ErrConflict) {
		t.Fatalf("second SetIf(absent): %v, want ErrConflict", err)
	}
	if b, got, _, err := s.GetVersion(ctx, "k", v); err != nil || got != v || string(b) != "v" {
		t.Fatalf("GetVersion = %q at %d, %v", b, got, err)
	}
	if err := s.DeleteIf(ctx, "k", v); err != nil {
		t.Fatalf("DeleteIf: %v", err)
	}
}
