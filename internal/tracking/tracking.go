// Package tracking registers an instance with Redis's server-assisted
// invalidation, so that every change to a key under the prefix, by
// anyone, reaches the instance: CLIENT TRACKING in BCAST mode with the key
// prefix, redirected to a RESP2 subscriber of __redis__:invalidate (the
// bus's subscription).
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
// A lost registration means lost invalidations, so it is a gap: Check,
// which the bus runs before each health-check ping, proves the
// registration is in place and points at the current subscriber, and
// re-makes it when not. The registration connection breaking (a write or
// a check failing on the network) is reported at once through OnGap.
package tracking

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/rediskv"
)

// maxBatch bounds the writes sent in one pipeline.
const maxBatch = 256

// Config configures a Tracker.
type Config struct {
	// Redis is the client whose options the tracker's own connections
	// copy (address, credentials, database, TLS, timeouts), with RESP2.
	// It is never used or closed by the tracker.
	Redis *redis.Client
	// Prefix is the key prefix to track.
	Prefix string
	// EpochKey, if set, names a key whose value identifies the dataset:
	// Check flushes when it changes (SWAPDB, which Redis does not report
	// to trackers) and creates it when absent.
	EpochKey string
	// OnGap is called when the registration was lost under a write (its
	// connection broke): invalidations may have been missed. It runs on
	// the tracker's goroutine and must not wait for a write. It is never
	// called before the first write; a check reports a lost registration
	// by its error instead.
	OnGap func(reason string)
}

// Tracker holds a tracking registration and carries the instance's
// writes on its connection; it is a rediskv.Runner.
type Tracker struct {
	cfg   Config
	sub   *redis.Client // subscriber connections; OnConnect records their ID
	wr    *redis.Client // the registration connection's pool
	subID atomic.Int64  // CLIENT ID of the latest subscriber connection

	ops     chan *op
	checks  chan chan checkResult
	stop    chan struct{} // closed by Close
	stopped chan struct{} // closed when the loop has ended
	once    sync.Once

	// epoch is the value of the epoch key the last check found (see
	// Epoch); stored only by the loop goroutine.
	epoch atomic.Pointer[string]

	// Owned by the loop goroutine.
	conn         *redis.Conn
	registeredTo int64 // subscriber ID the registration redirects to; 0: none
}

// Epoch returns the value of the epoch key that the last check found: a
// value read from Redis together with another epoch (rediskv's
// GetWithEpoch) is from another dataset and must not be cached, even if
// the dataset is swapped back before the next check. "" before the first
// check, or without an EpochKey.
func (t *Tracker) Epoch() string {
	if p := t.epoch.Load(); p != nil {
		return *p
	}
	return ""
}

// New returns a Tracker and starts its goroutine. It dials nothing.
func New(cfg Config) (*Tracker, error) {
	if cfg.Redis == nil || cfg.Prefix == "" {
		return nil, errors.New("tracking: Config.Redis and Config.Prefix are required")
	}
	if cfg.OnGap == nil {
		cfg.OnGap = func(string) {}
	}
	t := &Tracker{
		cfg: cfg, ops: make(chan *op), checks: make(chan chan checkResult),
		stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	// RESP2: go-redis handles RESP3 invalidation pushes itself (and
	// swallows them), while a RESP2 subscriber receives them as messages;
	// and a RESP2 registration connection gets no pushes at all.
	subOpt := *cfg.Redis.Options()
	subOpt.Protocol = 2
	userOnConnect := subOpt.OnConnect
	subOpt.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if userOnConnect != nil {
			if err := userOnConnect(ctx, cn); err != nil {
				return err
			}
		}
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			return err
		}
		t.subID.Store(id)
		return nil
	}
	wrOpt := *cfg.Redis.Options()
	wrOpt.Protocol = 2
	wrOpt.PoolSize, wrOpt.MinIdleConns, wrOpt.MaxIdleConns = 1, 0, 1
	// Every write of the instance waits behind the one in flight, which
	// no caller's context bounds: the socket's timeouts must, even when
	// the client has none (then go-redis's default, 5s).
	wrOpt.ReadTimeout, wrOpt.WriteTimeout = max(wrOpt.ReadTimeout, 0), max(wrOpt.WriteTimeout, 0)
	t.sub, t.wr = redis.NewClient(&subOpt), redis.NewClient(&wrOpt)
	go t.loop()
	return t, nil
}

// Subscriber returns the client the bus must subscribe with: its
// connections tell the tracker their ID, which the registration
// redirects to.
func (t *Tracker) Subscriber() *redis.Client { return t.sub }

