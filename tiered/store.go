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
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/bus"
	"github.com/tierstore/tierstore/internal/nearcache"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/statelog"
	"github.com/tierstore/tierstore/internal/tracking"
	"github.com/tierstore/tierstore/invalidation"
)

// Store is the tiered tierstore.Store. It is safe for concurrent use; Close
// it to stop its subscription goroutines.
type Store struct {
	l1  *nearcache.Cache // this instance's copies
	l2  *rediskv.Client  // Redis, the source of truth
	src source           // where invalidations come from

	conns     *rediskv.Conns        // the store's own connections
	ownClient redis.UniversalClient // see own; nil until needed
	parts     []func() error        // what New made, closed in reverse
	log       *statelog.Logger      // nil: silent
	access    *accessReporter       // nil if AccessReportInterval < 0

	closed atomic.Bool
	done   chan struct{} // closed by Close

	// ownEchoesUntil (unix ns): until then, this instance's own messages
	// invalidate too (see ambiguousWriteWindow).
	ownEchoesUntil atomic.Int64

	onInvalidate func(key string)
	tracer       atomic.Pointer[tracerBox] // see SetTracer; nil: none

	observersMu    sync.Mutex                             // serialises changes of proofObservers
	proofObservers atomic.Pointer[[]*func(time.Duration)] // see ObserveProofLag

	fs    failSafe    // Config.FailSafe
	built atomic.Bool // s.src is set: onLive may use it
	brk   *breaker    // nil on a Cluster: see breaker

	bypassed, l2Hits, l2Misses atomic.Uint64
	sent, received, ignoredOwn atomic.Uint64
	refreshes                  atomic.Uint64                  // see refresh
	errs                       [NumErrorClasses]atomic.Uint64 // see countError
}

var (
	_ tierstore.Store         = (*Store)(nil)
	_ tierstore.Toucher       = (*Store)(nil)
	_ tierstore.Lister        = (*Store)(nil)
	_ tierstore.Versioned     = (*Store)(nil)
	_ tierstore.VersionViewer = (*Store)(nil)
)

// failFast: a Store fails fast while Redis is unreachable (see breaker).
// Only the outage benchmark turns it off, to measure the difference.
var failFast = true

// ambiguousWriteWindow is how long after a failed write this instance
// honours its own invalidation messages. A write that failed on a timeout
// may still have been applied by Redis; its message then reaches this
// instance too, and must drop any value read before the write landed.
const ambiguousWriteWindow = 30 * time.Second

// startupProbe bounds how long New waits, when Redis answers, for the
// first heartbeat or a refusal.
const startupProbe = time.Second

