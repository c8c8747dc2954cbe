// Package tiered is tierstore's main type: an in-process L1 cache in front
// of Redis, kept coherent across instances by invalidations that Redis
// sends for every change to the store's keys, whoever makes it (see
// package invalidation).
//
// Redis is the source of truth: a write returns only after Redis accepted
// it. Reads are served from memory while the entry's validity stamp is
// current and the invalidation subscription holds its health-check lease;
// see docs/consistency.md.
package tiered

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/bus"
	"github.com/tierstore/tierstore/internal/cache"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/statelog"
	"github.com/tierstore/tierstore/internal/tracking"
)

// Defaults for zero Config fields.
const (
	DefaultL1TTL                = time.Minute
	DefaultL1MaxBytes           = cache.DefaultMaxBytes // 64 MiB
	DefaultHealthCheckInterval  = bus.DefaultHealthCheckInterval
	DefaultAccessReportInterval = time.Second
)

// maxSharedRead bounds a Redis read shared by concurrent misses when the
// caller that started it has no deadline: the read outlives that caller's
// cancellation (the others still wait for it), so it needs a bound of its
// own, or one hung read would pin every later reader of the key.
const maxSharedRead = 10 * time.Second

// ambiguousWriteWindow is how long after a failed write this instance
// honours its own invalidation messages. A write that failed on a timeout
// may still have been applied by Redis; its message then reaches this
// instance too, and must drop any value read before the write landed.
const ambiguousWriteWindow = 30 * time.Second

// Config configures a Store. Zero fields take the documented defaults.
type Config struct {
	// Redis is the client, required: *redis.Client, a Sentinel failover
	// client or *redis.ClusterClient (reading from masters). The Store
	// never closes it. By default, reads, writes and the invalidation
	// subscription go through connections of the Store's own (one per
	// master for a Cluster), made from its options (address,
	// credentials, database, TLS, timeouts, OnConnect), so hooks added
	// with AddHook do not see them; reads and writes each travel on one
	// connection, pipelined, and their dials are bounded whatever the
	// client's Dialer. With OwnWritesOnly, reads and writes go
	// through the client itself.
	Redis redis.UniversalClient
	// KeyPrefix is prepended to every key in Redis. Default "tierstore:".
	// Instances share data (and invalidations) only if they share it.
	KeyPrefix string
	// Channel is the invalidation pub/sub channel. Default
	// "tierstore:invalidate:" + KeyPrefix.
	Channel string
	// L1TTL is the longest an entry stays in memory, whatever its expiry.
	// Default DefaultL1TTL (1m).
	L1TTL time.Duration
	// L1MaxBytes bounds the live memory held by the L1 cache's entries
	// (key + value + a fixed overhead per entry). RSS is larger by
	// the garbage collector's headroom: see docs/operations.md on
	// GOMEMLIMIT. Default DefaultL1MaxBytes (64 MiB).
	L1MaxBytes int64
	// MaxValueBytes is the largest value Set accepts. Default
	// tierstore.DefaultMaxValueBytes (1 MiB).
	MaxValueBytes int
	// HealthCheckInterval bounds staleness when invalidations may have been
	// lost: L1 serves only while a heartbeat made within this interval
	// has come back on the subscription, proving that every change made
	// before it has been reported (see docs/consistency.md). Heartbeats
	// go out four times per interval. Default DefaultHealthCheckInterval
	// (1s); at least 4ms.
	HealthCheckInterval time.Duration
	// AccessReportInterval is how often, at most, a key served from L1 is
	// reported to Redis as used (a batched TOUCH), so that an LRU or LFU
	// maxmemory-policy does not take the keys read most, which L1 keeps
	// from reaching Redis, for the idlest. Nothing is sent while the
	// policy is another one (noeviction, the default, or random or TTL
	// eviction). Redis's LRU clock counts whole seconds, which is why the
	// default is DefaultAccessReportInterval (1s). Negative: never report.
	AccessReportInterval time.Duration
	// OwnWritesOnly turns off server-assisted invalidation. By default
	// every change to a key under KeyPrefix reaches every instance,
	// whoever makes it (another program, an operator's DEL, expiry,
	// eviction, FLUSHDB, a resync): Redis reports them (CLIENT TRACKING,
	// see docs/consistency.md). With OwnWritesOnly, only writes through
	// tiered stores publish invalidations: a change made any other way,
	// including through l2.Store, is seen by an instance holding the key
	// only when its L1 entry ends (L1TTL). Set it for a Redis that
	// refuses CLIENT TRACKING (some managed services; New then fails
	// with tierstore.ErrRefused) or has no tracking (miniredis).
	OwnWritesOnly bool
	// Logger, if set, records the store's state changes: Live gained and
	// lost (with the cause), gaps and why, re-registrations, refused
	// permissions, replaced subscriptions. At most one record per kind
	// of change per second (the next says how many were left out), never
	// one on the hit path, never a key (keys appear as the prefix and a
	// hash), a session ID or a value. Default nil: silent.
	Logger *slog.Logger
	// OnInvalidate, if set, is called after a peer's invalidation of key
	// has been applied to L1: for tracing and metrics. It runs on the
	// subscription's goroutine, in message order, so it must be quick: a
	// slow OnInvalidate delays every later invalidation (and, past Redis's
	// output-buffer limit for pub/sub clients, gets the subscription cut,
	// which flushes L1). It must not call Close, which waits for that
	// goroutine to end.
	OnInvalidate func(key string)
}

