// Package bus is the invalidation bus that keeps in-process caches
// coherent: the message format, the subscription with reconnect and gap
// detection, and the health-check lease that bounds staleness when
// messages may be lost. It is mechanism, internal to tiered; the contract
// users see is described in package invalidation.
package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultHealthCheckInterval is the default Config.HealthCheckInterval.
const DefaultHealthCheckInterval = time.Second

// MinHealthCheckInterval is the smallest Config.HealthCheckInterval: pings
// go out every quarter of it, and a lease much shorter than a round trip
// would never hold.
const MinHealthCheckInterval = 4 * time.Millisecond

// Config configures a Bus. Zero fields take the documented defaults.
type Config struct {
	// Redis is the client to subscribe with; required. Never closed by Bus.
	Redis redis.UniversalClient
	// Channel is the pub/sub channel; required. On TrackingChannel the
	// messages are Redis's invalidations (key names, or a null for a
	// flush), else this package's own messages.
	Channel string
	// KeyPrefix is stripped from the keys of Redis's invalidations;
	// keys without it are ignored.
	KeyPrefix string
	// Check, if set, runs before every ping, and must succeed for the
	// ping to renew the lease: it proves that what feeds the channel
	// (a tracking registration) was in place when the ping's time was
	// taken. A non-empty flush reports that messages may have been lost
	// before it (a gap). An error is a gap too, and no ping is sent.
	Check func(ctx context.Context) (flush string, err error)
	// ID identifies this instance in its messages. Default: NewID().
	// Set it when the handlers need it before New returns.
	ID ID
	// HealthCheckInterval bounds how stale a cache fed by this bus can get
	// when messages are lost: the bus is Live only while it has proof
	// (a PING answered on the subscription) that it received every message
	// published up to HealthCheckInterval ago. Pings go out four times per
	// interval. Default DefaultHealthCheckInterval (1s).
	HealthCheckInterval time.Duration
	// OnMessage is called, in publication order, for every well-formed
	// message, including this bus's own (compare Message.Sender with ID).
	OnMessage func(Message)
	// OnGap is called whenever messages may have been lost (the
	// subscription was lost or re-made, the lease expired, a message
	// could not be read): the receiver must forget everything the
	// messages were protecting. reason says why.
	OnGap func(reason string)
}

// Stats is a snapshot of a Bus's counters.
type Stats struct {
	Messages  uint64 // well-formed messages received, own included
	Malformed uint64 // payloads that were not invalidation messages
	Gaps      uint64 // times messages may have been lost (OnGap, but for the first subscription)
	Pings     uint64 // health-check pings sent
	Pongs     uint64 // health-check pongs received
	// Subscriptions counts subscription confirmations: 1 for the first,
	// one more for every resubscription after a lost connection.
	Subscriptions uint64
}

