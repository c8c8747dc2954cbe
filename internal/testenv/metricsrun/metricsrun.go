// Package metricsrun is the known sequence the metrics exporters'
// tests (contrib/otel, contrib/prometheus) run on a real redis-server, so
// that each asserts the same exact counts. A test harness, not mechanism.
package metricsrun

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/tiered"
)

// Interval, the stores' HealthCheckInterval, is long, so that no lease
// runs out under load: a gap of its own would change the expected counts.
const Interval = 3 * time.Second

// NewStore returns a Live store on srv, closed when the test ends.
func NewStore(t testing.TB, srv *redistest.Server, prefix string) *tiered.Store {
	t.Helper()
	s, err := tiered.New(tiered.Config{Redis: srv.Client(nil), KeyPrefix: prefix, HealthCheckInterval: Interval})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	redistest.WaitLive(t, s)
	return s
}

// Run runs the known sequence on a store a, the one observed, with a
// peer b, on one real redis-server, with the keys keys[0] (read) and
// keys[1] (absent): a miss of the absent key, a miss that fills, three
// hits, a peer's write (one invalidation), a read of it, the
// subscriptions killed (gaps: connection lost, resubscribed,
// re-registered) and a stale read after it; then p.Checkpoint runs,
// with a quiescent and Live; then an outage (redis-server killed): a
// bypassed read and a write, both unavailable; then p.Outage runs.
func Run(t testing.TB, keys [2]string, p Phases) {
	ctx := context.Background()
	srv := redistest.Start(t)
	a, b := NewStore(t, srv, "m:"), NewStore(t, srv, "m:")
	if p.Start != nil {
		p.Start(a)
	}
	k, absent := keys[0], keys[1]
	filled := func(n uint64) {
		redistest.Eventually(t, "L1 holds the read", func() bool { return a.Stats().L1.Entries == n })
	}
	if _, err := a.Get(ctx, absent); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatalf("Get of an absent key: %v", err)
	}
	if err := b.Set(ctx, k, []byte("v1"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	mustGet := func(want string) {
		t.Helper()
		if v, err := a.Get(ctx, k); err != nil || string(v) != want {
			t.Fatalf("Get: %q, %v; want %q", v, err, want)
		}
	}
	mustGet("v1")
	filled(1)
	for range 3 {
		mustGet("v1")
	}
	redistest.AfterGrowth(t, "a hears the peer's write", func() uint64 { return a.Stats().Invalidation.Received }, func() {
		if err := b.Set(ctx, k, []byte("v2"), time.Time{}); err != nil {
			t.Fatal(err)
		}
	})
	filled(0)
	mustGet("v2")
	filled(1)
	redistest.AfterGrowth(t, "a resubscribes", func() uint64 { return a.Stats().Invalidation.Gaps }, func() {
		srv.Do("CLIENT", "KILL", "TYPE", "pubsub")
	})
	redistest.WaitLive(t, a)
	mustGet("v2") // the entry from before the gap: stale
	filled(1)
	p.Checkpoint(a)

	srv.Kill()
	redistest.Eventually(t, "a is not live", func() bool { return !a.Live() })
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := a.Get(short, k); !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("Get during the outage: %v", err)
	}
	if err := a.Set(short, k, []byte("v3"), time.Time{}); !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("Set during the outage: %v", err)
	}
	p.Outage(a)
}

// Phases are the points where Run hands the observed store to the test:
// Start (optional) once it is Live, before the sequence.
type Phases struct {
	Start, Checkpoint, Outage func(a *tiered.Store)
}
