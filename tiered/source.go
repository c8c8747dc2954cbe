package tiered

import (
	"context"
	"errors"
	"fmt"
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

// source is where a Store's invalidations come from, and what its reads
// and writes need of that path. There is one implementation per mode:
// nodeSource (a single node or Sentinel client, whose changes Redis
// reports), clusterSource (the same, on every master of a Cluster) and
// ownWritesSource (invalidations the stores publish themselves). The
// Store holds one and never asks which it is.
type source interface {
	// live reports whether L1 may serve: the source holds its lease.
	live() bool
	// state returns a channel closed when live or its cause may have
	// changed, and why the source is not live (nil if it is, or if no
	// cause is known yet).
	state() (changed <-chan struct{}, cause error)
	stats() bus.Stats
	// writes and reads run the Store's Redis commands (nil: on the
	// client's pool). Reads travel apart from writes, so that a write
	// held by Redis (a write pause) does not hold up the reads.
	writes() rediskv.Runner
	reads() rediskv.Runner
	// refreshes runs the read of a key whose copy this instance wrote and
	// lost to a report of its own write (nil: none is needed): on the
	// writes' connection in per-key mode, which follows what it wrote
	// already, so that the reads' connection does not follow it again
	// and have the next write reported back too.
	refreshes() rediskv.Runner
	// epochKey is the key a read returns beside the value ("": none);
	// current reports whether a value read beside epoch may fill L1.
	epochKey() string
	current(epoch string) bool
	// notice is what a write of key publishes in the same atomic step:
	// nothing where Redis reports changes itself.
	notice(key string) rediskv.Notice
	// touch changes key's expiry in Redis and settles L1's copy.
	touch(ctx context.Context, s *Store, key string, expiry time.Time) error
	close() error
}

// wiring is what New hands a source: the Store's parts it calls back.
type wiring struct {
	cfg       Config
	conns     *rediskv.Conns
	log       *statelog.Logger
	id        bus.ID
	beats     string // the heartbeat keys' prefix, in the tracked modes
	onMessage func(bus.Message)
	onGap     func(cause invalidation.GapCause, reason string)
	onProof   func(lag time.Duration)
	onLive    func()                       // a bus gained Live
	onBeat    func(err error)              // a heartbeat's outcome (see breaker)
	forget    func(key string)             // drops key's copy, kills its fills in flight
	own       func() redis.UniversalClient // the Store's own client like cfg.Redis
}

// beat returns make with its outcomes handed to onBeat: a heartbeat is
// a round trip on the store's own connections and deadline, so its
// failure to reach Redis is the store's knowledge, whoever waits.
func (w wiring) beat(make func(ctx context.Context, seq uint64) (bus.Flush, error)) func(ctx context.Context, seq uint64) (bus.Flush, error) {
	return func(ctx context.Context, seq uint64) (bus.Flush, error) {
		flush, err := make(ctx, seq)
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			w.onBeat(err)
		}
		return flush, err
	}
}

// reported is the part of the tracked sources where Redis reports every
// change, the writes of this instance included (in broadcast mode, but
// for the echo of its plain writes; see package tracking).
type reported struct{}

func (reported) notice(string) rediskv.Notice { return rediskv.Notice{} }

// touch changes the expiry and drops this instance's copy, which reads
// the key again on its next use: Redis reports the change to the other
// instances, and a report here could not tell this change from a peer's
// of the same instant, so the cached copy cannot be kept.
func (reported) touch(ctx context.Context, s *Store, key string, expiry time.Time) error {
	st := s.l1.BeginWrite(key)
	_, err := s.l2.TouchAndPublish(ctx, key, expiry, rediskv.Notice{}, func(err error) {
		if err != nil {
			s.countError(err)
		}
		s.l1.EndWrite(key, st, nil, nearcache.Meta{})
	})
	return err
}

// nodeSource follows one Redis node (or the master a Sentinel client
// names): tracking registrations whose reports come to a subscription,
// writes on one registered connection, reads on another (see package
// tracking).
type nodeSource struct {
	reported
	*bus.Bus
	tracker *tracking.Tracker
	perKey  bool
	epoch   string // rediskv.EpochKey
}

func newNodeSource(w wiring) (*nodeSource, error) {
	rc := w.cfg.Redis.(*redis.Client) // probe refused any other kind
	n := &nodeSource{epoch: rediskv.EpochKey(w.cfg.KeyPrefix), perKey: w.cfg.Invalidation == invalidation.PerKey}
	t, err := tracking.New(tracking.Config{
		Redis: rc, Conns: w.conns, Prefix: w.cfg.KeyPrefix, BeatPrefix: w.beats, EpochKey: n.epoch,
		PerKey: n.perKey, OnGap: func(reason string) { n.Gap(invalidation.GapConnectionLost, reason) }, Log: w.log,
	})
	if err != nil {
		return nil, err
	}
	n.tracker = t
	n.Bus, err = bus.New(bus.Config{
		Redis: t.Subscriber(), Channel: bus.TrackingChannel, KeyPrefix: w.cfg.KeyPrefix,
		BeatPrefix: w.beats, BeatReports: t.BeatReports(), Beat: w.beat(t.Beat),
		ID: w.id, HealthCheckInterval: w.cfg.HealthCheckInterval, Log: w.log,
		OnMessage: w.onMessage, OnGap: w.onGap, OnProof: w.onProof, OnLive: w.onLive,
	})
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	return n, nil
}

