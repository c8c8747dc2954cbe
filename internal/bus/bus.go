// Package bus is the invalidation bus that keeps in-process caches
// coherent: the message format, the subscription with reconnect and gap
// detection, and the heartbeat lease that bounds staleness when messages
// may be lost. It is mechanism, internal to tiered; the contract users see
// is described in package invalidation.
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

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/statelog"
	"github.com/tierstore/tierstore/invalidation"
)

// DefaultHealthCheckInterval is the default Config.HealthCheckInterval.
const DefaultHealthCheckInterval = time.Second

// MinHealthCheckInterval is the smallest Config.HealthCheckInterval:
// heartbeats go out every quarter of it, and a lease much shorter than a
// round trip would never hold.
const MinHealthCheckInterval = 4 * time.Millisecond

// minStep is the shortest deadline of one step of the bus's own work (a
// heartbeat, a subscription's dial): a dial may need more than a tiny
// interval.
const minStep = 250 * time.Millisecond

// Config configures a Bus. Zero fields take the documented defaults.
type Config struct {
	// Redis is the client to subscribe with; required. Never closed by
	// Bus. Make it with rediskv.Conns, so that its dials are bounded.
	Redis redis.UniversalClient
	// Channel is the pub/sub channel; required. On TrackingChannel the
	// messages are Redis's invalidations (key names, or a null for a
	// flush), else this package's own messages.
	Channel string
	// KeyPrefix is stripped from the keys of Redis's invalidations;
	// keys without it are ignored.
	KeyPrefix string
	// Beat makes heartbeat seq: a change whose report must reach this
	// bus by the path invalidations travel, as a key under BeatPrefix
	// ending in ":" and seq (Redis's invalidations), or as a message with
	// payload seq on BeatChannel (this package's). Required. A flush
	// (not the zero Flush) says that messages may have been lost before
	// it (a gap), and that this beat proves nothing; an error, that it was
	// not made.
	Beat func(ctx context.Context, seq uint64) (flush Flush, err error)
	// BeatPrefix: see Beat. Keys under it are never handed to OnMessage.
	BeatPrefix string
	// BeatReports is how many reports of a heartbeat's key prove it: one
	// per tracking registration that follows the key (Redis reports a
	// change once to each connection that read the key). 0 means 1.
	BeatReports int
	// BeatChannel: see Beat; subscribed in the same command as Channel,
	// so that one permission check covers both.
	BeatChannel string
	// ID identifies this instance in its messages. Default: NewID().
	// Set it when the handlers need it before New returns.
	ID ID
	// HealthCheckInterval bounds how stale a cache fed by this bus can get
	// when messages are lost: the bus is Live only while it has heard a
	// heartbeat made within HealthCheckInterval, which proves that it
	// received every message published before that heartbeat. Heartbeats
	// go out four times per interval. Default DefaultHealthCheckInterval
	// (1s).
	HealthCheckInterval time.Duration
	// OnMessage is called, in publication order, for every well-formed
	// message, including this bus's own (compare Message.Sender with ID).
	OnMessage func(Message)
	// OnGap is called whenever messages may have been lost (the
	// subscription was lost or re-made, the lease expired, a message
	// could not be read): the receiver must forget everything the
	// messages were protecting. cause and reason say why.
	OnGap func(cause invalidation.GapCause, reason string)
	// OnProof, if set, is called with the lag of each heartbeat proven
	// (see Stats.ProofLag), on the goroutine that proved it: it must be
	// quick.
	OnProof func(lag time.Duration)
	// OnLive, if set, is called when the bus gains Live, after the change,
	// on the goroutine that renewed the lease.
	OnLive func()
	// Log records state changes; nil: silent.
	Log *statelog.Logger
}

// Flush is what a heartbeat reports when messages may have been lost
// before it: why (a gap's cause and the reason logged). The zero Flush
// reports nothing.
type Flush struct {
	Cause  invalidation.GapCause
	Reason string
}

