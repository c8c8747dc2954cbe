// Package tieredpair starts two instances of an app's store, A and B,
// each a tiered.Store with its own connections, on one real redis-server,
// for the framework adapters' tests: what one instance does, the other
// must see, and what the tests assert after an invalidation they wait
// for, not after a sleep.
package tieredpair

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/tiered"
)

// Pair is A and B on one redis-server, and Truth, which reads Redis
// itself (no in-process cache), all with the same key prefix.
type Pair struct {
	Server *redistest.Server
	A, B   *tiered.Store
	Truth  *l2.Store

	watchA, watchB redistest.Markers
}

// Start starts a redis-server and A, B and Truth on it with this key
// prefix, all closed when the test ends; it returns once A and B are
// live (their L1s serve).
func Start(t testing.TB, prefix string) *Pair {
	t.Helper()
	p := &Pair{Server: redistest.Start(t)}
	open := func(w *redistest.Markers) *tiered.Store {
		s, err := tiered.New(tiered.Config{
			Redis:        p.Server.Client(&redis.Options{ContextTimeoutEnabled: true}),
			KeyPrefix:    prefix,
			OnInvalidate: w.OnInvalidate,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	p.A, p.B = open(&p.watchA), open(&p.watchB)
	redistest.WaitLive(t, p.A, p.B)
	var err error
	if p.Truth, err = l2.New(l2.Config{Redis: p.Server.Client(nil), KeyPrefix: prefix}); err != nil {
		t.Fatal(err)
	}
	return p
}

// Settle returns once A and B have both applied the invalidations of
// every write made before the call: a copy either holds in its L1 is
// then Redis's.
func (p *Pair) Settle(t testing.TB) {
	t.Helper()
	p.watchB.CaughtUp(t, p.B, p.A)
	p.watchA.CaughtUp(t, p.A, p.B)
}
