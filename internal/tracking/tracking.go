// Package tracking registers an instance with Redis's server-assisted
// invalidation, so that every change to a key under the prefix, by
// anyone, reaches the instance: CLIENT TRACKING in BCAST mode with the key
// prefix, redirected to a RESP2 subscriber of __redis__:invalidate (the
// bus's subscription). It also makes the heartbeats that prove the whole
// path works (see Beat).
//
// The registration lives on one connection, which also carries every write
// of the instance, pipelined: with NOLOOP, Redis then spares the instance
// the echoes of exactly its own writes (BCAST reports a key to a NOLOOP
// client unless that client made the key's last change of the event-loop
// cycle), so a writer keeps the value it wrote without reading it back.
// Counting echoes instead would be unsound, because BCAST merges the
// changes of one cycle into one message. Only plain commands and
// MULTI/EXEC count as the connection's own: Redis 7.0 attributes a
// script's writes to its scripting client, so their echoes do come back.
//
// A lost registration means lost invalidations, so it is a gap: the
// registration connection breaking (a write or a registration failing on
// the network) is reported at once through OnGap; a registration lost any
// other way stops the heartbeats, which the bus notices.
package tracking

import (
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

// Tracker holds a tracking registration, carries the instance's writes
// on its connection (it is a rediskv.Runner) and makes heartbeats.
type Tracker struct {
	cfg   Config
	sub   *redis.Client // subscriber connections; OnConnect records their ID
	wr    *redis.Client // the registration connection's client
	beats *redis.Client // heartbeats and the epoch key
	pipe  *rediskv.Pipe // the registration connection
	subID atomic.Int64  // CLIENT ID of the latest subscriber connection

	// epoch is the value of the epoch key the last beat found (see
	// Epoch).
	epoch atomic.Pointer[string]

	// registeredTo is the subscriber ID the registration redirects to (0:
	// none); stored only by the pipe's goroutine (in Do and onLost), so
	// that a beat needs no trip through a busy write pipeline to see it.
	registeredTo atomic.Int64

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
	t.wr = cfg.Conns.Client(cfg.Redis.Options(), func(o *redis.Options) {
		o.Protocol = 2
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
		// Every write of the instance waits behind the one in flight, which
		// no caller's context bounds: the socket's timeouts must, even when
		// the client has none (then go-redis's default, 3s).
		o.ReadTimeout, o.WriteTimeout = max(o.ReadTimeout, 0), max(o.WriteTimeout, 0)
	})
	t.beats = cfg.Conns.Client(cfg.Redis.Options(), func(o *redis.Options) {
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
	})
	t.pipe = rediskv.NewPipe(t.wr, t.onLost)
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

// onLost runs on the pipe's goroutine when the registration connection
// broke.
func (t *Tracker) onLost(err error) {
	if t.registeredTo.Swap(0) != 0 {
		t.cfg.OnGap("tracking connection lost: " + err.Error())
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
func (t *Tracker) Beat(ctx context.Context, seq uint64) (flush string, err error) {
	want := t.subID.Load()
	if want == 0 {
		return "", errors.New("tracking: no subscriber connection yet")
	}
	if t.registeredTo.Load() == want {
		// In place, as far as this instance knows; if Redis dropped it
		// some other way, this beat never arrives, and the bus replaces
		// the subscription, which changes want.
		return t.beat(ctx, seq)
	}
	err = t.pipe.Do(ctx, func(ctx context.Context, conn *redis.Conn) error {
		if t.registeredTo.Load() == want {
			return nil
		}
		// OFF first: ON again with the same prefix fails ("overlaps").
		cmds, err := conn.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Do(ctx, "CLIENT", "TRACKING", "OFF")
			p.Do(ctx, "CLIENT", "TRACKING", "ON", "REDIRECT", want, "BCAST",
				"PREFIX", t.cfg.Prefix, "PREFIX", t.cfg.BeatPrefix, "NOLOOP")
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
		t.registeredTo.Store(want)
		flush = "tracking registered"
		return nil
	})
	if err != nil {
		if strings.Contains(err.Error(), "redirect to does not exist") {
			// The connection whose ID OnConnect recorded last is gone
			// (one replaced while another was dialling): a new
			// subscription records the live one.
			return "", fmt.Errorf("tracking: register: %w: %w", bus.ErrResubscribe, err)
		}
		return "", fmt.Errorf("tracking: register: %w", err)
	}
	if flush != "" {
		t.cfg.Log.Info("tracking registered", "redirect", want)
	}
	epochFlush, err := t.beat(ctx, seq)
	if flush == "" {
		flush = epochFlush
	}
	return flush, err
}

// beat changes the heartbeat key of seq and reads the epoch key. The key
// of the last beat is renamed (RENAME, which a full Redis under
// noeviction still runs, unlike SET) so that an instance has one beat key
// at a time and each beat's name is new; when there is none, it is set.
func (t *Tracker) beat(ctx context.Context, seq uint64) (flush string, err error) {
	name := t.cfg.BeatPrefix + t.cfg.HashTag() + ":" + strconv.FormatUint(seq, 10)
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
		return "", fmt.Errorf("tracking: heartbeat: %w", err)
	}
	t.lastBeat.Store(&name)
	if epoch == nil {
		return "", nil
	}
	return t.checkEpoch(ctx, epoch)
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
func (t *Tracker) checkEpoch(ctx context.Context, get *redis.StringCmd) (flush string, err error) {
	old, err := get.Result()
	if errors.Is(err, redis.Nil) {
		mine := newEpoch()
		old, err = t.beats.SetArgs(ctx, t.cfg.EpochKey, mine, redis.SetArgs{Mode: "NX", Get: true}).Result()
		if errors.Is(err, redis.Nil) {
			old, err = mine, nil // created it
		}
	}
	if err != nil {
		return "", fmt.Errorf("tracking: epoch: %w", err)
	}
	if last := t.Epoch(); old != last {
		if last != "" {
			flush = "dataset replaced (epoch key changed)"
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
	if last := t.last(); last != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = t.beats.Del(ctx, last).Err()
		cancel()
	}
	return errors.Join(t.sub.Close(), t.wr.Close(), t.beats.Close())
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