// Bus is a subscription to one invalidation channel.
//
// # The lease
//
// Redis delivers the messages of one subscription in order, and answers a
// PING on it after every message published before the PING was processed.
// So a PONG for a ping sent at time T proves that every message published
// before T has been handed to OnMessage. The bus is Live until
// T + HealthCheckInterval for the latest such T; after that a timer marks it
// not Live and reports a gap. A lost connection, a resubscribe or an
// unreadable reply also report a gap at once. Callers must not serve cached
// data while the bus is not Live.
type Bus struct {
	cfg   Config
	id    ID
	start time.Time // the origin of ping payloads (monotonic)

	mu     sync.Mutex // guards ps and closed
	ps     *redis.PubSub
	closed bool

	live       atomic.Bool
	everLive   atomic.Bool // a gap before the first lease is no loss: not counted
	liveMu     sync.Mutex
	liveCh     chan struct{} // closed while live; see Ready
	liveClosed bool
	leaseUntil atomic.Int64 // nanoseconds since start
	expiry     *time.Timer  // marks the bus not Live when the lease runs out
	pingNow    chan struct{}

	messages, malformed, gaps, pings, pongs, subscriptions atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New subscribes and starts the bus's goroutines. Redis need not be
// reachable: the bus keeps trying, and is not Live until it succeeds.
func New(cfg Config) (*Bus, error) {
	if cfg.Redis == nil || cfg.Channel == "" {
		return nil, errors.New("bus: Config.Redis and Config.Channel are required")
	}
	if cfg.HealthCheckInterval < 0 || (cfg.HealthCheckInterval > 0 && cfg.HealthCheckInterval < MinHealthCheckInterval) {
		return nil, fmt.Errorf("bus: HealthCheckInterval %v: want 0 (the default) or at least %v", cfg.HealthCheckInterval, MinHealthCheckInterval)
	}
	if cfg.HealthCheckInterval == 0 {
		cfg.HealthCheckInterval = DefaultHealthCheckInterval
	}
	if cfg.OnMessage == nil {
		cfg.OnMessage = func(Message) {}
	}
	if cfg.OnGap == nil {
		cfg.OnGap = func(string) {}
	}
	if cfg.ID == (ID{}) {
		cfg.ID = NewID()
	}
	b := &Bus{cfg: cfg, id: cfg.ID, start: time.Now(), pingNow: make(chan struct{}, 1), liveCh: make(chan struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.expiry = time.AfterFunc(time.Hour, b.checkLease)
	b.expiry.Stop()
	// No channel yet, so nothing is dialled here: New must not wait for
	// an unresponsive Redis. The receive goroutine subscribes.
	b.ps = cfg.Redis.Subscribe(b.ctx)
	b.wg.Add(2)
	go b.receive()
	go b.ping()
	return b, nil
}

// ID returns this bus's instance ID, which Publish-side code puts in its
// messages (see AppendMessage).
func (b *Bus) ID() ID { return b.id }

// Channel returns the channel the bus listens on.
func (b *Bus) Channel() string { return b.cfg.Channel }

// Message encodes an invalidation of key by this instance.
func (b *Bus) Message(key string) []byte {
	return AppendMessage(make([]byte, 0, headerLen+len(key)), b.id, key)
}

// Live reports whether the bus currently holds a lease: whether a cache fed
// by it may serve.
func (b *Bus) Live() bool { return b.live.Load() }

// Ready returns a channel that is closed once the bus is Live. A gap
// after that gives later callers a new channel.
func (b *Bus) Ready() <-chan struct{} {
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	return b.liveCh
}

func (b *Bus) setLive() {
	b.everLive.Store(true)
	if b.live.Swap(true) {
		return
	}
	b.liveMu.Lock()
	if !b.liveClosed {
		close(b.liveCh)
		b.liveClosed = true
	}
	b.liveMu.Unlock()
}

func (b *Bus) setNotLive() {
	b.live.Store(false)
	b.liveMu.Lock()
	if b.liveClosed {
		b.liveCh = make(chan struct{})
		b.liveClosed = false
	}
	b.liveMu.Unlock()
}

// Stats returns the counters.
func (b *Bus) Stats() Stats {
	return Stats{
		Messages: b.messages.Load(), Malformed: b.malformed.Load(), Gaps: b.gaps.Load(),
		Pings: b.pings.Load(), Pongs: b.pongs.Load(), Subscriptions: b.subscriptions.Load(),
	}
}

// Close unsubscribes and stops the goroutines. It is idempotent and safe
// to call concurrently.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	ps := b.ps
	b.mu.Unlock()
	b.cancel()
	err := ps.Close()
	b.wg.Wait()
	b.expiry.Stop()
	b.setNotLive()
	if errors.Is(err, redis.ErrClosed) {
		err = nil
	}
	return err
}

func (b *Bus) pubsub() *redis.PubSub {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ps
}

// Gap withdraws the lease and tells the owner (OnGap): for what feeds
// the channel to report that messages may have been lost.
func (b *Bus) Gap(reason string) { b.gap(reason) }

// gap withdraws the lease and tells the owner. Order matters: not Live
// first, so that nothing is served between the loss and the flush.
func (b *Bus) gap(reason string) {
	b.setNotLive()
	b.leaseUntil.Store(0)
	if b.everLive.Load() {
		b.gaps.Add(1)
	}
	b.cfg.OnGap(reason)
}

func (b *Bus) since() time.Duration { return time.Since(b.start) }

// checkLease runs when the lease may have run out.
func (b *Bus) checkLease() {
	if b.live.Load() && b.since() >= time.Duration(b.leaseUntil.Load()) {
		b.gap("health-check lease expired")
	}
}

// receive is the only reader of the subscription: it decodes messages,
// renews the lease on pongs and reports gaps.
func (b *Bus) receive() {
	defer b.wg.Done()
	// A failed first subscribe is retried by go-redis on the next read,
	// which resubscribes to the channels the PubSub recorded.
	_ = b.pubsub().Subscribe(b.ctx, b.cfg.Channel)
	interval := b.cfg.HealthCheckInterval
	backoff := time.Duration(0)
	lastHeard := time.Now()
	for b.ctx.Err() == nil {
		ps := b.pubsub()
		msg, err := ps.ReceiveTimeout(b.ctx, interval)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			var nerr net.Error
			if errors.As(err, &nerr) && nerr.Timeout() {
				// Quiet, but pings should have been answered: after three
				// intervals of silence the connection is presumed dead
				// (half-open TCP, a paused server) and replaced.
				if time.Since(lastHeard) > 3*interval {
					b.recycle()
					lastHeard = time.Now()
				}
				continue
			}
			if isFlush(err) {
				// Redis's invalidation of everything: FLUSHDB, FLUSHALL,
				// a full resync from a master. The connection is fine.
				b.gap("server flushed its data")
				continue
			}
			// go-redis reconnects and resubscribes on the next read; the
			// messages in between are lost.
			if b.live.Load() || backoff == 0 {
				b.gap("subscription error: " + err.Error())
			}
			backoff = min(max(2*backoff, 10*time.Millisecond), interval)
			select {
			case <-time.After(backoff):
			case <-b.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		lastHeard = time.Now()
		switch m := msg.(type) {
		case *redis.Message:
			if m.Channel == TrackingChannel {
				b.deliverKeys(m)
			} else {
				b.deliver(m.Payload)
			}
		case *redis.Pong:
			b.renew(m.Payload)
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// A (re)subscription: whatever was published before it
				// is lost, so the owner forgets what it cached, even the
				// first time (reads made before it may be filling the
				// cache now; gap does not count that one in Stats, since
				// nothing was ever served). Ask for a pong at once to
				// regain the lease.
				reason := "resubscribed"
				if b.subscriptions.Add(1) == 1 {
					reason = "subscribed"
				}
				b.gap(reason)
				b.requestPing()
			}
		}
	}
}

// TrackingChannel is the channel of Redis's RESP2 invalidations.
const TrackingChannel = "__redis__:invalidate"

// isFlush reports whether err is go-redis's reading of the null
// invalidation by which Redis says that every key is invalid.
func isFlush(err error) bool {
	return strings.Contains(err.Error(), "unsupported pubsub message payload: <nil>")
}

// deliverKeys hands on the keys of one of Redis's invalidations.
func (b *Bus) deliverKeys(m *redis.Message) {
	keys := m.PayloadSlice
	if keys == nil {
		keys = []string{m.Payload}
	}
	for _, k := range keys {
		key, ok := strings.CutPrefix(k, b.cfg.KeyPrefix)
		if !ok {
			b.malformed.Add(1)
			continue
		}
		b.messages.Add(1)
		b.cfg.OnMessage(Message{Key: key})
	}
}

func (b *Bus) deliver(payload string) {
	m, err := Decode(payload)
	switch {
	case err == nil:
		m.Own = m.Sender == b.id
		b.messages.Add(1)
		b.cfg.OnMessage(m)
	case errors.Is(err, ErrUnknownVersion):
		// A newer peer invalidated some key we cannot name: drop all.
		b.malformed.Add(1)
		b.gap("message of unknown version")
	default:
		b.malformed.Add(1)
	}
}

// renew extends the lease to (ping send time + interval).
func (b *Bus) renew(payload string) {
	sent, err := strconv.ParseInt(payload, 10, 64)
	if err != nil {
		return // not one of our pings
	}
	b.pongs.Add(1)
	until := sent + int64(b.cfg.HealthCheckInterval)
	for {
		cur := b.leaseUntil.Load()
		if until <= cur || b.leaseUntil.CompareAndSwap(cur, until) {
			break
		}
	}
	if left := time.Duration(until) - b.since(); left > 0 {
		b.setLive()
		b.expiry.Reset(left)
	}
}

func (b *Bus) requestPing() {
	select {
	case b.pingNow <- struct{}{}:
	default:
	}
}

// ping sends a health-check ping four times per interval, or at once when
// asked. Its payload is its send time, which the pong brings back.
func (b *Bus) ping() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.HealthCheckInterval / 4)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		case <-b.pingNow:
		}
		// The time is taken before the check: the pong then proves that
		// every message up to it was delivered, and the check that the
		// registration producing them was in place at that time.
		now := b.since()
		if b.cfg.Check != nil {
			flush, err := b.cfg.Check(b.ctx)
			if b.ctx.Err() != nil {
				return
			}
			if err != nil {
				if b.live.Load() {
					b.gap("check: " + err.Error())
				}
				continue
			}
			if flush != "" {
				b.gap(flush)
			}
		}
		payload := strconv.FormatInt(int64(now), 10)
		if b.pubsub().Ping(b.ctx, payload) == nil {
			b.pings.Add(1)
		}
	}
}

// recycle replaces the subscription with a new connection. The new one
// is dialled without the lock, so that pings and Close never wait for a
// dial; if Close ran meanwhile, the new subscription is closed at once
// instead of leaking.
func (b *Bus) recycle() {
	fresh := b.cfg.Redis.Subscribe(b.ctx, b.cfg.Channel)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = fresh.Close()
		return
	}
	old := b.ps
	b.ps = fresh
	b.mu.Unlock()
	_ = old.Close()
	b.gap("subscription silent, replaced")
}