// ErrResubscribe, wrapped by an error of Config.Beat, says that what the
// heartbeat needs of the subscription is gone (its connection, which the
// tracking registration must redirect to): the bus replaces the
// subscription instead of counting a failure.
var ErrResubscribe = errors.New("bus: the subscription must be made again")

// Stats is a snapshot of a Bus's counters.
type Stats struct {
	Messages  uint64                            // well-formed messages received, own included
	Malformed uint64                            // payloads that were not invalidation messages
	Gaps      uint64                            // times messages may have been lost (OnGap, but for the first subscription)
	GapsBy    [invalidation.NumGapCauses]uint64 // Gaps by cause
	Beats     uint64                            // heartbeats Redis acknowledged
	Heard     uint64                            // heartbeats that arrived on the subscription
	Refusals  uint64                            // commands of the subscription or the heartbeats that Redis refused (ACL, renamed command, auth)
	// Subscriptions counts subscription confirmations: 1 for the first,
	// one more for every resubscription after a lost connection.
	Subscriptions uint64
	// ProofLag: from each heartbeat's send to its proof.
	ProofLag invalidation.ProofLag
}

// Add adds o's counters to st: a Cluster's sum over its masters.
func (st *Stats) Add(o Stats) {
	st.Messages += o.Messages
	st.Malformed += o.Malformed
	st.Gaps += o.Gaps
	st.Beats += o.Beats
	st.Heard += o.Heard
	st.Refusals += o.Refusals
	st.Subscriptions += o.Subscriptions
	for c := range st.GapsBy {
		st.GapsBy[c] += o.GapsBy[c]
	}
	for i := range st.ProofLag.Counts {
		st.ProofLag.Counts[i] += o.ProofLag.Counts[i]
	}
	st.ProofLag.Count += o.ProofLag.Count
	st.ProofLag.Sum += o.ProofLag.Sum
}

