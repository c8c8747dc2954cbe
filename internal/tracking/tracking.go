// Package tracking registers an instance with Redis's server-assisted
// invalidation, so that every change to a key the instance may hold, by
// anyone, reaches it: CLIENT TRACKING redirected to a RESP2 subscriber of
// __redis__:invalidate (the bus's subscription). It also makes the
// heartbeats that prove the whole path works (see Beat).
//
// An instance has two connections to each node: one carries its writes,
// the other its reads, so that a write Redis holds (CLIENT PAUSE WRITE)
// does not hold up the reads. In broadcast mode the writes' connection is
// registered for the key prefix (BCAST PREFIX): Redis reports every change
// under it. In per-key mode both are registered without BCAST: Redis
// reports a change of a key only to the connections that read it since
// its last change, and forgets the key for all of them when it reports
// it. Reads inside scripts count as reads of the calling connection, so
// the write scripts end by reading their key: the writer then keeps
// following what it wrote (a key it merely wrote would not be reported).
//
// In broadcast mode the writes' connection is NOLOOP: Redis spares it the
// reports of its own plain writes, so a writer keeps the value it wrote
// without reading it back (Redis 7.0 still reports a script's writes back
// to the writer; fixed in 7.2). In per-key mode neither connection is
// NOLOOP, because Redis drops a NOLOOP connection's report of a key it
// stops following to bound its tracking table (tracking-table-max-keys)
// when that connection's own command triggered the eviction: the key
// would silently no longer be reported. So a write of a key this instance
// followed is reported back to it, once per connection that followed
// it; the caller recognises its own write by reading the key again, never
// by counting reports (Redis reports a key's changes of one event-loop
// cycle as one).
//
// A lost registration means lost invalidations, so it is a gap: either
// connection breaking (a call failing on the network) is reported at once
// through OnGap; a registration lost any other way stops the heartbeats,
// which the bus notices.
package tracking

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/bus"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/statelog"
	"github.com/tierstore/tierstore/invalidation"
)

// beatTTL is how long a heartbeat key outlives its instance's last beat.
const beatTTL = time.Minute

// Config configures a Tracker.
type Config struct {
	// Redis is the client whose options the tracker's own connections
	// copy (address, credentials, database, TLS, timeouts), with RESP2.
	// It is never used or closed by the tracker.
	Redis *redis.Client
	// Conns owns the tracker's connections; required.
	Conns *rediskv.Conns
	// Prefix is the key prefix to track.
	Prefix string
	// BeatPrefix is the prefix of this instance's heartbeat keys,
	// registered beside Prefix; neither may be a prefix of the other
	// (Redis refuses overlapping prefixes). See BeatPrefix.
	BeatPrefix string
	// HashTag, if set, returns the hash tag ("{…}") that routes a beat
	// key to the master this tracker follows (a Cluster); "" if none is
	// known.
	HashTag func() string
	// EpochKey, if set, names a key whose value identifies the dataset:
	// Beat reports a flush when it changes (SWAPDB, which Redis does not
	// report to trackers) and creates it when absent.
	EpochKey string
	// PerKey registers both connections for the keys they read (see the
	// package doc); otherwise the writes' connection is registered for
	// Prefix (BCAST).
	PerKey bool
	// OnGap is called when the registration was lost under a write (its
	// connection broke): invalidations may have been missed. It runs on
	// the tracker's goroutine and must not wait for a write.
	OnGap func(reason string)
	// Log records re-registrations; nil: silent.
	Log *statelog.Logger
}

// BeatPrefix returns the prefix of heartbeat keys for an instance id and
// a data prefix: the data prefix with its last byte changed, so that
// neither is a prefix of the other, then "heartbeat:" and id
// ("tierstore:" gives "tierstore;heartbeat:<id>").
func BeatPrefix(prefix, id string) string {
	last := prefix[len(prefix)-1] ^ 1
	return prefix[:len(prefix)-1] + string([]byte{last}) + "heartbeat:" + id + ":"
}

// Tracker holds the tracking registrations, carries the instance's
// writes (it is a rediskv.Runner) and reads (Reader) on their
// connections, and makes heartbeats.
type Tracker struct {
	cfg    Config
	sub    *redis.Client // subscriber connections; OnConnect records their ID
	wr, rd *redis.Client // the writes' and the reads' connections' clients
	beats  *redis.Client // heartbeats and the epoch key
	pipe   *rediskv.Pipe // the writes' connection
	reader *rediskv.Pipe // the reads' connection
	subID  atomic.Int64  // CLIENT ID of the latest subscriber connection

	// epoch is the value of the epoch key the last beat found (see
	// Epoch).
	epoch atomic.Pointer[string]

	// registeredTo and readerTo are the subscriber IDs the registrations
	// of the writes' and the reads' connections redirect to (0: none);
	// stored only by their pipe's goroutine (in Do and onLost), so that a
	// beat needs no trip through a busy pipeline to see them. readerTo
	// stays 0 in broadcast mode, where the reads' connection is not
	// registered.
	registeredTo, readerTo atomic.Int64

	// lastBeat is the key of the last beat Redis acknowledged ("": none):
	// written by Beat's caller, read by Close too (a Cluster's watcher may
	// close a tracker whose bus still beats).
	lastBeat atomic.Pointer[string]
}

