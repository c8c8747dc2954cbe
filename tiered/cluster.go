package tiered

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/bus"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/statelog"
	"github.com/tierstore/tierstore/internal/tracking"
	"github.com/tierstore/tierstore/invalidation"
)

// shard is the tracking registration, reads and subscription on one
// master.
type shard struct {
	addr    string
	tracker *tracking.Tracker
	bus     *bus.Bus
}

func (sh *shard) close() {
	_ = sh.bus.Close()
	_ = sh.tracker.Close()
}

// clusterSource follows a Cluster's masters: on each, tracking
// registrations and a subscriber as on a single node, so that a change is
// reported only by the master that owns the key, whatever the number of
// masters. Writes and reads go to the owning master's registered
// connections. A change of the
// set of masters (failover, a node added or removed) is a gap; L1 serves
// only while every master's subscription holds its lease.
type clusterSource struct {
	reported
	cc         *redis.ClusterClient
	conns      *rediskv.Conns
	prefix     string
	beatPrefix string
	perKey     bool
	interval   time.Duration
	onMessage  func(bus.Message)
	onGap      func(cause invalidation.GapCause, reason string)
	onProof    func(lag time.Duration)
	onLive     func()
	forget     func(key string)
	log        *statelog.Logger

	mu     sync.Mutex // guards shards and closed
	shards map[string]*shard
	closed bool
	list   atomic.Pointer[[]*shard] // the shards, for Live without the lock

	// retired holds the counters of the shards removed since New and
	// the topology gaps, so that stats never goes down; statsMu guards
	// it and makes a change of list and retired one step for stats.
	statsMu sync.Mutex
	retired bus.Stats

	refresh chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// newClusterSource starts following the masters: onMessage and onGap
// may be called from then on.
func newClusterSource(w wiring) *clusterSource {
	f := &clusterSource{
		cc: w.cfg.Redis.(*redis.ClusterClient), conns: w.conns, prefix: w.cfg.KeyPrefix, beatPrefix: w.beats,
		interval: w.cfg.HealthCheckInterval, onMessage: w.onMessage, onGap: w.onGap, onProof: w.onProof, onLive: w.onLive, log: w.log,
		perKey: w.cfg.Invalidation == invalidation.PerKey, forget: w.forget,
		shards: map[string]*shard{}, refresh: make(chan struct{}, 1),
	}
	f.list.Store(&[]*shard{})
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.wg.Add(1)
	go f.watch()
	return f
}

func (f *clusterSource) writes() rediskv.Runner { return clusterWrites{f} }
func (f *clusterSource) reads() rediskv.Runner  { return clusterReads{f} }

func (f *clusterSource) refreshes() rediskv.Runner {
	if f.perKey {
		return clusterWrites{f}
	}
	return clusterReads{f}
}
func (f *clusterSource) epochKey() string    { return "" }
func (f *clusterSource) current(string) bool { return true }

func (f *clusterSource) live() bool {
	l := *f.list.Load()
	for _, sh := range l {
		if !sh.bus.Live() {
			return false
		}
	}
	return len(l) > 0
}

func (f *clusterSource) state() (<-chan struct{}, error) {
	l := *f.list.Load()
	for _, sh := range l {
		if !sh.bus.Live() {
			changed, cause := sh.bus.State()
			if cause != nil {
				cause = fmt.Errorf("master %s: %w", sh.addr, cause)
			}
			return changed, cause
		}
	}
	if len(l) == 0 {
		return f.refreshed(), errors.New("no master of the Cluster known yet")
	}
	return f.refreshed(), nil
}

// refreshed returns a channel closed after the watcher's next pass.
func (f *clusterSource) refreshed() <-chan struct{} {
	ch := make(chan struct{})
	time.AfterFunc(f.interval/4, func() { close(ch) })
	return ch
}

func (f *clusterSource) stats() bus.Stats {
	f.statsMu.Lock()
	defer f.statsMu.Unlock()
	st := f.retired
	for _, sh := range *f.list.Load() {
		st.Add(sh.bus.Stats())
	}
	return st
}

func (f *clusterSource) close() error {
	f.mu.Lock()
	f.closed = true
	shards := slices.Collect(maps.Values(f.shards))
	f.shards = map[string]*shard{}
	f.list.Store(&[]*shard{})
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	for _, sh := range shards {
		sh.close()
	}
	return nil
}

// clusterWrites runs the writes: each goes to the registration
// connection of the master that owns its key, or, while the source does
// not know that master yet, through the Cluster client (the write's echo
// then comes back, which only costs a read). A write that the master
// redirects (MOVED, ASK: a slot moved or moving) or that met a shard
// being replaced is sent again through the Cluster client, which follows
// redirects.
type clusterWrites struct{ f *clusterSource }

func (w clusterWrites) Run(ctx context.Context, call rediskv.Call, done func(*redis.Cmd)) *redis.Cmd {
	return w.f.route(ctx, call, done, func(sh *shard) rediskv.Runner { return sh.tracker })
}

// clusterReads runs the reads: each on the read connection of the master
// that owns its key, as clusterWrites does for writes.
type clusterReads struct{ f *clusterSource }

func (r clusterReads) Run(ctx context.Context, call rediskv.Call, done func(*redis.Cmd)) *redis.Cmd {
	return r.f.route(ctx, call, done, func(sh *shard) rediskv.Runner { return sh.tracker.Reader() })
}

// route sends call to the connection pick chooses on the master that owns
// its key, as clusterWrites describes.
func (f *clusterSource) route(ctx context.Context, call rediskv.Call, done func(*redis.Cmd), pick func(*shard) rediskv.Runner) *redis.Cmd {
	if node, err := f.cc.MasterForKey(ctx, call.Key()); err == nil {
		f.mu.Lock()
		sh := f.shards[node.Options().Addr]
		f.mu.Unlock()
		if sh != nil {
			final := make(chan *redis.Cmd, 1)
			first := pick(sh).Run(ctx, call, func(cmd *redis.Cmd) {
				// A caller that has left is told nothing more, so a write
				// that was not applied is not sent again behind its back
				// (where it could land after the caller's next write).
				if ctx.Err() != nil || !f.resend(cmd.Err()) {
					done(cmd)
					final <- cmd
					return
				}
				f.reload()
				// Not on the tracker's goroutine, which must not wait for
				// another connection; and to the end even if ctx ends.
				go func() {
					cmd := call.Run(context.WithoutCancel(ctx), f.cc)
					done(cmd)
					f.untracked(call)
					final <- cmd
				}()
			})
			select {
			case cmd := <-final:
				return cmd
			case <-ctx.Done():
				return first // ctx's error, or the reply that was not resent
			}
		}
	}
	f.reload()
	cmd := call.Run(ctx, f.cc)
	done(cmd)
	f.untracked(call)
	return cmd
}

// untracked forgets what a call sent through the Cluster client, not a
// shard's connection, brought into L1: in per-key mode no registration
// follows the key on the master that answered (a slot moved there), so
// its next change would not be reported. In broadcast mode every master's
// registration follows the whole prefix.
func (f *clusterSource) untracked(call rediskv.Call) {
	if f.perKey {
		f.forget(strings.TrimPrefix(call.Key(), f.prefix))
	}
}

// resend reports whether a write that failed with err on a shard's
// connection must be sent again through the Cluster client: it was
// redirected, so not applied, or never sent because the shard closed.
func (f *clusterSource) resend(err error) bool {
	if redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "ASK") {
		return true
	}
	if !errors.Is(err, tierstore.ErrClosed) {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.closed
}

func (f *clusterSource) reload() {
	select {
	case f.refresh <- struct{}{}:
	default:
	}
}

// watch keeps one shard per master, checking the topology every quarter
// of the health-check interval and when a write found it moved.
func (f *clusterSource) watch() {
	defer f.wg.Done()
	t := time.NewTicker(f.interval / 4)
	defer t.Stop()
	first := true
	for {
		if f.sync(first) {
			first = false
		}
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		case <-f.refresh:
		}
	}
}