// Store is the tiered tierstore.Store. It is safe for concurrent use; Close
// it to stop its subscription goroutines.
type Store struct {
	conns     *rediskv.Conns        // the store's own connections
	ownClient redis.UniversalClient // see own; nil until needed
	closers   []func() error        // the parts New made, closed in reverse
	log       *statelog.Logger      // nil: silent
	l1        *cache.Cache
	l2        *rediskv.Client
	bus       *bus.Bus          // the bus of a single node or Sentinel client; nil for a Cluster's tracking
	feed      feed              // where invalidations come from: bus, or a clusterFeed
	tracker   *tracking.Tracker // nil with OwnWritesOnly or a Cluster
	tracked   bool              // Redis reports changes (not OwnWritesOnly)
	epochKey  string            // with tracker: rediskv.EpochKey
	access    *accessReporter   // nil if AccessReportInterval < 0

	flightMu     sync.Mutex
	flights      map[flightKey]*flight
	batchedReads bool // reads go through the store's own read connections
	closed       atomic.Bool
	done         chan struct{} // closed by Close

	// ownEchoesUntil (unix ns): until then, this instance's own messages
	// invalidate too (see ambiguousWriteWindow).
	ownEchoesUntil atomic.Int64

	onInvalidate func(key string)

	bypassed, l2Hits, l2Misses, errs atomic.Uint64
	sent, received, ignoredOwn       atomic.Uint64

	// Test hooks: beforeL2Read runs in a shared read before it asks
	// Redis; afterL2Read between the Redis reply and the L1 fill of a
	// miss; afterL2Write between a successful Redis write and its L1
	// fill.
	// afterFlightJoin runs once a miss has joined or started its flight.
	// beforeL2Read gets the context the read will run with.
	beforeL2Read                               func(ctx context.Context, key string)
	afterL2Read, afterL2Write, afterFlightJoin func(key string)
}

var (
	_ tierstore.Store         = (*Store)(nil)
	_ tierstore.Toucher       = (*Store)(nil)
	_ tierstore.Viewer        = (*Store)(nil)
	_ tierstore.ExpiryReader  = (*Store)(nil)
	_ tierstore.Lister        = (*Store)(nil)
	_ tierstore.Versioned     = (*Store)(nil)
	_ tierstore.VersionViewer = (*Store)(nil)
)

