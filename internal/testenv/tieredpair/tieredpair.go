// Package tieredpair starts two instances of an app's store, A and B,
// each a tiered.Store with its own connections, on one real redis-server,
// for the framework adapters' tests: what one instance does, the other
// must see, and what the tests assert after an invalidation they wait
// for, not after a sleep.
package tieredpair

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

	watchA, watchB markers
	seq            atomic.Int64
}

// Start starts a redis-server and A, B and Truth on it with this key
// prefix, all closed when the test ends; it returns once A and B are
// live (their L1s serve).
func Start(t testing.TB, prefix string) *Pair {
	t.Helper()
	p := &Pair{Server: redistest.Start(t)}
	open := func(w *markers) *tiered.Store {
		s, err := tiered.New(tiered.Config{
			Redis:        p.Server.Client(&redis.Options{ContextTimeoutEnabled: true}),
			KeyPrefix:    prefix,
			OnInvalidate: w.onInvalidate,
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
	p.marker(t, p.B, &p.watchB, p.A)
	p.marker(t, p.A, &p.watchA, p.B)
}

// marker writes, through writer, a key of no session that reader read
// first (so that per-key tracking reports it to reader), and waits until
// reader applied its invalidation: Redis reports the changes of one
// reader's keys in order, so every write before it was applied too.
func (p *Pair) marker(t testing.TB, reader *tiered.Store, w *markers, writer *tiered.Store) {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("tieredpair-marker-%d", p.seq.Add(1))
	ch := make(chan struct{})
	w.m.Store(key, ch)
	_, _ = reader.Get(ctx, key) // a miss, followed by reader
	if err := writer.Set(ctx, key, []byte("x"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second): // a guard against a hung test, not a timing assumption
		t.Fatalf("timed out waiting for an instance to apply the invalidation of %s", key)
	}
}

// markers closes a marker's channel when its instance applies the
// marker's invalidation.
type markers struct{ m sync.Map } // key -> chan struct{}

func (w *markers) onInvalidate(key string) {
	if ch, ok := w.m.LoadAndDelete(key); ok {
		close(ch.(chan struct{}))
	}
}