// Bus is a subscription to one invalidation channel.
//
// # The lease
//
// Redis delivers the messages of one subscription in order. A heartbeat
// is a change made through another connection after time T whose report
// travels to the subscription the way every invalidation does (through
// the tracking registration and its redirect, the channel's permission,
// the subscription itself); when it arrives, every change made before T
// has been reported, and handed to OnMessage. The bus is Live until
// T + HealthCheckInterval for the latest such T; after that a timer marks
// it not Live and reports a gap. A pong is no such proof: go-redis makes
// one up for a connection that is not subscribed.
//
// Each heartbeat has a name of its own (its seq), so an arrival proves
// exactly its own T, however late. One heartbeat is awaited at a time: a
// new one goes out when it has arrived, or when it is older than the
// interval (it could renew nothing any more). A heartbeat Redis
// acknowledged that has not arrived one interval later means the path is
// broken somewhere: the subscription is replaced, which re-makes the
// registration too. A lost connection, a resubscribe or an unreadable
// reply report a gap at once. Callers must not serve cached data while the
// bus is not Live.
type Bus struct {
	cfg      Config
	id       ID
	start    time.Time // the origin of lease times (monotonic)
	channels []string
	step     time.Duration // deadline of one heartbeat or subscription step

	mu     sync.Mutex // guards ps and closed
	ps     *redis.PubSub
	closed bool

	live       atomic.Bool
	everLive   atomic.Bool  // a gap before the first lease is no loss: not counted
	leaseUntil atomic.Int64 // nanoseconds since start
	expiry     *time.Timer  // marks the bus not Live when the lease runs out
	beatNow    chan struct{}

	stateMu  sync.Mutex    // guards the fields below
	changed  chan struct{} // closed and replaced on every change of Live or Cause
	cause    error         // why the bus is not Live, or the last failure
	awaited  *beat         // the heartbeat awaited
	seq      uint64
	notLive  time.Time // when Live was last lost
	subFails int       // consecutive subscription errors, for backoff

	// handling: the receive goroutine is in a handler (OnMessage), not
	// reading; a heartbeat queued behind a slow handler is not lost.
	handling atomic.Bool
	// subscribed: the current subscription has been confirmed, and no
	// error has been read from it since; heartbeats wait for it.
	subscribed atomic.Bool

	messages, malformed, gaps, beats, heard, refusals, subscriptions atomic.Uint64
	gapsBy                                                           [invalidation.NumGapCauses]atomic.Uint64
	lag                                                              lagHistogram

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// beat is one heartbeat: sent at time sent (since start), acknowledged by
// Redis without a flush at acked (0: not yet), heard on the subscription.
type beat struct {
	seq     uint64
	sent    time.Duration
	acked   time.Duration
	reports int // reports of it heard so far
	heard   bool
}

// New subscribes and starts the bus's goroutines. Redis need not be
// reachable: the bus keeps trying, and is not Live until it succeeds.
func New(cfg Config) (*Bus, error) {
	if cfg.Redis == nil || cfg.Channel == "" || cfg.Beat == nil {
		return nil, errors.New("bus: Config.Redis, Channel and Beat are required")
	}
	if cfg.HealthCheckInterval < 0 || (cfg.HealthCheckInterval > 0 && cfg.HealthCheckInterval < MinHealthCheckInterval) {
		return nil, fmt.Errorf("bus: HealthCheckInterval %v: want 0 (the default) or at least %v", cfg.HealthCheckInterval, MinHealthCheckInterval)
	}
	if cfg.HealthCheckInterval == 0 {
		cfg.HealthCheckInterval = DefaultHealthCheckInterval
	}
	if cfg.BeatReports <= 0 {
		cfg.BeatReports = 1
	}
	if cfg.OnMessage == nil {
		cfg.OnMessage = func(Message) {}
	}
	if cfg.OnGap == nil {
		cfg.OnGap = func(invalidation.GapCause, string) {}
	}
	if cfg.ID == (ID{}) {
		cfg.ID = NewID()
	}
	b := &Bus{
		cfg: cfg, id: cfg.ID, start: time.Now(), channels: []string{cfg.Channel},
		step:    max(cfg.HealthCheckInterval, minStep),
		beatNow: make(chan struct{}, 1), changed: make(chan struct{}),
		cause: errors.New("not subscribed yet"), notLive: time.Now(),
	}
	if cfg.BeatChannel != "" {
		b.channels = append(b.channels, cfg.BeatChannel)
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.expiry = time.AfterFunc(time.Hour, b.checkLease)
	b.expiry.Stop()
	// No channel yet, so nothing is dialled here: New must not wait for
	// an unresponsive Redis. The receive goroutine subscribes.
	b.ps = cfg.Redis.Subscribe(b.ctx)
	b.wg.Add(2)
	go b.receive()
	go b.prove()
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

// State returns a channel closed at the next change of Live or of the
// cause, and why the bus is not Live (nil while it is).
func (b *Bus) State() (changed <-chan struct{}, cause error) {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	if b.live.Load() {
		return b.changed, nil
	}
	return b.changed, b.cause
}

// notify wakes the callers of State; stateMu must be held.
func (b *Bus) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// fail records err as the reason the bus cannot renew its lease, counting
// and logging it once per change of cause.
func (b *Bus) fail(err error) {
	refused := errors.Is(err, tierstore.ErrRefused)
	if refused {
		b.refusals.Add(1)
	}
	b.stateMu.Lock()
	same := b.cause != nil && b.cause.Error() == err.Error()
	b.cause = err
	if !same {
		b.notify()
	}
	b.stateMu.Unlock()
	if refused {
		b.cfg.Log.Error("refused", "err", err)
	} else {
		b.cfg.Log.Warn("heartbeat failed", "err", err)
	}
}

func (b *Bus) setNotLive(reason string) {
	b.stateMu.Lock()
	if !b.live.Swap(false) {
		b.stateMu.Unlock()
		return
	}
	b.notLive = time.Now()
	b.cause = errors.New(reason)
	b.notify()
	b.stateMu.Unlock()
	b.cfg.Log.Warn("not live", "reason", reason)
}

// Stats returns the counters.
func (b *Bus) Stats() Stats {
	st := Stats{
		Messages: b.messages.Load(), Malformed: b.malformed.Load(), Gaps: b.gaps.Load(),
		Beats: b.beats.Load(), Heard: b.heard.Load(), Refusals: b.refusals.Load(),
		Subscriptions: b.subscriptions.Load(), ProofLag: b.lag.load(),
	}
	for c := range b.gapsBy {
		st.GapsBy[c] = b.gapsBy[c].Load()
	}
	return st
}

// Close unsubscribes and stops the goroutines. It is idempotent and safe
// to call concurrently. A dial in progress ends with the bus's context.
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
	b.setNotLive("closed")
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
func (b *Bus) Gap(cause invalidation.GapCause, reason string) {
	b.gap(cause, reason)
	// What was lost (a registration's connection) is made again by the
	// next heartbeat: make it now rather than at the next tick.
	b.requestBeat()
}

// gap withdraws the lease and tells the owner. Order matters: not Live
// first, so that nothing is served between the loss and the flush. A
// heartbeat made before the gap proves nothing after it: it is no longer
// awaited.
func (b *Bus) gap(cause invalidation.GapCause, reason string) {
	b.stateMu.Lock()
	b.awaited = nil // first: a renew after this cannot use it
	b.stateMu.Unlock()
	b.setNotLive(reason)
	b.leaseUntil.Store(0)
	if b.everLive.Load() {
		b.gaps.Add(1)
		b.gapsBy[cause].Add(1)
	}
	b.cfg.OnGap(cause, reason)
}

func (b *Bus) since() time.Duration { return time.Since(b.start) }

// checkLease runs when the lease may have run out.
func (b *Bus) checkLease() {
	if b.live.Load() && b.since() >= time.Duration(b.leaseUntil.Load()) {
		b.gap(invalidation.GapLeaseExpired, "heartbeat lease expired")
	}
}

// subscribe (re)sends the subscription for every channel in one command.
func (b *Bus) subscribe() {
	ctx, cancel := context.WithTimeout(b.ctx, b.step)
	defer cancel()
	// An error here (a dial) shows again on the next read, which retries.
	_ = b.pubsub().Subscribe(ctx, b.channels...)
}

// receive is the only reader of the subscription: it decodes messages,
// renews the lease on heartbeats and reports gaps.
func (b *Bus) receive() {
	defer b.wg.Done()
	b.subscribe()
	for b.ctx.Err() == nil {
		ps := b.pubsub()
		// The deadline bounds a reconnect's dial, which go-redis makes
		// inside this call while holding the PubSub's lock.
		ctx, cancel := context.WithTimeout(b.ctx, b.step)
		msg, err := ps.ReceiveTimeout(ctx, b.cfg.HealthCheckInterval)
		cancel()
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			b.receiveError(err)
			continue
		}
		b.stateMu.Lock()
		b.subFails = 0
		b.stateMu.Unlock()
		b.handling.Store(true)
		b.handle(msg)
		b.handling.Store(false)
	}
}

// handle takes one reply of the subscription.
func (b *Bus) handle(msg any) {
	switch m := msg.(type) {
	case *redis.Message:
		switch m.Channel {
		case TrackingChannel:
			b.deliverKeys(m)
		case b.cfg.BeatChannel:
			if seq, err := strconv.ParseUint(m.Payload, 10, 64); err == nil {
				b.arrived(seq)
			}
		default:
			b.deliver(m.Payload)
		}
	case *redis.Subscription:
		if m.Kind == "subscribe" && m.Channel == b.cfg.Channel {
			// A (re)subscription: whatever was published before it
			// is lost, so the owner forgets what it cached, even the
			// first time (reads made before it may be filling the
			// cache now; gap does not count that one in Stats, since
			// nothing was ever served). No heartbeat made before it
			// can arrive on it. Ask for one at once.
			b.subscribed.Store(true)
			reason := "resubscribed"
			if b.subscriptions.Add(1) == 1 {
				reason = "subscribed"
			}
			b.gap(invalidation.GapResubscribed, reason)
			b.requestBeat()
		}
	}
}

// receiveError handles a failed read of the subscription.
func (b *Bus) receiveError(err error) {
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return // quiet: the heartbeats tell whether it should not be
	}
	if isFlush(err) {
		// Redis's invalidation of everything: FLUSHDB, FLUSHALL, a full
		// resync from a master. The connection is fine.
		b.gap(invalidation.GapFlushed, "server flushed its data")
		return
	}
	b.subscribed.Store(false)
	var reply redis.Error
	refused := errors.As(err, &reply)
	if refused {
		// The subscription itself was refused (an ACL on the channel, a
		// renamed SUBSCRIBE): the connection is fine but subscribed to
		// nothing, so nothing would ever arrive on it.
		b.fail(rediskv.Wrap(context.Background(), "bus: subscribe "+strings.Join(b.channels, " "), err))
	} else {
		b.fail(rediskv.Wrap(context.Background(), "bus: subscription", err))
	}
	b.gap(invalidation.GapConnectionLost, "subscription error: "+err.Error())
	b.stateMu.Lock()
	b.subFails++
	backoff := min(time.Duration(1<<min(b.subFails, 10))*5*time.Millisecond, b.cfg.HealthCheckInterval)
	b.stateMu.Unlock()
	select {
	case <-time.After(backoff):
	case <-b.ctx.Done():
		return
	}
	if refused {
		b.subscribe() // permissions may have been granted since
	}
	// Else go-redis reconnects and resubscribes on the next read.
}

// TrackingChannel is the channel of Redis's RESP2 invalidations.
const TrackingChannel = "__redis__:invalidate"

// isFlush reports whether err is go-redis's reading of the null
// invalidation by which Redis says that every key is invalid.
func isFlush(err error) bool {
	return strings.Contains(err.Error(), "unsupported pubsub message payload: <nil>")
}

// deliverKeys hands on the keys of one of Redis's invalidations, and
// then takes the heartbeat it may name: the lease waits until every key
// reported with it has been applied.
func (b *Bus) deliverKeys(m *redis.Message) {
	keys := m.PayloadSlice
	if keys == nil {
		keys = []string{m.Payload}
	}
	var beats []uint64
	for _, k := range keys {
		if b.cfg.BeatPrefix != "" {
			if rest, ok := strings.CutPrefix(k, b.cfg.BeatPrefix); ok {
				if seq, err := strconv.ParseUint(rest[strings.LastIndexByte(rest, ':')+1:], 10, 64); err == nil {
					beats = append(beats, seq)
				}
				continue
			}
		}
		key, ok := strings.CutPrefix(k, b.cfg.KeyPrefix)
		if !ok {
			b.malformed.Add(1)
			continue
		}
		b.messages.Add(1)
		b.cfg.OnMessage(Message{Key: key})
	}
	for _, seq := range beats {
		b.arrived(seq)
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
		b.gap(invalidation.GapMalformed, "message of unknown version")
	default:
		b.malformed.Add(1)
	}
}

// arrived takes heartbeat seq, heard on the subscription.
func (b *Bus) arrived(seq uint64) {
	b.stateMu.Lock()
	a := b.awaited
	if a == nil || a.seq != seq || a.heard {
		b.stateMu.Unlock()
		return // one given up, or the echo of its key's rename
	}
	if a.reports++; a.reports < b.cfg.BeatReports {
		b.stateMu.Unlock()
		return // another registration's report is still on its way
	}
	a.heard = true
	proven := a.acked != 0
	b.stateMu.Unlock()
	b.heard.Add(1)
	if proven {
		b.renew(a)
	}
}

// renew extends the lease to (a's send time + interval), if a is still
// the heartbeat awaited: a gap gives it up first, under the same lock,
// so no proof made before a gap renews the lease after it.
func (b *Bus) renew(a *beat) {
	b.stateMu.Lock()
	if b.awaited != a {
		b.stateMu.Unlock()
		return
	}
	lag := b.since() - a.sent
	b.lag.observe(lag)
	until := int64(a.sent + b.cfg.HealthCheckInterval)
	if cur := b.leaseUntil.Load(); until < cur {
		until = cur
	}
	b.leaseUntil.Store(until)
	left := time.Duration(until) - b.since()
	if left <= 0 {
		b.stateMu.Unlock()
		b.proved(lag)
		return
	}
	b.everLive.Store(true)
	gained := !b.live.Swap(true)
	var down time.Duration
	if gained {
		b.cause = nil
		down = time.Since(b.notLive)
		b.notify()
	}
	b.expiry.Reset(left)
	b.stateMu.Unlock()
	b.proved(lag)
	if gained {
		b.cfg.Log.Info("live", "after", down.Round(time.Millisecond))
		if b.cfg.OnLive != nil {
			b.cfg.OnLive()
		}
	}
}

// proved hands a proof's lag to OnProof, outside stateMu.
func (b *Bus) proved(lag time.Duration) {
	if b.cfg.OnProof != nil {
		b.cfg.OnProof(lag)
	}
}

func (b *Bus) requestBeat() {
	select {
	case b.beatNow <- struct{}{}:
	default:
	}
}

// prove makes a heartbeat four times per interval, or at once when
// asked, while the one awaited has arrived or is too old to matter.
func (b *Bus) prove() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.HealthCheckInterval / 4)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		case <-b.beatNow:
		}
		b.beatOnce()
	}
}