// sync makes the shards match the masters; it reports whether it could
// read them. A change after the first reading is a gap.
func (f *clusterSource) sync(first bool) bool {
	ctx, cancel := context.WithTimeout(f.ctx, f.interval)
	defer cancel()
	f.cc.ReloadState(ctx)
	var mu sync.Mutex
	masters := map[string]*redis.Client{}
	err := f.cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		mu.Lock()
		masters[node.Options().Addr] = node
		mu.Unlock()
		return nil
	})
	if err != nil || len(masters) == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return true
	}
	var removed []*shard
	for addr, sh := range f.shards {
		if masters[addr] == nil {
			delete(f.shards, addr)
			removed = append(removed, sh)
		}
	}
	changed := len(removed) > 0
	for addr, node := range masters {
		if f.shards[addr] != nil {
			continue
		}
		sh, err := f.newShard(addr, node)
		if err != nil {
			continue // tried again on the next pass
		}
		f.shards[addr] = sh
		changed = true
	}
	f.statsMu.Lock()
	for _, sh := range removed {
		f.retired.Add(sh.bus.Stats())
		f.wg.Go(sh.close)
	}
	topology := changed && !first
	if topology {
		f.retired.Gaps++
		f.retired.GapsBy[invalidation.GapTopology]++
	}
	f.list.Store(new(slices.Collect(maps.Values(f.shards))))
	f.statsMu.Unlock()
	if topology {
		// Keys may have moved to masters whose changes were not being
		// followed: forget everything. New shards are not Live yet.
		f.onGap(invalidation.GapTopology, "cluster topology changed")
	}
	return true
}

