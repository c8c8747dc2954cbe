package benchmarks

import (
	"bytes"
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/benchmarks/internal/mixed"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/internal/testenv/workload"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/tiered"
)

// rueidisCache is rueidis with server-assisted client-side caching as a
// tierstore.Store: Get is DoCache (served from its local cache until
// Redis invalidates the key), Set and Delete plain commands. Get returns
// rueidis's cached bytes without copying them, as a caller of rueidis
// would read them.
type rueidisCache struct {
	c   rueidis.Client
	ttl time.Duration
}

func newRueidis(tb testing.TB, addr string) rueidisCache {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableRetry: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return rueidisCache{c: c, ttl: time.Minute}
}

func (r rueidisCache) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := r.c.DoCache(ctx, r.c.B().Get().Key(key).Cache(), r.ttl).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, tierstore.ErrNotFound
	}
	return v, err
}

func (r rueidisCache) Set(ctx context.Context, key string, v []byte, expiry time.Time) error {
	return r.c.Do(ctx, r.c.B().Set().Key(key).Value(rueidis.BinaryString(v)).Pxat(expiry).Build()).Error()
}

func (r rueidisCache) Delete(ctx context.Context, key string) error {
	return r.c.Do(ctx, r.c.B().Del().Key(key).Build()).Error()
}

// sessionAPI drives a Versioned store the way the session package does:
// reads with ViewVersion, writes with SetIf on the version this process
// last wrote or read (the workload serialises the writes of a key, so
// only the first write of each key after the preload conflicts).
type sessionAPI struct {
	s        *tiered.Store
	versions *sync.Map // key -> tierstore.Version, shared by the instances
}

// Get lends the value with ViewVersion, as the session manager reads a
// session (comparing the bytes in place with the session it decoded
// last), and copies out only the 8 bytes the workload checks.
func (a sessionAPI) Get(ctx context.Context, key string) ([]byte, error) {
	var stamp []byte
	err := a.s.ViewVersion(ctx, key, tierstore.NoVersion, func(b []byte, _ tierstore.Version, _ time.Time) error {
		if len(b) < 8 {
			return errors.New("sessionAPI: short value")
		}
		stamp = bytes.Clone(b[:8])
		return nil
	})
	return stamp, err
}

func (a sessionAPI) Set(ctx context.Context, key string, value []byte, expiry time.Time) error {
	want, _ := a.versions.Load(key)
	for range 3 {
		w, _ := want.(tierstore.Version)
		v, err := a.s.SetIf(ctx, key, value, expiry, w)
		if err == nil {
			a.versions.Store(key, v)
			return nil
		}
		if !errors.Is(err, tierstore.ErrConflict) {
			return err
		}
		_, have, _, err := a.s.GetVersion(ctx, key, w+1)
		if err != nil {
			return err
		}
		want = have
	}
	return errors.New("sessionAPI: conflicts on every attempt")
}

func (a sessionAPI) Delete(ctx context.Context, key string) error { return a.s.Delete(ctx, key) }

// Stats lets the benchmark count the store's Redis reads.
func (a sessionAPI) Stats() tiered.Stats { return a.s.Stats() }

// peerStacks returns two instances of each store compared, on the Redis
// at addr, with the workload's keys preloaded: tiered through Get and Set,
// tiered through the calls a session makes (ViewVersion, SetIf), rueidis
// DoCache, and the Redis-only store; each instance has read every key
// once, as instances of a service that has run a while would have.
func peerStacks(b *testing.B, srv *redistest.Server, addr string) []peerStack {
	ctx := context.Background()
	client := func() *goredis.Client {
		c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	newTier := func(prefix string) *tiered.Store {
		s, err := tiered.New(tiered.Config{Redis: client(), KeyPrefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		redistest.WaitLive(b, s)
		return s
	}
	newL2 := func() tierstore.Store {
		s, err := l2.New(l2.Config{Redis: client(), KeyPrefix: "peers-redis:"})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	versions := new(sync.Map)
	stacks := []peerStack{
		{"tiered", []tierstore.Store{newTier("peers-tiered:"), newTier("peers-tiered:")}},
		{"tiered-session", []tierstore.Store{
			sessionAPI{newTier("peers-session:"), versions}, sessionAPI{newTier("peers-session:"), versions},
		}},
		{"rueidis", []tierstore.Store{newRueidis(b, addr), newRueidis(b, addr)}},
		{"redis", []tierstore.Store{newL2(), newL2()}},
	}
	_ = srv
	for _, s := range stacks {
		if err := workload.Preload(ctx, s.instances[0], workload.Config{}); err != nil {
			b.Fatal(err)
		}
		if err := workload.Warm(ctx, s.instances, workload.Config{}); err != nil {
			b.Fatal(err)
		}
	}
	return stacks
}

type peerStack struct {
	name      string
	instances []tierstore.Store
}

// peerWorkloads are the three mixes of the comparison.
var peerWorkloads = []struct {
	name  string
	reads float64
}{
	{"writes", math.SmallestNonzeroFloat64}, // zero would mean the default
	{"mix95", 0.95},
	{"reads", 1},
}

// BenchmarkPeers compares tiered with rueidis's server-assisted
// client-side cache (DoCache) and the Redis-only store on one real
// redis-server: two instances of each, 16 goroutines (8 per instance),
// Zipf over 10k keys, 500-byte values, writes only, 95% reads and reads
// only, stale reads counted. One b.N iteration is one 2-second run.
func BenchmarkPeers(b *testing.B) {
	srv := redistest.Start(b)
	stacks := peerStacks(b, srv, srv.Addr())
	for _, w := range peerWorkloads {
		b.Run(w.name, func(b *testing.B) {
			for _, s := range stacks {
				b.Run(s.name, func(b *testing.B) {
					mixed.Run(b, srv, s.instances, workload.Config{ReadShare: w.reads, Concurrency: 16})
				})
			}
		})
	}
}

// BenchmarkPeersRemote is the 95/5 mix of BenchmarkPeers with Redis
// behind a proxy that delays each direction by 1 ms.
func BenchmarkPeersRemote(b *testing.B) {
	srv := redistest.Start(b)
	stacks := peerStacks(b, srv, redistest.Latency(b, srv.Addr(), time.Millisecond))
	for _, s := range stacks {
		b.Run(s.name, func(b *testing.B) {
			mixed.Run(b, srv, s.instances, workload.Config{Concurrency: 16})
		})
	}
}