// New returns a Store and starts its invalidation subscription. Redis need
// not be reachable yet: until the store is Live, reads go to Redis and
// nothing is served from memory. When Redis answers, New checks what the
// store needs of it and waits up to a second for the first heartbeat:
// a refusal (credentials, an ACL without the channel or a command, a
// renamed command) is New's error, wrapping tierstore.ErrRefused and
// naming it.
func New(cfg Config) (*Store, error) {
	if cfg.Redis == nil {
		return nil, errors.New("tiered: Config.Redis is nil")
	}
	if cfg.L1TTL < 0 {
		return nil, errors.New("tiered: negative L1TTL")
	}
	if cfg.L1TTL == 0 {
		cfg.L1TTL = DefaultL1TTL
	}
	// Checked here as well as by each bus: a Cluster's buses start later,
	// one per master, where an error could only be retried.
	if d := cfg.HealthCheckInterval; d < 0 || (d > 0 && d < bus.MinHealthCheckInterval) {
		return nil, fmt.Errorf("tiered: HealthCheckInterval %v: want 0 (the default) or at least %v", d, bus.MinHealthCheckInterval)
	}
	if cfg.HealthCheckInterval == 0 {
		cfg.HealthCheckInterval = DefaultHealthCheckInterval
	}
	prefix := cfg.KeyPrefix
	if prefix == "" {
		prefix = rediskv.DefaultKeyPrefix
	}
	if cfg.Channel == "" {
		cfg.Channel = "tierstore:invalidate:" + prefix
	}
	if cfg.AccessReportInterval == 0 {
		cfg.AccessReportInterval = DefaultAccessReportInterval
	}
	reachable, err := probe(cfg, prefix)
	if err != nil {
		return nil, err
	}
	cc, isCluster := cfg.Redis.(*redis.ClusterClient)
	// s is set before any write, and so before the tracker's OnGap; and
	// before the bus or the cluster feed start calling it.
	s := &Store{
		onInvalidate: cfg.OnInvalidate, done: make(chan struct{}), tracked: !cfg.OwnWritesOnly,
		flights: map[flightKey]*flight{}, conns: rediskv.NewConns(),
		log: statelog.New(cfg.Logger, 0, "prefix", prefix),
	}
	id := bus.NewID()
	beats := tracking.BeatPrefix(prefix, id.String())
	kvcfg := rediskv.Config{Redis: cfg.Redis, KeyPrefix: cfg.KeyPrefix, MaxValueBytes: cfg.MaxValueBytes, Op: "tiered"}
	var bcfg bus.Config
	switch {
	case s.tracked && isCluster:
		cf := newClusterFeed(cc, s.conns, prefix, beats, cfg.HealthCheckInterval, s.onMessage, s.onGap, s.log)
		s.feed, kvcfg.Runner, kvcfg.Reader = cf, cf, cf.reads()
		s.closers = append(s.closers, func() error { return cf.Close() })
	case s.tracked:
		s.epochKey = rediskv.EpochKey(prefix)
		rc := cfg.Redis.(*redis.Client) // probe refused any other kind
		t, err := tracking.New(tracking.Config{
			Redis: rc, Conns: s.conns, Prefix: prefix, BeatPrefix: beats, EpochKey: s.epochKey,
			OnGap: func(reason string) { s.bus.Gap(reason) }, Log: s.log,
		})
		if err != nil {
			return nil, fmt.Errorf("tiered: %w", err)
		}
		reader := newReader(s.conns, rc)
		s.tracker, kvcfg.Runner, kvcfg.Reader = t, t, reader
		s.closers = append(s.closers, t.Close, func() error { reader.Close(); return nil })
		bcfg = bus.Config{
			Redis: t.Subscriber(), Channel: bus.TrackingChannel, KeyPrefix: prefix,
			BeatPrefix: beats, Beat: t.Beat,
		}
	default:
		// Subscription and heartbeats on clients of the store's own, so
		// that their dials are bounded; the heartbeat is a message on a
		// channel of this instance's, subscribed with the shared one.
		own := s.own(cfg.Redis)
		beatChannel := cfg.Channel + ":heartbeat:" + id.String()
		bcfg = bus.Config{
			Redis: own, Channel: cfg.Channel, BeatChannel: beatChannel,
			Beat: func(ctx context.Context, seq uint64) (string, error) {
				return "", own.Publish(ctx, beatChannel, seq).Err()
			},
		}
	}
	s.batchedReads = kvcfg.Reader != nil
	s.l2, err = rediskv.New(kvcfg)
	if err != nil {
		s.closeParts()
		return nil, err
	}
	l1cfg := cache.Config{MaxBytes: cfg.L1MaxBytes, TTL: cfg.L1TTL, MaxValueBytes: s.l2.MaxValueBytes()}
	if cfg.AccessReportInterval > 0 {
		access := newAccessReporter(s.own(cfg.Redis), prefix)
		l1cfg.OnAccess, l1cfg.AccessEvery = access.report, cfg.AccessReportInterval
		s.access = access
		s.closers = append(s.closers, func() error { access.close(); return nil })
	}
	s.l1, err = cache.New(l1cfg)
	if err != nil {
		s.closeParts()
		return nil, fmt.Errorf("tiered: %w", err)
	}
	if cf, ok := s.feed.(*clusterFeed); ok {
		cf.start()
	} else {
		bcfg.ID, bcfg.HealthCheckInterval, bcfg.Log = id, cfg.HealthCheckInterval, s.log
		bcfg.OnMessage, bcfg.OnGap = s.onMessage, s.onGap
		s.bus, err = bus.New(bcfg)
		if err != nil {
			s.l1.Close()
			s.closeParts()
			return nil, fmt.Errorf("tiered: %w", err)
		}
		s.feed = busFeed{s.bus}
	}
	if reachable {
		// Redis answers: a misconfiguration shows within a few round
		// trips, and is New's error rather than a store that never
		// serves from memory.
		if err := s.settle(startupProbe); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// own returns the store's own client like rdb (see rediskv.Conns.Universal),
// made once and closed with the store: for the subscription and
// heartbeats with OwnWritesOnly, and the access reports.
func (s *Store) own(rdb redis.UniversalClient) redis.UniversalClient {
	if s.ownClient == nil {
		s.ownClient = s.conns.Universal(rdb)
		if s.ownClient != rdb {
			s.closers = append(s.closers, s.ownClient.Close)
		}
	}
	return s.ownClient
}

// newReader returns the connection the reads of an instance travel on,
// batched: not the writes' (see rediskv.Config.Reader).
func newReader(conns *rediskv.Conns, rc *redis.Client) *rediskv.Pipe {
	return rediskv.NewPipe(conns.Client(rc.Options(), func(o *redis.Options) {
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
		o.ReadTimeout, o.WriteTimeout = max(o.ReadTimeout, 0), max(o.WriteTimeout, 0)
	}), nil)
}

// startupProbe bounds how long New waits, when Redis answers, for the
// first heartbeat or a refusal.
const startupProbe = time.Second

// settle waits up to d for the store to be Live, and returns the refusal
// that keeps it from it, if one shows: a permission, a renamed command,
// credentials. Anything else (Redis slow, or gone again) is not New's
// error: the store keeps trying.
func (s *Store) settle(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		changed, cause := s.whyNotLive()
		if cause == nil {
			return nil
		}
		if errors.Is(cause, tierstore.ErrRefused) {
			return fmt.Errorf("tiered: invalidations cannot reach this instance: %w", cause)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// probe checks, when Redis answers within a second, what the store's
// mode needs of it that a first heartbeat does not show: CLIENT TRACKING
// (on every master of a Cluster) and the commands of reads and writes on
// the key prefix. It reports whether Redis answered.
func probe(cfg Config, prefix string) (reachable bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if !cfg.OwnWritesOnly {
		switch c := cfg.Redis.(type) {
		case *redis.ClusterClient:
			err = probeCluster(ctx, c)
		case *redis.Client:
			err = tracking.Probe(ctx, c)
		default:
			err = fmt.Errorf("server-assisted invalidation needs a *redis.Client or *redis.ClusterClient, not %T: set Config.OwnWritesOnly", cfg.Redis)
		}
		if err != nil {
			return false, fmt.Errorf("tiered: %w", err)
		}
	}
	err = rediskv.Probe(ctx, cfg.Redis, prefix, !cfg.OwnWritesOnly)
	switch {
	case errors.Is(err, tierstore.ErrRefused):
		return true, fmt.Errorf("tiered: %w", err)
	case err != nil:
		return false, nil // unreachable: New does not wait for Redis
	}
	return true, nil
}

func (s *Store) onMessage(m bus.Message) {
	if tierstore.CheckKey(m.Key) != nil {
		return // no Store holds such a key (rediskv.EpochKey is one), as in Keys
	}
	if m.Own && time.Now().UnixNano() > s.ownEchoesUntil.Load() {
		s.ignoredOwn.Add(1)
		return
	}
	s.received.Add(1)
	s.l1.Invalidate(m.Key)
	if s.onInvalidate != nil {
		s.onInvalidate(m.Key)
	}
}

func (s *Store) onGap(string) { s.l1.InvalidateAll() }

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return tierstore.ErrClosed
	}
	return nil
}

// Get returns a copy of the value under key, or tierstore.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	_, err := s.read(ctx, key, tierstore.NoVersion, func(b []byte) error {
		out = bytes.Clone(b)
		return nil
	})
	return out, err
}