func (f *clusterSource) newShard(addr string, node *redis.Client) (*shard, error) {
	sh := &shard{addr: addr}
	var err error
	sh.tracker, err = tracking.New(tracking.Config{
		Redis: node, Conns: f.conns, Prefix: f.prefix, BeatPrefix: f.beatPrefix,
		HashTag: func() string { return f.hashTag(addr) }, PerKey: f.perKey,
		OnGap: func(reason string) { sh.bus.Gap(invalidation.GapConnectionLost, reason) }, Log: f.log.With("node", addr),
	})
	if err != nil {
		return nil, err
	}
	sh.bus, err = bus.New(bus.Config{
		Redis: sh.tracker.Subscriber(), Channel: bus.TrackingChannel, KeyPrefix: f.prefix,
		BeatPrefix: f.beatPrefix, BeatReports: sh.tracker.BeatReports(), Beat: sh.tracker.Beat,
		HealthCheckInterval: f.interval, OnMessage: f.onMessage, OnGap: f.onGap, OnProof: f.onProof, OnLive: f.onLive,
		Log: f.log.With("node", addr),
	})
	if err != nil {
		_ = sh.tracker.Close()
		return nil, err
	}
	return sh, nil
}

// hashTag returns a hash tag that routes this store's heartbeat keys to
// the master at addr, by the Cluster client's view of the slots; "" if
// it finds none (the heartbeat then fails, and the master's shard is not
// Live, until the view changes).
func (f *clusterSource) hashTag(addr string) string {
	ctx, cancel := context.WithTimeout(f.ctx, f.interval)
	defer cancel()
	for i := range 4096 {
		tag := "{" + strconv.Itoa(i) + "}"
		node, err := f.cc.MasterForKey(ctx, f.beatPrefix+tag)
		if err != nil {
			return ""
		}
		if node.Options().Addr == addr {
			return tag
		}
	}
	return ""
}

// probeCluster checks every master that answers for CLIENT TRACKING, and
// that reads go to masters: a replica's copy may be older than the
// invalidation that was just applied, and a fill would keep it.
func probeCluster(ctx context.Context, cc *redis.ClusterClient) error {
	if o := cc.Options(); o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
		return fmt.Errorf("a Cluster client that reads from replicas (ReadOnly, RouteByLatency, RouteRandomly) could fill L1 with a value older than an invalidation already applied: %w", tierstore.ErrRefused)
	}
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		return tracking.Probe(ctx, node)
	})
	if errors.Is(err, tierstore.ErrRefused) {
		return err
	}
	return nil
}