// Probe reports an error wrapping tierstore.ErrRefused if Redis refuses
// CLIENT TRACKING to this client (an ACL, a provider that disables it, a
// server without it), nil if it accepts it or cannot be reached.
func Probe(ctx context.Context, rdb redis.UniversalClient) error {
	// Each CLIENT subcommand the tracker uses, as an ACL may allow some.
	for _, args := range [][]any{{"CLIENT", "TRACKING", "OFF"}, {"CLIENT", "TRACKINGINFO"}, {"CLIENT", "ID"}} {
		err := rdb.Do(ctx, args...).Err()
		var reply redis.Error
		if err != nil && errors.As(err, &reply) {
			return fmt.Errorf("%v refused (%v): server-assisted invalidation needs it; set Config.OwnWritesOnly to run without it: %w", args[:2], err, tierstore.ErrRefused)
		}
		if err != nil {
			return nil // unreachable: cannot tell
		}
	}
	return nil
}

// op is one write on the registration connection.
type op struct {
	call  rediskv.Call
	done  func(*redis.Cmd)
	cmd   *redis.Cmd
	reply chan struct{} // closed once cmd is set and done has run
}

// Run implements rediskv.Runner: the call joins the next pipeline on the
// registration connection.
func (t *Tracker) Run(ctx context.Context, call rediskv.Call, done func(*redis.Cmd)) *redis.Cmd {
	o := &op{call: call, done: done, reply: make(chan struct{})}
	if err := ctx.Err(); err != nil {
		return failed(o, err) // select would pick at random among ready cases
	}
	select {
	case t.ops <- o:
	case <-ctx.Done():
		return failed(o, ctx.Err())
	case <-t.stopped:
		return failed(o, tierstore.ErrClosed)
	}
	select {
	case <-o.reply:
		return o.cmd
	case <-ctx.Done():
		// Sent or about to be: the loop calls done with the outcome.
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ctx.Err())
		return cmd
	}
}

// failed ends an op that was never sent.
func failed(o *op, err error) *redis.Cmd {
	o.cmd = redis.NewCmd(context.Background())
	o.cmd.SetErr(err)
	o.done(o.cmd)
	return o.cmd
}

type checkResult struct {
	flush string // non-empty: L1 must be flushed (why), then may serve
	err   error
}

// Check makes sure the registration is in place and redirects to the
// current subscriber connection, re-making it if not, and that the
// dataset is the one seen last (EpochKey). A non-empty flush says that
// invalidations may have been missed before this point (a new
// registration, another dataset): the caller must flush what it cached
// before serving again. An error means the registration could not be
// checked or made: the caller must not renew its lease.
func (t *Tracker) Check(ctx context.Context) (flush string, err error) {
	ch := make(chan checkResult, 1)
	select {
	case t.checks <- ch:
	case <-ctx.Done():
		return "", ctx.Err()
	case <-t.stopped:
		return "", tierstore.ErrClosed
	}
	select {
	case r := <-ch:
		return r.flush, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Close ends the registration (its connection is closed, not pooled) and
// the goroutine. Writes in flight complete first.
func (t *Tracker) Close() error {
	t.once.Do(func() { close(t.stop) })
	<-t.stopped
	return errors.Join(t.sub.Close(), t.wr.Close())
}

func (t *Tracker) loop() {
	defer close(t.stopped)
	batch := make([]*op, 0, maxBatch)
	for {
		select {
		case <-t.stop:
			t.disconnect()
			return
		case ch := <-t.checks:
			flush, err := t.check()
			ch <- checkResult{flush, err}
		case o := <-t.ops:
			batch = append(batch[:0], o)
			// The callers answered by the last batch are waking up now:
			// yielding once lets them join this one, instead of each
			// waiting for its own round trip.
			runtime.Gosched()
		more:
			for len(batch) < maxBatch {
				select {
				case o := <-t.ops:
					batch = append(batch, o)
				default:
					break more
				}
			}
			t.write(batch)
			clear(batch)
		}
	}
}

func (t *Tracker) connection() *redis.Conn {
	if t.conn == nil {
		// Ephemeral: a connection that carried CLIENT TRACKING must never
		// go back to a pool.
		t.conn = t.wr.EphemeralConn()
		t.registeredTo = 0
	}
	return t.conn
}

func (t *Tracker) disconnect() {
	if t.conn != nil {
		_ = t.conn.Close()
		t.conn, t.registeredTo = nil, 0
	}
}

// broken reports whether err leaves the connection unusable or in doubt:
// anything but an error reply from Redis, and READONLY (the server became
// a replica: a new connection finds the master, through a Sentinel
// client's dialer), after which go-redis marks the connection bad
// ("Conn is in a bad state", which wraps the reply) for good.
func broken(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	if redis.HasErrorPrefix(err, "READONLY") || strings.HasPrefix(err.Error(), "redis: Conn is in a bad state") {
		return true
	}
	var reply redis.Error
	return !errors.As(err, &reply)
}

// lost drops a broken registration connection. report says whether to
// call OnGap: not for a check, whose caller learns it from the error.
func (t *Tracker) lost(err error, report bool) {
	registered := t.registeredTo != 0
	t.disconnect()
	if registered && report {
		t.cfg.OnGap("tracking connection lost: " + err.Error())
	}
}

// write sends a batch in one pipeline. Without a caller's context: a
// write once sent runs to its reply (or go-redis's timeouts), so that its
// outcome, which done reports, is known.
func (t *Tracker) write(batch []*op) {
	ctx := context.Background()
	conn := t.connection()
	_, _ = conn.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, o := range batch {
			if o.call.Script == nil {
				o.cmd = p.Do(ctx, o.call.Args...)
			} else {
				o.cmd = o.call.Script.EvalSha(ctx, p, o.call.Keys, o.call.Args...)
			}
		}
		return nil
	})
	var lostErr error
	for _, o := range batch {
		if err := o.cmd.Err(); broken(err) {
			lostErr = err
		} else if redis.HasErrorPrefix(err, "NOSCRIPT") && o.call.Script != nil && lostErr == nil {
			// The script cache was flushed: send the source.
			o.cmd = o.call.Script.Eval(ctx, conn, o.call.Keys, o.call.Args...)
			if broken(o.cmd.Err()) {
				lostErr = o.cmd.Err()
			}
		}
	}
	if lostErr != nil {
		t.lost(lostErr, true)
	}
	for _, o := range batch {
		o.done(o.cmd)
		close(o.reply)
	}
}