// GetWithExpiry returns a copy of the value under key and its expiry (zero:
// none). On an L1 hit the expiry is the one read when the entry was filled:
// another instance may have extended it since (see tierstore.ExpiryReader).
func (s *Store) GetWithExpiry(ctx context.Context, key string) ([]byte, time.Time, error) {
	var out []byte
	m, err := s.read(ctx, key, tierstore.NoVersion, func(b []byte) error {
		out = bytes.Clone(b)
		return nil
	})
	return out, m.Expiry, err
}

// GetVersion returns a copy of the value under key, its version and its
// expiry (as GetWithExpiry). It serves the L1 copy only if its version is
// at least atLeast; an older copy, which an invalidation in flight is
// about to drop, is read again from Redis.
func (s *Store) GetVersion(ctx context.Context, key string, atLeast tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	var out []byte
	m, err := s.read(ctx, key, atLeast, func(b []byte) error {
		out = bytes.Clone(b)
		return nil
	})
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	return out, versionOf(m, out), m.Expiry, nil
}

// ViewVersion calls fn with the value under key, its version and its
// expiry, as GetVersion returns them; on an L1 hit fn sees the cached bytes
// themselves, which it must neither modify nor retain.
func (s *Store) ViewVersion(ctx context.Context, key string, atLeast tierstore.Version, fn func([]byte, tierstore.Version, time.Time) error) error {
	var value []byte
	m, err := s.read(ctx, key, atLeast, func(b []byte) error { value = b; return nil })
	if err != nil {
		return err
	}
	return fn(value, versionOf(m, value), m.Expiry)
}

// View calls fn with the value under key. On an L1 hit fn sees the cached
// bytes themselves: no copy, no allocation.
func (s *Store) View(ctx context.Context, key string, fn func([]byte) error) error {
	_, err := s.read(ctx, key, tierstore.NoVersion, fn)
	return err
}

// read lends the value of key to fn, from L1 when it may serve and its copy
// is at least atLeast, else from Redis (filling L1), and returns the
// value's expiry and version.
func (s *Store) read(ctx context.Context, key string, atLeast tierstore.Version, fn func([]byte) error) (cache.Meta, error) {
	if err := s.check(ctx); err != nil {
		return cache.Meta{}, err
	}
	if !s.feed.Live() {
		s.bypassed.Add(1)
	} else if atLeast == tierstore.NoVersion {
		if hit, m, err := s.l1.Lookup(key, fn); hit {
			return m, err
		}
	} else {
		var value []byte
		if hit, m, _ := s.l1.Lookup(key, func(b []byte) error { value = b; return nil }); hit && versionOf(m, value) >= atLeast {
			return m, fn(value)
		}
	}
	r, err := s.fetch(ctx, key)
	if err == nil && atLeast != tierstore.NoVersion && !r.fresh && versionOf(r.Meta, r.value) < atLeast {
		// Older than a version the caller saw written: L1's copy, or a
		// shared read that began before that write. Read Redis itself.
		// A read this caller started is what Redis holds (older than
		// atLeast if the caller's version was never written, as a forged
		// cookie's): reading it again would cost a second round trip.
		r, err = s.load(ctx, key, s.l1.Stamp(key))
	}
	if err != nil {
		return cache.Meta{}, err
	}
	return r.Meta, fn(r.value)
}

