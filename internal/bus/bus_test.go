package bus_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/bus"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
)

// recorder collects what a Bus reports.
type recorder struct {
	mu   sync.Mutex
	msgs []bus.Message
	gaps []string
}

func (r *recorder) onMessage(m bus.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *recorder) onGap(_ invalidation.GapCause, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gaps = append(r.gaps, reason)
}

func (r *recorder) counts() (msgs, gaps int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs), len(r.gaps)
}

// publishBeat is a Beat that publishes seq on channel through c.
func publishBeat(c redis.UniversalClient, channel string) func(context.Context, uint64) (bus.Flush, error) {
	return func(ctx context.Context, seq uint64) (bus.Flush, error) {
		return bus.Flush{}, c.Publish(ctx, channel, seq).Err()
	}
}

func newBus(t *testing.T, c redis.UniversalClient, interval time.Duration) (*bus.Bus, *recorder) {
	t.Helper()
	r := &recorder{}
	b, err := bus.New(bus.Config{
		Redis: c, Channel: "inv", HealthCheckInterval: interval,
		BeatChannel: "inv:heartbeat", Beat: publishBeat(c, "inv:heartbeat"),
		OnMessage: r.onMessage, OnGap: r.onGap,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, r
}

func TestBusDeliversMessagesAndBecomesLive(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(nil)
	b, r := newBus(t, c, 200*time.Millisecond)
	redistest.Eventually(t, "the bus is live", b.Live)
	peer := bus.NewID()
	ctx := context.Background()
	c.Publish(ctx, "inv", bus.AppendMessage(nil, peer, "k1"))
	c.Publish(ctx, "inv", "garbage")
	c.Publish(ctx, "inv", bus.AppendMessage(nil, b.ID(), "k2"))
	redistest.Eventually(t, "two messages arrive", func() bool { n, _ := r.counts(); return n == 2 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msgs[0].Key != "k1" || r.msgs[0].Sender != peer || r.msgs[1].Key != "k2" || r.msgs[1].Sender != b.ID() {
		t.Fatalf("messages = %+v", r.msgs)
	}
	if st := b.Stats(); st.Malformed != 1 || st.Messages != 2 {
		t.Fatalf("stats = %+v, want 1 malformed and 2 messages", st)
	}
}

func TestKilledSubscriptionIsAGapAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	b, r := newBus(t, srv.Client(nil), 200*time.Millisecond)
	redistest.Eventually(t, "the bus is live", b.Live)
	_, gaps := r.counts()
	srv.Do("CLIENT", "KILL", "TYPE", "pubsub")
	redistest.Eventually(t, "the kill is reported as a gap", func() bool { _, g := r.counts(); return g > gaps })
	redistest.Eventually(t, "the bus is live again", b.Live)
}

func TestPausedServerExpiresTheLease(t *testing.T) {
	srv := redistest.Start(t)
	b, r := newBus(t, srv.Client(nil), 100*time.Millisecond)
	redistest.Eventually(t, "the bus is live", b.Live)
	srv.Do("CLIENT", "PAUSE", "1000", "ALL")
	redistest.Eventually(t, "the lease expires while the server is paused", func() bool { return !b.Live() })
	r.mu.Lock()
	reported := len(r.gaps) > 0
	r.mu.Unlock()
	if !reported {
		t.Fatal("the bus stopped being live without reporting a gap")
	}
	redistest.Eventually(t, "the bus is live after the pause", b.Live)
}

func TestUnknownVersionIsAGap(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(nil)
	b, r := newBus(t, c, 200*time.Millisecond)
	redistest.Eventually(t, "the bus is live", b.Live)
	_, gaps := r.counts()
	c.Publish(context.Background(), "inv", "\x07 a message from a future release")
	redistest.Eventually(t, "a gap is reported", func() bool { _, g := r.counts(); return g > gaps })
}

func TestCloseStopsTheBus(t *testing.T) {
	srv := redistest.Start(t)
	b, _ := newBus(t, srv.Client(nil), 200*time.Millisecond)
	redistest.Eventually(t, "the bus is live", b.Live)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Live() {
		t.Fatal("a closed bus reports Live")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestMessageReachesPeers(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(nil)
	a, _ := newBus(t, c, 200*time.Millisecond)
	b, r := newBus(t, srv.Client(nil), 200*time.Millisecond)
	redistest.Eventually(t, "both buses are live", func() bool { return a.Live() && b.Live() })
	if err := c.Publish(context.Background(), a.Channel(), a.Message("k")).Err(); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, "B receives A's message", func() bool { n, _ := r.counts(); return n == 1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msgs[0].Sender != a.ID() || r.msgs[0].Key != "k" {
		t.Fatalf("B received %+v", r.msgs[0])
	}
}

// Close may race itself and a recycle: neither may panic, leak a
// subscription (goleak in TestMain) or return an error.
func TestConcurrentCloseIsSafe(t *testing.T) {
	srv := redistest.Start(t)
	b, _ := newBus(t, srv.Client(nil), 200*time.Millisecond)
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- b.Close() }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("Close = %v", err)
		}
	}
}

// The first subscription makes the owner forget what it cached (fills
// started before it may be landing), but it loses no message that was
// ever relied on: Stats counts it as a subscription, not a gap.
func TestFirstSubscriptionIsNotCountedAsAGap(t *testing.T) {
	srv := redistest.Start(t)
	b, r := newBus(t, srv.Client(nil), 200*time.Millisecond)
	redistest.Eventually(t, "the bus is live", b.Live)
	if _, gaps := r.counts(); gaps != 1 {
		t.Fatalf("OnGap called %d times at the first subscription, want 1", gaps)
	}
	if st := b.Stats(); st.Gaps != 0 || st.Subscriptions != 1 {
		t.Fatalf("after the first subscription: %+v, want 0 gaps, 1 subscription", st)
	}
}

// A heartbeat whose registration was made again (a flush) but whose
// change then failed returns both: the flush is a gap all the same, or
// what was cached before the new registration would survive it.
func TestFlushReturnedWithAnErrorIsAGap(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(nil)
	var beats atomic.Int64
	flushed := make(chan struct{})
	var once sync.Once
	b, err := bus.New(bus.Config{
		Redis: c, Channel: "inv", HealthCheckInterval: 200 * time.Millisecond, BeatChannel: "inv:heartbeat",
		Beat: func(ctx context.Context, seq uint64) (bus.Flush, error) {
			if beats.Add(1) == 3 {
				return bus.Flush{Cause: invalidation.GapReregistered, Reason: "tracking registered"}, errors.New("heartbeat: i/o timeout")
			}
			return publishBeat(c, "inv:heartbeat")(ctx, seq)
		},
		OnGap: func(_ invalidation.GapCause, reason string) {
			if reason == "tracking registered" {
				once.Do(func() { close(flushed) })
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	redistest.Eventually(t, "the failed heartbeat is made", func() bool { return beats.Load() > 3 })
	select {
	case <-flushed:
	default:
		t.Fatal("the flush returned with an error was not a gap")
	}
}

// A heartbeat made before a gap (here the registration's connection
// lost, which the tracker reports with Gap) proves nothing after it, even
// if it arrives and Redis acknowledges it after the gap.
func TestHeartbeatFromBeforeAGapDoesNotRenew(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(nil)
	var b *bus.Bus
	var armed atomic.Bool
	var trapped atomic.Int64 // the seq made across the gap; 0 before
	marker := make(chan struct{})
	var once sync.Once
	b, err := bus.New(bus.Config{
		Redis: c, Channel: "inv", HealthCheckInterval: 400 * time.Millisecond, BeatChannel: "inv:heartbeat",
		Beat: func(ctx context.Context, seq uint64) (bus.Flush, error) {
			if !armed.Load() {
				return publishBeat(c, "inv:heartbeat")(ctx, seq)
			}
			if !trapped.CompareAndSwap(0, int64(seq)) {
				return bus.Flush{}, errors.New("down") // nothing proves anything any more
			}
			b.Gap(invalidation.GapConnectionLost, "tracking connection lost: EOF")
			if _, err := publishBeat(c, "inv:heartbeat")(ctx, seq); err != nil {
				return bus.Flush{}, err
			}
			// Behind the heartbeat on the subscription: when it is
			// handled, so is the heartbeat.
			return bus.Flush{}, c.Publish(ctx, "inv", bus.AppendMessage(nil, bus.NewID(), "marker")).Err()
		},
		OnMessage: func(m bus.Message) {
			if m.Key == "marker" {
				once.Do(func() { close(marker) })
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	redistest.Eventually(t, "the bus is live", b.Live)
	beats := b.Stats().Beats
	armed.Store(true)
	<-marker
	redistest.Eventually(t, "Redis acknowledges the heartbeat made across the gap", func() bool { return b.Stats().Beats > beats })
	if b.Live() {
		t.Fatal("Live after a gap, on a heartbeat made before it")
	}
}

// Gaps are counted by cause, and every heartbeat that renewed the lease
// is in the proof-lag histogram: a killed subscription is a lost
// connection and then a resubscription, a Gap call its own cause.
func TestStatsCountGapsByCauseAndProofLag(t *testing.T) {
	srv := redistest.Start(t)
	// A long interval: a lease that runs out under load would be a gap
	// of its own.
	b, _ := newBus(t, srv.Client(nil), 3*time.Second)
	redistest.Eventually(t, "the bus is live", b.Live)
	lag := b.Stats().ProofLag
	var sum uint64
	for _, n := range lag.Counts {
		sum += n
	}
	if lag.Count == 0 || sum != lag.Count || lag.Sum <= 0 {
		t.Fatalf("proof lag after the first lease: %+v, want counts summing to a count > 0 and a positive sum", lag)
	}
	byCause := func(c invalidation.GapCause) func() uint64 { return func() uint64 { return b.Stats().GapsBy[c] } }
	redistest.AfterGrowth(t, "the killed subscription is a resubscription", byCause(invalidation.GapResubscribed), func() {
		srv.Do("CLIENT", "KILL", "TYPE", "pubsub")
	})
	redistest.Eventually(t, "the bus is live again", b.Live)
	b.Gap(invalidation.GapTopology, "test")
	st := b.Stats()
	want := [invalidation.NumGapCauses]uint64{invalidation.GapConnectionLost: 1, invalidation.GapResubscribed: 1, invalidation.GapTopology: 1}
	if st.GapsBy != want || st.Gaps != 3 {
		t.Fatalf("gaps %d by cause %v, want 3: %v", st.Gaps, st.GapsBy, want)
	}
	if st.ProofLag.Count <= lag.Count {
		t.Fatalf("proof lag count %d after the lease was renewed, was %d", st.ProofLag.Count, lag.Count)
	}
}