func (t *Tracker) check() (flush string, err error) {
	defer func() {
		if broken(err) {
			t.lost(err, false)
		}
	}()
	want := t.subID.Load()
	if want == 0 {
		return "", errors.New("tracking: no subscriber connection yet")
	}
	ctx := context.Background()
	conn := t.connection()
	if t.registeredTo == want {
		ok, err := t.registered(ctx, conn, want)
		if err != nil {
			return "", err
		}
		if !ok {
			t.registeredTo = 0
		}
	}
	if t.registeredTo != want {
		// OFF first: ON again with the same prefix fails ("overlaps").
		cmds, err := conn.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Do(ctx, "CLIENT", "TRACKING", "OFF")
			p.Do(ctx, "CLIENT", "TRACKING", "ON", "REDIRECT", want, "BCAST", "PREFIX", t.cfg.Prefix, "NOLOOP")
			return nil
		})
		if err != nil {
			for _, c := range cmds {
				if c.Err() != nil {
					return "", fmt.Errorf("tracking: %w", c.Err())
				}
			}
			return "", fmt.Errorf("tracking: %w", err)
		}
		t.registeredTo = want
		flush = "tracking registered"
	}
	if t.cfg.EpochKey != "" {
		// A plain GET first: a full Redis under noeviction refuses any
		// SET, even one that would change nothing, and L1 must keep
		// serving then (reads work, nothing changed).
		old, err := conn.Get(ctx, t.cfg.EpochKey).Result()
		if errors.Is(err, redis.Nil) {
			mine := newEpoch()
			old, err = conn.SetArgs(ctx, t.cfg.EpochKey, mine, redis.SetArgs{Mode: "NX", Get: true}).Result()
			if errors.Is(err, redis.Nil) {
				old, err = mine, nil // created it
			}
		}
		if err != nil {
			return "", fmt.Errorf("tracking: epoch: %w", err)
		}
		if last := t.Epoch(); old != last {
			if last != "" && flush == "" {
				flush = "dataset replaced (epoch key changed)"
			}
			t.epoch.Store(&old)
		}
	}
	return flush, nil
}

// registered reports whether the connection's registration is on, in
// BCAST mode, and redirects to want with no broken redirect.
func (t *Tracker) registered(ctx context.Context, conn *redis.Conn, want int64) (bool, error) {
	v, err := conn.Do(ctx, "CLIENT", "TRACKINGINFO").Slice()
	if err != nil {
		return false, fmt.Errorf("tracking: %w", err)
	}
	var on, bcast, broke bool
	var redirect int64
	for i := 0; i+1 < len(v); i += 2 {
		switch v[i] {
		case "flags":
			flags, _ := v[i+1].([]any)
			for _, f := range flags {
				switch f {
				case "on":
					on = true
				case "bcast":
					bcast = true
				case "broken_redirect":
					broke = true
				}
			}
		case "redirect":
			redirect, _ = v[i+1].(int64)
		}
	}
	return on && bcast && !broke && redirect == want, nil
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