// versionOf is the version of value, read with m: as recorded, or, for a
// value this instance wrote with Set, derived from its bytes.
func versionOf(m cache.Meta, value []byte) tierstore.Version {
	if m.Version == tierstore.NoVersion {
		return rediskv.ContentVersion(value)
	}
	return m.Version
}

// fetched is the shared result of one Redis read. value is shared with L1
// and the other waiters: it must not be modified.
type fetched struct {
	value []byte
	cache.Meta
	fresh  bool // read from Redis by a flight the caller started
	fromL1 bool // served by a flight from a copy another flight filled
}

// fetch reads key from Redis and fills L1. Concurrent misses of one key
// under one stamp share one Redis read. The stamp is part of the flight key
// so that a read that follows a write (which changes the stamp) never joins
// a read that started before the write.
func (s *Store) fetch(ctx context.Context, key string) (fetched, error) {
	if err := tierstore.CheckKey(key); err != nil {
		return fetched{}, err
	}
	start := time.Now()
	for {
		r, starterLeft, err := s.fetchOnce(ctx, key)
		// A shared read ends at the deadline of the caller that started
		// it, or, if it was never sent, with that caller's cancellation.
		// A waiter whose own context is still alive reads again
		// (joining a later flight or starting its own) instead of
		// failing with someone else's; one without a deadline gives up
		// after maxSharedRead, as its own read would. A read that failed
		// while its starter still waited (a network timeout is no one's
		// deadline) is the waiters' failure too.
		if err != nil && starterLeft && ctx.Err() == nil && s.mayReadAgain(ctx, start) {
			continue
		}
		return r, err
	}
}

// mayReadAgain reports whether a waiter that started at start still has
// time for another shared read: before its own deadline, or within
// maxSharedRead if it has none.
func (s *Store) mayReadAgain(ctx context.Context, start time.Time) bool {
	if deadline, ok := ctx.Deadline(); ok {
		return time.Now().Before(deadline)
	}
	return time.Since(start) < maxSharedRead
}

// flight is one shared read of a key under one stamp: the callers that
// miss the key under that stamp wait for it.
type flight struct {
	done chan struct{} // closed when the fields below are set
	r    fetched
	err  error
	// starterLeft: the read failed after the context of the caller that
	// started it ended, maybe because it ended.
	starterLeft bool
}

// flightKey names a flight: a read that follows a write (which changes
// the stamp) never joins a read that started before the write.
type flightKey struct {
	key   string
	stamp cache.Stamp
}

// fetchOnce joins or starts the flight of key under its current stamp and
// returns its outcome, and whether it failed after its starter left.
func (s *Store) fetchOnce(ctx context.Context, key string) (r fetched, starterLeft bool, err error) {
	st := s.l1.Stamp(key)
	fk := flightKey{key, st}
	s.flightMu.Lock()
	f, joined := s.flights[fk]
	if !joined {
		f = &flight{done: make(chan struct{})}
		s.flights[fk] = f
	}
	s.flightMu.Unlock()
	if s.afterFlightJoin != nil {
		s.afterFlightJoin(key)
	}
	if !joined {
		s.fly(ctx, key, fk, f)
	}
	select {
	case <-f.done:
		switch {
		case f.err == nil:
			r := f.r
			r.fresh = !joined && !r.fromL1
			return r, false, nil
		case ctx.Err() != nil:
			// Both were ready: this caller left, whatever the read says.
			return fetched{}, false, s.ctxError(ctx, key)
		}
		return fetched{}, f.starterLeft, f.err
	case <-ctx.Done():
		return fetched{}, false, s.ctxError(ctx, key)
	}
}

// ended reports whether ctx has ended, or its deadline has passed (its
// timer may not have fired yet).
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}

// ctxError is the error of a read of key whose caller's context ended:
// a passed deadline is ErrUnavailable (Redis did not answer in time).
func (s *Store) ctxError(ctx context.Context, key string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return s.l2.WrapError(ctx, "get", key, ctx.Err())
	}
	return ctx.Err()
}

// fly runs the shared read f, started by a caller with ctx, and lands it
// for every waiter. It returns once the read is answered or ctx has ended;
// the read itself runs to its end in either case, for the other waiters.
func (s *Store) fly(ctx context.Context, key string, fk flightKey, f *flight) {
	// land ends the flight; rctx is the context the read ran with.
	land := func(rctx context.Context, r fetched, err error) {
		s.flightMu.Lock()
		delete(s.flights, fk)
		s.flightMu.Unlock()
		f.r, f.err, f.starterLeft = r, err, err != nil && ended(rctx)
		close(f.done)
	}
	// A flight under the same stamp may have filled L1 just before this
	// one started: serve that instead of asking Redis again (not counted
	// as a second miss).
	if s.feed.Live() {
		var hit fetched
		if found, m, _ := s.l1.Recheck(key, func(v []byte) error { hit.value = v; return nil }); found {
			hit.Meta, hit.fromL1 = m, true
			land(ctx, hit, nil)
			return
		}
	}
	if s.batchedReads {
		// The read joins the next batch on the store's read connection,
		// which answers it whether or not this caller is still waiting.
		if s.beforeL2Read != nil {
			s.beforeL2Read(ctx, key)
		}
		_, _ = s.l2.ReadAsync(ctx, key, s.epochKey, func(r rediskv.Item, err error) {
			if s.afterL2Read == nil {
				r, err := s.landRead(key, fk.stamp, r, err)
				land(ctx, r, err)
				return
			}
			// A test hook may block: not on the connection's goroutine.
			go func() {
				s.afterL2Read(key)
				r, err := s.landRead(key, fk.stamp, r, err)
				land(ctx, r, err)
			}()
		})
		return
	}
	// The read must not fail for the other waiters because the first
	// caller gave up, so it runs without the caller's cancellation; it
	// keeps the caller's deadline, or gets one of its own.
	go func() {
		rctx, cancel := sharedReadContext(ctx)
		defer cancel()
		r, err := s.load(rctx, key, fk.stamp)
		land(rctx, r, err)
	}()
}