func (n *nodeSource) live() bool                      { return n.Live() }
func (n *nodeSource) state() (<-chan struct{}, error) { return n.State() }
func (n *nodeSource) stats() bus.Stats                { return n.Stats() }
func (n *nodeSource) writes() rediskv.Runner          { return n.tracker }
func (n *nodeSource) reads() rediskv.Runner           { return n.tracker.Reader() }
func (n *nodeSource) epochKey() string                { return n.epoch }

// current: the dataset the value comes from must be the one the
// registration follows (SWAPDB is not reported; it could be swapped back
// before the next heartbeat's check).
func (n *nodeSource) current(epoch string) bool {
	return epoch != "" && epoch == n.tracker.Epoch()
}

func (n *nodeSource) close() error {
	err := n.Close()
	return errors.Join(err, n.tracker.Close())
}

func (n *nodeSource) refreshes() rediskv.Runner {
	if n.perKey {
		return n.tracker
	}
	return n.tracker.Reader()
}

// ownWritesSource is Config.Invalidation = invalidation.OwnWrites: each write publishes its key
// on Config.Channel in the same atomic step, and the subscription hears
// them; a heartbeat is a message on a channel of this instance's,
// subscribed with the shared one. Reads and writes go through the
// client itself.
type ownWritesSource struct {
	*bus.Bus
}

func newOwnWritesSource(w wiring) (*ownWritesSource, error) {
	// Subscription and heartbeats on the store's own client, so that
	// their dials are bounded.
	own := w.own()
	beatChannel := w.cfg.Channel + ":heartbeat:" + w.id.String()
	b, err := bus.New(bus.Config{
		Redis: own, Channel: w.cfg.Channel, BeatChannel: beatChannel,
		Beat: w.beat(func(ctx context.Context, seq uint64) (bus.Flush, error) {
			return bus.Flush{}, own.Publish(ctx, beatChannel, seq).Err()
		}),
		ID: w.id, HealthCheckInterval: w.cfg.HealthCheckInterval, Log: w.log,
		OnMessage: w.onMessage, OnGap: w.onGap, OnProof: w.onProof, OnLive: w.onLive,
	})
	if err != nil {
		return nil, err
	}
	return &ownWritesSource{b}, nil
}

func (o *ownWritesSource) live() bool                      { return o.Live() }
func (o *ownWritesSource) state() (<-chan struct{}, error) { return o.State() }
func (o *ownWritesSource) stats() bus.Stats                { return o.Stats() }
func (o *ownWritesSource) writes() rediskv.Runner          { return nil }
func (o *ownWritesSource) reads() rediskv.Runner           { return nil }

// refreshes: none, as no write's own message invalidates here.
func (o *ownWritesSource) refreshes() rediskv.Runner { return nil }
func (o *ownWritesSource) epochKey() string          { return "" }
func (o *ownWritesSource) current(string) bool       { return true }
func (o *ownWritesSource) close() error              { return o.Close() }

func (o *ownWritesSource) notice(key string) rediskv.Notice {
	return rediskv.Notice{Channel: o.Channel(), Payload: o.Message(key)}
}

// touch publishes only a shorter expiry: moving it later leaves other
// instances' copies to expire at the old time, and this instance keeps
// its copy with the new one.
func (o *ownWritesSource) touch(ctx context.Context, s *Store, key string, expiry time.Time) error {
	published, err := s.l2.TouchAndPublish(ctx, key, expiry, o.notice(key), nil)
	switch {
	case errors.Is(err, tierstore.ErrNotFound):
		return err
	case err != nil:
		// Whether Redis applied it is unknown: treat it as an earlier expiry.
		s.failed(key, s.l1.BeginWrite(key), err)
		return err
	case published:
		s.sent.Add(1)
		s.l1.Invalidate(key)
	default:
		s.l1.Extend(key, expiry)
	}
	return nil
}

// probe checks, when Redis answers within a second, what the store's
// mode needs of it that a first heartbeat does not show: CLIENT TRACKING
// (on every master of a Cluster) and the commands of reads and writes on
// the key prefix. It reports whether Redis answered.
func probe(cfg Config) (reachable bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if cfg.Invalidation != invalidation.OwnWrites {
		switch c := cfg.Redis.(type) {
		case *redis.ClusterClient:
			err = probeCluster(ctx, c)
		case *redis.Client:
			err = tracking.Probe(ctx, c)
		default:
			err = fmt.Errorf("server-assisted invalidation needs a *redis.Client or *redis.ClusterClient, not %T: set Config.Invalidation to invalidation.OwnWrites", cfg.Redis)
		}
		if err != nil {
			return false, fmt.Errorf("tiered: %w", err)
		}
	}
	err = rediskv.Probe(ctx, cfg.Redis, cfg.KeyPrefix, cfg.Invalidation != invalidation.OwnWrites)
	switch {
	case errors.Is(err, tierstore.ErrRefused):
		return true, fmt.Errorf("tiered: %w", err)
	case err != nil:
		return false, nil // unreachable: New does not wait for Redis
	}
	return true, nil
}