// New returns a Store and starts its invalidation subscription. Redis need
// not be reachable yet: until the store is Live, reads go to Redis and
// nothing is served from memory. When Redis answers, New checks what the
// store needs of it and waits up to a second for the first heartbeat:
// a refusal (credentials, an ACL without the channel or a command, a
// renamed command) is New's error, wrapping tierstore.ErrRefused and
// naming it.
func New(cfg Config) (*Store, error) {
	cfg, err := cfg.resolved()
	if err != nil {
		return nil, err
	}
	reachable, err := probe(cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{
		onInvalidate: cfg.OnInvalidate, done: make(chan struct{}), conns: rediskv.NewConns(),
		log: statelog.New(cfg.Logger, 0, "prefix", cfg.KeyPrefix),
	}
	s.fs = failSafe{max: cfg.FailSafe, log: s.log}
	if _, isCluster := cfg.Redis.(*redis.ClusterClient); !isCluster && failFast {
		s.brk = newBreaker(cfg.HealthCheckInterval, cfg.Invalidation != invalidation.OwnWrites, s.log)
	}
	if err := s.build(cfg); err != nil {
		s.closeParts()
		return nil, err
	}
	s.built.Store(true)
	s.onLive() // a bus may have gained Live before s.src was set
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

// build makes the Store's parts in the order they call each other: L1,
// which the source's callbacks use; the source, which runs the Redis
// client's commands; the Redis client.
func (s *Store) build(cfg Config) error {
	l1cfg := nearcache.Config{MaxBytes: cfg.L1MaxBytes, TTL: cfg.L1TTL, MaxValueBytes: cfg.MaxValueBytes}
	if cfg.AccessReportInterval > 0 {
		access := newAccessReporter(s.own(cfg.Redis), cfg.KeyPrefix)
		l1cfg.OnAccess, l1cfg.AccessEvery = access.report, cfg.AccessReportInterval
		s.access = access
		s.parts = append(s.parts, func() error { access.close(); return nil })
	}
	l1, err := nearcache.New(l1cfg)
	if err != nil {
		return fmt.Errorf("tiered: %w", err)
	}
	s.l1 = l1
	s.parts = append(s.parts, func() error { l1.Close(); return nil })

	id := bus.NewID()
	w := wiring{
		cfg: cfg, conns: s.conns, log: s.log, id: id,
		beats:     tracking.BeatPrefix(cfg.KeyPrefix, id.String()),
		onMessage: s.onMessage, onGap: s.onGap, onProof: s.proved, onLive: s.onLive, onBeat: s.brk.beat,
		forget: func(key string) { s.l1.Invalidate(key) },
		own:    func() redis.UniversalClient { return s.own(cfg.Redis) },
	}
	_, isCluster := cfg.Redis.(*redis.ClusterClient)
	switch {
	case cfg.Invalidation == invalidation.OwnWrites:
		s.src, err = newOwnWritesSource(w)
	case isCluster:
		s.src = newClusterSource(w)
	default:
		s.src, err = newNodeSource(w)
	}
	if err != nil {
		return fmt.Errorf("tiered: %w", err)
	}
	s.parts = append(s.parts, s.src.close)

	s.l2, err = rediskv.New(rediskv.Config{
		Redis: cfg.Redis, KeyPrefix: cfg.KeyPrefix, MaxValueBytes: cfg.MaxValueBytes, Op: "tiered",
		Runner: s.src.writes(), Reader: s.src.reads(), Follow: cfg.Invalidation == invalidation.PerKey,
	})
	return err
}

// own returns the store's own client like rdb (see rediskv.Conns.Universal),
// made once and closed with the store: for the subscription and
// heartbeats with invalidation.OwnWrites, and the access reports.
func (s *Store) own(rdb redis.UniversalClient) redis.UniversalClient {
	if s.ownClient == nil {
		s.ownClient = s.conns.Universal(rdb)
		if s.ownClient != rdb {
			s.parts = append(s.parts, s.ownClient.Close)
		}
	}
	return s.ownClient
}

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

func (s *Store) onMessage(m bus.Message) {
	if tierstore.CheckKey(m.Key) != nil {
		return // no Store holds such a key (rediskv.EpochKey is one), as in Keys
	}
	if m.Own && time.Now().UnixNano() > s.ownEchoesUntil.Load() {
		s.ignoredOwn.Add(1)
		return
	}
	if s.l1.Invalidate(m.Key) {
		// Maybe the report of this instance's own write, which it would
		// rather keep serving: read the key again (see refresh).
		s.refresh(m.Key)
	}
	s.received.Add(1) // after the refresh it may start: see Stats
	if s.onInvalidate != nil {
		s.onInvalidate(m.Key)
	}
}

// onGap flushes L1: what it holds may have missed a report. The
// fail-safe may keep the epoch it ended (see failSafe).
func (s *Store) onGap(cause invalidation.GapCause, reason string) {
	s.fs.gap(s.l1.InvalidateAll(), cause, reason)
}

// onLive runs when a bus gains Live: the store may be Live again.
func (s *Store) onLive() {
	if s.built.Load() {
		s.fs.live(s.l1, s.src.live)
	}
}

// check is the first step of every call: a live context, an open store.
func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return tierstore.ErrClosed
	}
	return nil
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
	probe, err := s.brk.allow()
	if err != nil {
		return fmt.Errorf("tiered: keys: %w", err)
	}
	err = s.l2.Keys(ctx, fn)
	s.brk.done(ctx, probe, err)
	return err
}