// load reads key from Redis and fills L1 under st, the stamp taken before.
func (s *Store) load(ctx context.Context, key string, st cache.Stamp) (fetched, error) {
	if s.beforeL2Read != nil {
		s.beforeL2Read(ctx, key)
	}
	r, err := s.l2.Read(ctx, key, s.epochKey)
	if s.afterL2Read != nil {
		s.afterL2Read(key)
	}
	return s.landRead(key, st, r, err)
}

// landRead counts a Redis read of key and fills L1 with what it found,
// under st, the stamp taken before the read.
func (s *Store) landRead(key string, st cache.Stamp, r rediskv.Item, err error) (fetched, error) {
	switch {
	case err == nil:
		s.l2Hits.Add(1)
		// With tracking, the dataset the value comes from must be the one
		// the registration follows (SWAPDB is not reported; it could be
		// swapped back before the next check).
		if s.tracker == nil || r.Epoch != "" && r.Epoch == s.tracker.Epoch() {
			s.l1.Fill(key, r.Value, cache.Meta{Expiry: r.Expiry, Version: r.Version}, st)
		}
	case errors.Is(err, tierstore.ErrNotFound):
		s.l2Misses.Add(1)
	case errors.Is(err, context.Canceled):
		// Never sent, or not waited for: the caller left, Redis did not fail.
	default:
		s.errs.Add(1)
	}
	return fetched{value: r.Value, Meta: cache.Meta{Expiry: r.Expiry, Version: r.Version}}, err
}

// sharedReadContext returns ctx's values without its cancellation, with
// ctx's deadline, or maxSharedRead from now if it has none.
func sharedReadContext(ctx context.Context) (context.Context, context.CancelFunc) {
	detached := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(detached, deadline)
	}
	return context.WithTimeout(detached, maxSharedRead)
}

// MaxValueBytes returns the largest value Set accepts (see
// Config.MaxValueBytes).
func (s *Store) MaxValueBytes() int { return s.l2.MaxValueBytes() }

// Keys calls fn for each live key in Redis (SCAN; on every master of a
// Cluster). It does not read L1, which holds a subset.
func (s *Store) Keys(ctx context.Context, fn func(key string) bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.l2.Keys(ctx, fn)
}

// Set stores value under key until expiry (zero: no expiry) in Redis and
// publishes the invalidation in the same atomic step; then caches it. An
// expiry that is not in the future deletes the key.
func (s *Store) Set(ctx context.Context, key string, value []byte, expiry time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if !expiry.IsZero() && !time.Now().Before(expiry) {
		return s.Delete(ctx, key)
	}
	if err := tierstore.CheckKey(key); err != nil {
		return err
	}
	if len(value) > s.l2.MaxValueBytes() {
		return fmt.Errorf("tiered: set: %d bytes, limit %d: %w", len(value), s.l2.MaxValueBytes(), tierstore.ErrTooLarge)
	}
	st := s.l1.BeginWrite(key)
	cached := bytes.Clone(value)
	// The outcome is applied to L1 when Redis answers, also if ctx ends
	// first: a write that left is not a write whose result is unknown.
	return s.l2.SetAndPublish(ctx, key, value, expiry, s.notice(key), func(err error) {
		if err != nil {
			s.failed(key, st)
			return
		}
		s.sent.Add(1)
		if s.afterL2Write != nil {
			s.afterL2Write(key)
		}
		s.l1.EndWrite(key, st, cached, cache.Meta{Expiry: expiry})
	})
}

// Delete removes key from Redis and from every instance's L1.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := tierstore.CheckKey(key); err != nil {
		return err
	}
	st := s.l1.BeginWrite(key)
	_, err := s.l2.DeleteAndPublish(ctx, key, s.notice(key), func(err error) {
		if err != nil {
			s.failed(key, st)
			return
		}
		s.sent.Add(1)
		s.l1.EndWrite(key, st, nil, cache.Meta{})
	})
	return err
}