func (b *Bus) beatOnce() {
	if !b.subscribed.Load() {
		return // nothing could arrive; the subscription's error is the cause
	}
	interval := b.cfg.HealthCheckInterval
	now := b.since()
	b.stateMu.Lock()
	a := b.awaited
	deaf := a != nil && a.acked != 0 && !a.heard && now-a.acked > interval && !b.handling.Load()
	if a != nil && !a.heard && !deaf && now-a.sent < interval {
		b.stateMu.Unlock()
		return // still worth waiting for
	}
	if deaf {
		b.awaited = nil
		b.stateMu.Unlock()
		// Acknowledged by Redis, never heard: the registration, its
		// redirect or the subscription is not what it seems.
		b.fail(errors.New("bus: heartbeats acknowledged by Redis do not arrive (subscription or registration lost, or the channel not permitted)"))
		b.recycle()
		return
	}
	// The time is taken before the heartbeat is sent: its arrival then
	// proves that every change made up to now has been reported.
	b.seq++
	next := &beat{seq: b.seq, sent: b.since()}
	b.awaited = next
	b.stateMu.Unlock()
	ctx, cancel := context.WithTimeout(b.ctx, b.step)
	flush, err := b.cfg.Beat(ctx, next.seq)
	cancel()
	if b.ctx.Err() != nil {
		return
	}
	if err != nil || flush != (Flush{}) {
		// Proves nothing: the next tick, or the request below, makes
		// another.
		b.stateMu.Lock()
		if b.awaited == next {
			b.awaited = nil
		}
		b.stateMu.Unlock()
	}
	if flush != (Flush{}) {
		// Also when the heartbeat then failed: the registration was made
		// again, so what was cached before it must go.
		b.gap(flush.Cause, flush.Reason)
	}
	switch {
	case errors.Is(err, ErrResubscribe):
		b.recycle()
	case err != nil:
		b.fail(rediskv.Wrap(context.Background(), "bus: heartbeat", err))
	case flush != (Flush{}):
		b.requestBeat()
	default:
		b.beats.Add(1)
		b.stateMu.Lock()
		next.acked = max(b.since(), 1)
		heard := next.heard
		b.stateMu.Unlock()
		if heard {
			b.renew(next)
		}
	}
}

// recycle replaces the subscription with a new connection. The new one
// is dialled without the lock, so that heartbeats and Close never wait
// for a dial; if Close ran meanwhile, the new subscription is closed at
// once instead of leaking.
func (b *Bus) recycle() {
	ctx, cancel := context.WithTimeout(b.ctx, b.step)
	fresh := b.cfg.Redis.Subscribe(ctx, b.channels...)
	cancel()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = fresh.Close()
		return
	}
	old := b.ps
	b.ps = fresh
	b.subscribed.Store(false)
	b.mu.Unlock()
	_ = old.Close()
	b.cfg.Log.Warn("subscription replaced")
	b.gap(invalidation.GapReplaced, "subscription replaced")
}