// Epoch returns the value of the epoch key that the last beat found: a
// value read from Redis together with another epoch is from another
// dataset and must not be cached, even if the dataset is swapped back
// before the next beat. "" before the first beat, or without an EpochKey.
func (t *Tracker) Epoch() string {
	if p := t.epoch.Load(); p != nil {
		return *p
	}
	return ""
}

// New returns a Tracker and starts its goroutine. It dials nothing.
func New(cfg Config) (*Tracker, error) {
	if cfg.Redis == nil || cfg.Prefix == "" || cfg.BeatPrefix == "" || cfg.Conns == nil {
		return nil, errors.New("tracking: Config.Redis, Conns, Prefix and BeatPrefix are required")
	}
	if strings.HasPrefix(cfg.Prefix, cfg.BeatPrefix) || strings.HasPrefix(cfg.BeatPrefix, cfg.Prefix) {
		return nil, errors.New("tracking: Prefix and BeatPrefix overlap")
	}
	if cfg.OnGap == nil {
		cfg.OnGap = func(string) {}
	}
	if cfg.HashTag == nil {
		cfg.HashTag = func() string { return "" }
	}
	t := &Tracker{cfg: cfg}
	// RESP2: go-redis handles RESP3 invalidation pushes itself (and
	// swallows them), while a RESP2 subscriber receives them as messages;
	// and a RESP2 registration connection gets no pushes at all.
	t.sub = cfg.Conns.Client(cfg.Redis.Options(), func(o *redis.Options) {
		o.Protocol = 2
		userOnConnect := o.OnConnect
		o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
			if userOnConnect != nil {
				if err := userOnConnect(ctx, cn); err != nil {
					return err
				}
			}
			id, err := cn.ClientID(ctx).Result()
			if err != nil {
				return fmt.Errorf("tracking: CLIENT ID: %w", err)
			}
			t.subID.Store(id)
			return nil
		}
	})
	pipeClient := func(o *redis.Options) {
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
		// Every call of the instance waits behind the ones in flight,
		// which no caller's context bounds: the socket's timeouts must,
		// even when the client has none (then go-redis's default, 3s).
		o.ReadTimeout, o.WriteTimeout = max(o.ReadTimeout, 0), max(o.WriteTimeout, 0)
	}
	t.wr = cfg.Conns.Client(cfg.Redis.Options(), pipeClient)
	t.rd = cfg.Conns.Client(cfg.Redis.Options(), pipeClient)
	t.beats = cfg.Conns.Client(cfg.Redis.Options(), func(o *redis.Options) {
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
	})
	t.pipe = rediskv.NewPipe(t.wr, func(err error) { t.onLost(&t.registeredTo, "tracking connection", err) })
	t.reader = rediskv.NewPipe(t.rd, func(err error) { t.onLost(&t.readerTo, "tracked reads' connection", err) })
	return t, nil
}

// Subscriber returns the client the bus must subscribe with: its
// connections tell the tracker their ID, which the registration
// redirects to.
func (t *Tracker) Subscriber() *redis.Client { return t.sub }

// Run implements rediskv.Runner: the call joins the next pipeline on the
// registration connection.
func (t *Tracker) Run(ctx context.Context, call rediskv.Call, done func(*redis.Cmd)) *redis.Cmd {
	return t.pipe.Run(ctx, call, done)
}

// Reader returns the Runner of the instance's reads: in per-key mode,
// on a registered connection, so that Redis reports later changes of
// what they read.
func (t *Tracker) Reader() rediskv.Runner { return t.reader }

// onLost runs on a pipe's goroutine when its connection broke.
func (t *Tracker) onLost(to *atomic.Int64, what string, err error) {
	if to.Swap(0) != 0 {
		t.cfg.OnGap(what + " lost: " + err.Error())
	}
}