// SetIf stores value under key until expiry, as Set does, only if the
// key's version in Redis is want (tierstore.NoVersion: absent), checked
// and written by one script that Redis runs atomically; it returns the new
// version, or an error wrapping tierstore.ErrConflict. A conflict also
// drops this instance's copy of key, so that the caller's next read, to
// merge or retry, comes from Redis.
//
// Redis 7.0 reports a script's write to the instance that made it too
// (NOLOOP covers scripts from 7.2 on), so there this instance reads the key
// once more after each SetIf.
func (s *Store) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version) (tierstore.Version, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if !expiry.IsZero() && !time.Now().Before(expiry) {
		return 0, s.DeleteIf(ctx, key, want)
	}
	if err := tierstore.CheckKey(key); err != nil {
		return 0, err
	}
	if len(value) > s.l2.MaxValueBytes() {
		return 0, fmt.Errorf("tiered: set: %d bytes, limit %d: %w", len(value), s.l2.MaxValueBytes(), tierstore.ErrTooLarge)
	}
	st := s.l1.BeginWrite(key)
	cached := bytes.Clone(value)
	return s.l2.SetIf(ctx, key, value, expiry, want, s.notice(key), func(v tierstore.Version, err error) {
		s.endConditional(key, st, err)
		if err == nil {
			s.l1.EndWrite(key, st, cached, cache.Meta{Expiry: expiry, Version: v})
		}
	})
}

// DeleteIf removes key from Redis and from every instance's L1 only if
// its version in Redis is want; otherwise it returns an error wrapping
// tierstore.ErrConflict and drops this instance's copy, as SetIf does.
func (s *Store) DeleteIf(ctx context.Context, key string, want tierstore.Version) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := tierstore.CheckKey(key); err != nil {
		return err
	}
	st := s.l1.BeginWrite(key)
	return s.l2.DeleteIf(ctx, key, want, s.notice(key), func(err error) {
		s.endConditional(key, st, err)
		if err == nil {
			s.l1.EndWrite(key, st, nil, cache.Meta{})
		}
	})
}

// endConditional applies to L1 the outcome of a conditional write that
// did not succeed: a conflict drops the key's copy, which was older than
// Redis's; any other error is a failed write. Success is the caller's.
func (s *Store) endConditional(key string, st cache.Stamp, err error) {
	switch {
	case errors.Is(err, tierstore.ErrConflict):
		s.l1.EndWrite(key, st, nil, cache.Meta{})
	case err != nil:
		s.failed(key, st)
	default:
		s.sent.Add(1)
		if s.afterL2Write != nil {
			s.afterL2Write(key)
		}
	}
}

// Touch changes the expiry of key without rewriting its value. A zero
// expiry removes the expiry. Redis reports the change to every instance,
// which reads the key again on its next use, this one included (its echo
// is not reported, and with it neither a peer's change in the same instant,
// so the cached copy cannot be kept). With OwnWritesOnly, moving the expiry
// later publishes nothing (other instances' cached copies just expire at
// the old time), moving it earlier invalidates them, and this instance
// keeps its copy.
func (s *Store) Touch(ctx context.Context, key string, expiry time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := tierstore.CheckKey(key); err != nil {
		return err
	}
	if s.tracked {
		st := s.l1.BeginWrite(key)
		_, err := s.l2.TouchAndPublish(ctx, key, expiry, rediskv.Notice{}, func(err error) {
			if err != nil {
				s.errs.Add(1)
			}
			s.l1.EndWrite(key, st, nil, cache.Meta{})
		})
		return err
	}
	published, err := s.l2.TouchAndPublish(ctx, key, expiry, s.notice(key), nil)
	switch {
	case errors.Is(err, tierstore.ErrNotFound):
		return err
	case err != nil:
		// Whether Redis applied it is unknown: treat it as an earlier expiry.
		s.failed(key, s.l1.BeginWrite(key))
		return err
	case published:
		s.sent.Add(1)
		s.l1.Invalidate(key)
	default:
		s.l1.Extend(key, expiry)
	}
	return nil
}

// notice is the invalidation a write publishes: none when Redis reports
// changes itself.
func (s *Store) notice(key string) rediskv.Notice {
	if s.tracked {
		return rediskv.Notice{}
	}
	return rediskv.Notice{Channel: s.bus.Channel(), Payload: s.bus.Message(key)}
}

// failed cleans up after a write that returned an error. Redis may still
// have applied it (a timeout after sending), so nothing of the key stays
// cached here, and for a while this instance's own message, should it come,
// invalidates here too.
func (s *Store) failed(key string, st cache.Stamp) {
	s.errs.Add(1)
	s.l1.EndWrite(key, st, nil, cache.Meta{})
	s.ownEchoesUntil.Store(time.Now().Add(ambiguousWriteWindow).UnixNano())
}

// Live reports whether L1 may currently serve reads: whether the store
// holds proof, renewed within HealthCheckInterval, that changes reach it
// (see docs/consistency.md). While it is false, every read goes to Redis.
// Useful in readiness checks and metrics; Health says why it is false.
func (s *Store) Live() bool { return s.feed.Live() }

// whyNotLive returns a channel closed when Live or its cause may have
// changed, and why the store is not Live (nil while it is).
func (s *Store) whyNotLive() (<-chan struct{}, error) {
	changed, cause := s.feed.state()
	if s.feed.Live() {
		return changed, nil
	}
	if cause == nil {
		cause = errors.New("no heartbeat heard yet")
	}
	return changed, cause
}

// Health returns nil while the store is Live, and otherwise why it is
// not: the last failure of its subscription or heartbeats (wrapping
// tierstore.ErrRefused for a permission, a renamed command or
// credentials; tierstore.ErrUnavailable for a Redis that does not
// answer), or the gap that ended its lease.
func (s *Store) Health() error {
	if s.closed.Load() {
		return tierstore.ErrClosed
	}
	if _, cause := s.whyNotLive(); cause != nil {
		return fmt.Errorf("tiered: not live: %w", cause)
	}
	return nil
}

// WaitLive blocks until L1 may serve reads (Live is true), ctx is done
// or the Store is closed (tierstore.ErrClosed). When ctx ends first, the
// error wraps both ctx's error and the last reason the store was not
// Live (see Health). A new Store is not Live until it has heard its first
// heartbeat; call WaitLive at startup (with a timeout) before reporting
// ready, if reads from memory matter from the first request. The Store
// works without it: reads go to Redis until then.
func (s *Store) WaitLive(ctx context.Context) error {
	for {
		if s.closed.Load() {
			return tierstore.ErrClosed
		}
		changed, cause := s.whyNotLive()
		if cause == nil {
			return nil
		}
		select {
		case <-changed:
		case <-s.done:
			return tierstore.ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("tiered: not live: %w (last: %w)", ctx.Err(), cause)
		}
	}
}

// Stats is a snapshot of a Store's counters, all cumulative.
type Stats struct {
	L1Hits   uint64 // reads served from memory
	L1Misses uint64 // reads that went to Redis (including the two below)
	L1Stale  uint64 // L1 entries found but refused by their validity stamp
	L1Bypass uint64 // reads that skipped L1 because the store was not Live
	L2Hits   uint64 // Redis reads that found the key
	L2Misses uint64 // Redis reads that did not

	InvalidationsSent       uint64 // writes made (Redis reports them; with OwnWritesOnly, each published its invalidation)
	InvalidationsReceived   uint64 // invalidations applied to L1: changes by others, as Redis reported them
	InvalidationsIgnoredOwn uint64 // with OwnWritesOnly: own invalidations echoed back and skipped
	MalformedMessages       uint64 // channel payloads that were not invalidations (or keys outside KeyPrefix)

	Gaps            uint64 // gaps (lost subscription or registration, flush, lease expired): each flushed L1
	Subscriptions   uint64 // subscriptions confirmed: 1 + resubscriptions
	Heartbeats      uint64 // heartbeats Redis acknowledged (four per HealthCheckInterval while healthy)
	HeartbeatsHeard uint64 // heartbeats that came back on the subscription, each renewing the lease
	Refusals        uint64 // commands of the subscription or heartbeats Redis refused (ACL, renamed command, auth): see Health
	Errors          uint64 // failed Redis reads and writes (not ErrNotFound)

	AccessReports uint64 // keys served from L1 reported to Redis (see Config.AccessReportInterval)
	Live          bool   // see Store.Live
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	a, b := s.l1.Stats(), s.feed.Stats()
	st := Stats{
		L1Hits: a.Hits, L1Misses: a.Misses + s.bypassed.Load(), L1Stale: a.Stale, L1Bypass: s.bypassed.Load(),
		L2Hits: s.l2Hits.Load(), L2Misses: s.l2Misses.Load(),
		InvalidationsSent: s.sent.Load(), InvalidationsReceived: s.received.Load(),
		InvalidationsIgnoredOwn: s.ignoredOwn.Load(), MalformedMessages: b.Malformed,
		Gaps: b.Gaps, Subscriptions: b.Subscriptions, Heartbeats: b.Beats, HeartbeatsHeard: b.Heard,
		Refusals: b.Refusals, Errors: s.errs.Load(), Live: s.feed.Live(),
	}
	if s.access != nil {
		st.AccessReports = s.access.sent.Load()
	}
	return st
}

// String formats the main counters on one line, for logs and the demo.
func (st Stats) String() string {
	return fmt.Sprintf("l1 %d hits/%d misses, l2 %d hits/%d misses, invalidations %d sent/%d received, gaps %d",
		st.L1Hits, st.L1Misses, st.L2Hits, st.L2Misses, st.InvalidationsSent, st.InvalidationsReceived, st.Gaps)
}

// closeGrace is how long Close lets writes in flight finish before it
// closes the store's connections under them.
const closeGrace = time.Second

// Close stops the subscription and frees the L1 cache. Later calls fail
// with tierstore.ErrClosed; calls in flight complete or fail with it. It
// does not close the Redis client. It returns within about a second
// whatever Redis does: writes still waiting for Redis then are cut off
// (they fail; whether Redis applied them is unknown, as for any write
// that times out).
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.done)
	finished := make(chan error, 1)
	go func() {
		err := s.feed.Close()
		finished <- errors.Join(err, s.closeParts())
	}()
	var err error
	select {
	case err = <-finished:
	case <-time.After(closeGrace):
		s.conns.Abort()
		err = <-finished
	}
	s.conns.Abort()
	s.l1.Close()
	return err
}

// closeParts closes what New made besides the feed, in reverse.
func (s *Store) closeParts() error {
	var err error
	for _, c := range slices.Backward(s.closers) {
		err = errors.Join(err, c())
	}
	s.closers = nil
	return err
}