// Probe reports an error wrapping tierstore.ErrRefused if Redis refuses
// CLIENT TRACKING to this client (an ACL, a provider that disables it, a
// server without it) or its credentials, nil if it accepts it, cannot be
// reached or cannot serve for now (LOADING, BUSY: not a refusal).
func Probe(ctx context.Context, rdb redis.UniversalClient) error {
	// Each CLIENT subcommand the tracker uses, as an ACL may allow some.
	for _, args := range [][]any{{"CLIENT", "TRACKING", "OFF"}, {"CLIENT", "ID"}} {
		err := rdb.Do(ctx, args...).Err()
		if err == nil {
			continue
		}
		if !errors.Is(rediskv.Wrap(ctx, "", err), tierstore.ErrRefused) {
			return nil // unreachable or busy: cannot tell
		}
		if auth(err) {
			return fmt.Errorf("auth: %v: %w", err, tierstore.ErrRefused)
		}
		return fmt.Errorf("%v refused (%v): server-assisted invalidation needs it; set Config.Invalidation to invalidation.OwnWrites to run without it: %w", args[:2], err, tierstore.ErrRefused)
	}
	return nil
}

// auth reports whether err is Redis refusing the connection's
// credentials.
func auth(err error) bool {
	return redis.HasErrorPrefix(err, "NOAUTH") || redis.HasErrorPrefix(err, "WRONGPASS") ||
		strings.Contains(err.Error(), "NOAUTH") || strings.Contains(err.Error(), "WRONGPASS")
}

// Beat makes sure the registration is in place and redirects to the
// current subscriber connection (re-making it if not), then changes the
// heartbeat key of seq through a connection of its own, whose change
// Redis must report to the subscriber as any other: its arrival there
// proves the whole path (registration, redirect, subscription,
// permissions) carried every change made before Beat was called. It also
// reads the epoch key.
//
// A non-empty flush says that invalidations may have been missed before
// this point (a new registration, another dataset): the caller must flush
// what it cached, and must not take this beat's arrival as proof. An error
// means the beat was not (or may not have been) made.
func (t *Tracker) Beat(ctx context.Context, seq uint64) (flush bus.Flush, err error) {
	want := t.subID.Load()
	if want == 0 {
		return bus.Flush{}, errors.New("tracking: no subscriber connection yet")
	}
	flush, err = t.register(ctx, t.pipe, &t.registeredTo, want, !t.cfg.PerKey)
	if err == nil && t.cfg.PerKey {
		var again bus.Flush
		again, err = t.register(ctx, t.reader, &t.readerTo, want, false)
		flush = cmp.Or(flush, again)
	}
	if err != nil {
		if strings.Contains(err.Error(), "redirect to does not exist") {
			// The connection whose ID OnConnect recorded last is gone
			// (one replaced while another was dialling): a new
			// subscription records the live one.
			return bus.Flush{}, fmt.Errorf("tracking: register: %w: %w", bus.ErrResubscribe, err)
		}
		return bus.Flush{}, fmt.Errorf("tracking: register: %w", err)
	}
	epochFlush, err := t.beat(ctx, seq)
	if flush == (bus.Flush{}) {
		flush = epochFlush
	}
	return flush, err
}

// register makes sure the registration of pipe's connection redirects to
// the subscriber want, making it if not ("tracking registered": what was
// cached before must go). With bcast, the connection follows the prefix
// (broadcast mode); without, what it reads (per-key mode).
func (t *Tracker) register(ctx context.Context, pipe *rediskv.Pipe, to *atomic.Int64, want int64, bcast bool) (flush bus.Flush, err error) {
	if to.Load() == want {
		// In place, as far as this instance knows; if Redis dropped it
		// some other way, this beat never arrives, and the bus replaces
		// the subscription, which changes want.
		return bus.Flush{}, nil
	}
	args := []any{"CLIENT", "TRACKING", "ON", "REDIRECT", want}
	if bcast {
		args = append(args, "BCAST", "PREFIX", t.cfg.Prefix, "PREFIX", t.cfg.BeatPrefix, "NOLOOP")
	}
	err = pipe.Do(ctx, func(ctx context.Context, conn *redis.Conn) error {
		if to.Load() == want {
			return nil
		}
		// OFF first: ON again with the same prefix fails ("overlaps").
		cmds, err := conn.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Do(ctx, "CLIENT", "TRACKING", "OFF")
			p.Do(ctx, args...)
			return nil
		})
		for _, c := range cmds {
			if c.Err() != nil {
				return c.Err()
			}
		}
		if err != nil {
			return err
		}
		to.Store(want)
		flush = bus.Flush{Cause: invalidation.GapReregistered, Reason: "tracking registered"}
		return nil
	})
	if err == nil && flush != (bus.Flush{}) {
		t.cfg.Log.Info("tracking registered", "redirect", want, "per-key", t.cfg.PerKey)
	}
	return flush, err
}

// beat changes the heartbeat key of seq and reads the epoch key. The key
// of the last beat is renamed (RENAME, which a full Redis under
// noeviction still runs, unlike SET) so that an instance has one beat key
// at a time and each beat's name is new; when there is none, it is set.
func (t *Tracker) beat(ctx context.Context, seq uint64) (flush bus.Flush, err error) {
	name := t.cfg.BeatPrefix + t.cfg.HashTag() + ":" + strconv.FormatUint(seq, 10)
	if t.cfg.PerKey {
		// Each registered connection reads the new name first, so that
		// Redis reports its change to both: the bus waits for both
		// reports (BeatReports), behind whatever each connection read.
		if err := t.follow(ctx, name); err != nil {
			return bus.Flush{}, fmt.Errorf("tracking: heartbeat: %w", err)
		}
	}
	var move *redis.StatusCmd
	var epoch *redis.StringCmd
	_, err = t.beats.Pipelined(ctx, func(p redis.Pipeliner) error {
		if last := t.last(); last != "" && sameTag(last, name) {
			move = p.Rename(ctx, last, name)
			p.PExpire(ctx, name, beatTTL)
		} else {
			move = p.SetArgs(ctx, name, "1", redis.SetArgs{TTL: beatTTL})
		}
		if t.cfg.EpochKey != "" {
			epoch = p.Get(ctx, t.cfg.EpochKey)
		}
		return nil
	})
	if moveErr := move.Err(); moveErr != nil && redis.HasErrorPrefix(moveErr, "ERR no such key") {
		// The last beat's key expired, was evicted or flushed.
		moveErr = t.beats.SetArgs(ctx, name, "1", redis.SetArgs{TTL: beatTTL}).Err()
		err = moveErr
		if err == nil && epoch != nil {
			err = epoch.Err()
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		t.lastBeat.Store(nil)
		return bus.Flush{}, fmt.Errorf("tracking: heartbeat: %w", err)
	}
	t.lastBeat.Store(&name)
	if epoch == nil {
		return bus.Flush{}, nil
	}
	return t.checkEpoch(ctx, epoch)
}

// follow reads key on both registered connections, concurrently, each
// behind the calls already queued on it.
func (t *Tracker) follow(ctx context.Context, key string) error {
	errs := make(chan error, 2)
	for _, p := range []*rediskv.Pipe{t.pipe, t.reader} {
		go func() {
			errs <- p.Run(ctx, rediskv.Call{Args: []any{"PTTL", key}}, func(*redis.Cmd) {}).Err()
		}()
	}
	return errors.Join(<-errs, <-errs)
}

// BeatReports is how many reports of one heartbeat prove it (see
// bus.Config.BeatReports): one per registered connection.
func (t *Tracker) BeatReports() int {
	if t.cfg.PerKey {
		return 2
	}
	return 1
}

// last returns the key of the last beat Redis acknowledged, or "".
func (t *Tracker) last() string {
	if p := t.lastBeat.Load(); p != nil {
		return *p
	}
	return ""
}

// sameTag reports whether two beat keys carry the same hash tag, so that
// one can be renamed to the other on a Cluster.
func sameTag(a, b string) bool {
	i, j := strings.LastIndexByte(a, ':'), strings.LastIndexByte(b, ':')
	return a[:i] == b[:j]
}

// checkEpoch reads the epoch GET's reply: a plain GET first, since a full
// Redis under noeviction refuses any SET, even one that would change
// nothing, and L1 must keep serving then (reads work, nothing changed).
func (t *Tracker) checkEpoch(ctx context.Context, get *redis.StringCmd) (flush bus.Flush, err error) {
	old, err := get.Result()
	if errors.Is(err, redis.Nil) {
		mine := newEpoch()
		old, err = t.beats.SetArgs(ctx, t.cfg.EpochKey, mine, redis.SetArgs{Mode: "NX", Get: true}).Result()
		if errors.Is(err, redis.Nil) {
			old, err = mine, nil // created it
		}
	}
	if err != nil {
		return bus.Flush{}, fmt.Errorf("tracking: epoch: %w", err)
	}
	if last := t.Epoch(); old != last {
		if last != "" {
			flush = bus.Flush{Cause: invalidation.GapFlushed, Reason: "dataset replaced (epoch key changed)"}
		}
		t.epoch.Store(&old)
	}
	return flush, nil
}

// Close ends the registration (its connection is closed, not pooled) and
// the goroutine. Writes in flight complete first: the caller bounds that
// with Conns.Abort.
func (t *Tracker) Close() error {
	t.pipe.Close()
	t.reader.Close()
	if last := t.last(); last != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = t.beats.Del(ctx, last).Err()
		cancel()
	}
	return errors.Join(t.sub.Close(), t.wr.Close(), t.rd.Close(), t.beats.Close())
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
