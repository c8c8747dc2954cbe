package tiered

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/storetest"
)

const testInterval = 200 * time.Millisecond

// newStore returns a live Store on c, closed when the test ends.
func newStore(t testing.TB, c redis.UniversalClient, cfg Config) *Store {
	t.Helper()
	cfg.Redis = c
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "test:"
	}
	if cfg.HealthCheckInterval == 0 {
		cfg.HealthCheckInterval = testInterval
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	redistest.WaitLive(t, s)
	return withHooks(t, s)
}

func get(t testing.TB, s *Store, key string) string {
	t.Helper()
	v, err := s.Get(context.Background(), key)
	if errors.Is(err, tierstore.ErrNotFound) {
		return "<not found>"
	}
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v)
}

func set(t testing.TB, s *Store, key, value string) {
	t.Helper()
	if err := s.Set(context.Background(), key, []byte(value), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

// cached waits until key is served from L1 (ristretto admits new keys
// asynchronously) and returns its value.
func cached(t testing.TB, s *Store, key string) string {
	t.Helper()
	var got string
	redistest.Eventually(t, key+" is served from L1", func() bool {
		hit, _, _ := s.l1.Lookup(key, func(b []byte) error { got = string(b); return nil })
		if !hit {
			_, _ = s.Get(context.Background(), key)
		}
		return hit
	})
	return got
}

// lookupL1 returns the value L1 serves for key, or "" on a miss.
func lookupL1(s *Store, key string) string {
	var got string
	s.l1.Lookup(key, func(b []byte) error { got = string(b); return nil })
	return got
}

func TestConformanceMiniredis(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tierstore.Store {
		_, c := redistest.Miniredis(t)
		return newStore(t, c, Config{Invalidation: invalidation.OwnWrites})
	}, storetest.FrozenTTLs)
}

func TestConformanceRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) tierstore.Store {
		c := srv.Client(nil)
		c.FlushAll(context.Background())
		return newStore(t, c, Config{})
	})
}

func TestBadInputRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(nil)
	storetest.RunBadInput(t, func(t *testing.T) tierstore.Store {
		c.FlushAll(context.Background())
		return newStore(t, srv.Client(nil), Config{})
	}, redistest.RawWriter(c, "test:"))
}

// pair returns two instances sharing one real Redis, as two processes would.
func pair(t *testing.T, cfg Config) (a, b *Store, srv *redistest.Server) {
	srv = redistest.Start(t)
	return newStore(t, srv.Client(nil), cfg), newStore(t, srv.Client(nil), cfg), srv
}

// received reads s's count of applied peer invalidations.
func received(s *Store) func() uint64 {
	return func() uint64 { return s.Stats().Invalidation.Received }
}

func TestForeignSetInvalidatesPeer(t *testing.T) {
	a, b, _ := pair(t, Config{})
	set(t, a, "k", "v1")
	if got := cached(t, b, "k"); got != "v1" {
		t.Fatalf("B cached %q, want v1", got)
	}
	redistest.AfterGrowth(t, "B receives the invalidation", received(b), func() { set(t, a, "k", "v2") })
	if got := get(t, b, "k"); got != "v2" {
		t.Fatalf("B read %q after the invalidation, want v2", got)
	}
}

func TestGetAfterForeignDeleteMisses(t *testing.T) {
	a, b, _ := pair(t, Config{})
	set(t, a, "k", "v1")
	cached(t, b, "k")
	redistest.AfterGrowth(t, "B receives the invalidation", received(b), func() {
		if err := a.Delete(context.Background(), "k"); err != nil {
			t.Fatal(err)
		}
	})
	if got := get(t, b, "k"); got != "<not found>" {
		t.Fatalf("B read %q after a foreign delete", got)
	}
}

func TestOwnInvalidationsAreIgnored(t *testing.T) {
	a, _, _ := pair(t, Config{Invalidation: invalidation.OwnWrites})
	set(t, a, "k", "v1")
	redistest.Eventually(t, "A's own message comes back", func() bool { return a.ignoredOwn.Load() > 0 })
	if st := a.Stats(); st.Invalidation.Received != 0 {
		t.Fatalf("A applied its own invalidation: %+v", st)
	}
	// A still serves its write from memory.
	if got := cached(t, a, "k"); got != "v1" {
		t.Fatalf("A cached %q", got)
	}
	hits := a.Stats().L1.Hits
	get(t, a, "k")
	if a.Stats().L1.Hits != hits+1 {
		t.Fatal("A's own write was not served from L1")
	}
}

func TestReadYourWrites(t *testing.T) {
	a, b, _ := pair(t, Config{})
	for i := range 50 {
		v := strings.Repeat("x", i)
		set(t, a, "k", v)
		if got := get(t, a, "k"); got != v {
			t.Fatalf("after Set(%q), A read %q", v, got)
		}
		set(t, b, "k", v+"b")
		if got := get(t, b, "k"); got != v+"b" {
			t.Fatalf("after Set(%q), B read %q", v+"b", got)
		}
	}
}

// writeBehindTheBus changes key in Redis without publishing, as if the
// invalidation had been lost.
func writeBehindTheBus(t *testing.T, s *Store, c *redis.Client, key, value string) {
	t.Helper()
	if err := s.l2.SetAndPublish(context.Background(), key, []byte(value), time.Time{}, rediskv.Notice{}, nil); err != nil {
		t.Fatal(err)
	}
}

// With tracking, Redis reports every write: only OwnWrites can write
// behind the bus. (TestLostRegistrationIsAGap covers tracking's gaps.)
func TestSubscriptionGapFlushesL1(t *testing.T) {
	a, b, srv := pair(t, Config{Invalidation: invalidation.OwnWrites})
	set(t, a, "k", "v1")
	cached(t, b, "k")
	writeBehindTheBus(t, a, nil, "k", "v2") // an invalidation lost...
	if got := get(t, b, "k"); got != "v1" {
		t.Fatalf("B read %q; the test needs B to hold the stale v1", got)
	}
	gaps := b.Stats().Invalidation.Gaps
	srv.Do("CLIENT", "KILL", "TYPE", "pubsub") // ...with the subscription
	redistest.Eventually(t, "B detects the gap", func() bool { return b.Stats().Invalidation.Gaps > gaps })
	redistest.Eventually(t, "B is live again", b.Live)
	if got := get(t, b, "k"); got != "v2" {
		t.Fatalf("B read %q after the gap, want v2", got)
	}
}

func TestLeaseExpiryStopsL1(t *testing.T) {
	a, b, srv := pair(t, Config{})
	set(t, a, "k", "v1")
	cached(t, b, "k")
	srv.Do("CLIENT", "PAUSE", "1500", "ALL") // pings are not answered
	redistest.Eventually(t, "B's lease expires", func() bool { return !b.Live() })
	misses := b.Stats().L1.Misses
	get(t, b, "k")
	if b.Stats().L1.Misses != misses+1 {
		t.Fatal("B served from L1 without a lease")
	}
	redistest.Eventually(t, "B is live after the pause", b.Live)
}

func TestFillRaceIsClosed(t *testing.T) {
	srv := redistest.Start(t)
	hold := redistest.NewReplyHold(t, srv.Addr())
	a := newStore(t, srv.Client(nil), Config{})
	b := newStore(t, redis.NewClient(&redis.Options{Addr: hold.Addr()}), Config{})
	set(t, a, "k", "v1")

	// B misses and Redis answers its read with v1; before the reply
	// reaches B (a slow network on B's read connection), A writes v2 and
	// B receives the invalidation, which finds nothing to drop.
	held, release := hold.Arm("test:k")
	done := make(chan string)
	go func() { v, _ := b.Get(context.Background(), "k"); done <- string(v) }()
	<-held
	redistest.AfterGrowth(t, "B receives the invalidation", received(b), func() { set(t, a, "k", "v2") })
	release() // now v1 reaches B, which tries to fill L1 with it
	if got := <-done; got != "v1" {
		t.Fatalf("the racing read returned %q, want v1 (it began before the write)", got)
	}
	b.l1.Wait()
	if got := get(t, b, "k"); got != "v2" {
		t.Fatalf("B read %q after the race: the late fill of v1 was served", got)
	}
}

func TestLocalWriteRacingForeignWriteIsNotCached(t *testing.T) {
	a, b, _ := pair(t, Config{})
	// A's write reaches Redis; before A caches it, B writes a newer value
	// and A receives B's invalidation.
	paused, resume := make(chan struct{}), make(chan struct{})
	a.hooks().afterL2Write = func(string) {
		close(paused)
		<-resume
	}
	done := make(chan error)
	go func() { done <- a.Set(context.Background(), "k", []byte("older"), time.Now().Add(time.Hour)) }()
	<-paused
	redistest.AfterGrowth(t, "A receives B's invalidation", received(a), func() { set(t, b, "k", "newer") })
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a.hooks().afterL2Write = nil
	a.l1.Wait()
	if got := get(t, a, "k"); got != "newer" {
		t.Fatalf("A read %q: its own older write shadows B's newer one", got)
	}
}

func TestGetAfterLocalWriteDoesNotJoinOlderRead(t *testing.T) {
	m, _ := redistest.Miniredis(t)
	hold := redistest.NewReplyHold(t, m.Addr())
	s := newStore(t, redis.NewClient(&redis.Options{Addr: hold.Addr()}), Config{Invalidation: invalidation.OwnWrites})
	set(t, s, "k", "old")
	s.l1.InvalidateAll()
	// A read of "old" is in flight (its reply held) when this instance
	// writes "new".
	held, resume := hold.Arm("test:k")
	defer resume()
	done := make(chan string)
	go func() { v, _ := s.Get(context.Background(), "k"); done <- string(v) }()
	<-held
	set(t, s, "k", "new")
	got := make(chan string)
	go func() { got <- get(t, s, "k") }()
	select {
	case v := <-got:
		if v != "new" {
			t.Fatalf("Get after Set read %q", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Get after Set waited for a read that began before the Set")
	}
	resume()
	<-done
}

func TestConcurrentMissesShareOneRedisRead(t *testing.T) {
	m, _ := redistest.Miniredis(t)
	hold := redistest.NewReplyHold(t, m.Addr())
	c := redis.NewClient(&redis.Options{Addr: hold.Addr()})
	t.Cleanup(func() { c.Close() })
	s := newStore(t, c, Config{Invalidation: invalidation.OwnWrites})
	set(t, s, "k", "v")
	s.l1.InvalidateAll()
	var reads atomic.Int32
	c.AddHook(countGets{&reads})

	held, release := hold.Arm("test:k")
	defer release()
	const n = 20
	joined := make(chan struct{}, n)
	s.hooks().afterFlightJoin = func(string) { joined <- struct{}{} }
	var wg sync.WaitGroup
	results := make([][]byte, n)
	for i := range n {
		wg.Go(func() {
			v, err := s.Get(context.Background(), "k")
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		})
	}
	for range n { // every caller is in the flight, whose reply is held
		<-joined
	}
	<-held
	release()
	wg.Wait()
	if got := reads.Load(); got != 1 {
		t.Fatalf("%d concurrent misses made %d Redis reads, want 1", n, got)
	}
	results[0][0] = 'X' // each caller owns its bytes
	for i, r := range results[1:] {
		if string(r) != "v" {
			t.Fatalf("result %d = %q", i+1, r)
		}
	}
}

type countGets struct{ n *atomic.Int32 }

func (countGets) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (countGets) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h countGets) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "get" {
				h.n.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

func TestL1NeverOutlivesTheValue(t *testing.T) {
	a, b, _ := pair(t, Config{})
	if err := a.Set(context.Background(), "k", []byte("v"), time.Now().Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	cached(t, b, "k")
	redistest.Eventually(t, "the value expires everywhere", func() bool {
		return get(t, a, "k") == "<not found>" && get(t, b, "k") == "<not found>"
	})
}

func TestL1TTLBoundsStalenessWithoutMessages(t *testing.T) {
	a, b, _ := pair(t, Config{Invalidation: invalidation.OwnWrites, L1TTL: 300 * time.Millisecond})
	set(t, a, "k", "v1")
	cached(t, b, "k")
	writeBehindTheBus(t, a, nil, "k", "v2")
	redistest.Eventually(t, "B's L1 entry expires", func() bool { return get(t, b, "k") == "v2" })
}

func TestRedisKilledMidRunFailsLoudlyAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	opts := func() *redis.Options { return &redis.Options{MaxRetries: -1, DialTimeout: 200 * time.Millisecond} }
	a := newStore(t, srv.Client(opts()), Config{})
	b := newStore(t, srv.Client(opts()), Config{})
	ctx := context.Background()
	set(t, a, "k", "v1")
	cached(t, b, "k")

	srv.Kill()
	redistest.Eventually(t, "B notices", func() bool { return !b.Live() })
	if _, err := b.Get(ctx, "k"); !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("B.Get with Redis down = %v, want ErrUnavailable (no stale L1 fallback)", err)
	}
	err := a.Set(ctx, "k", []byte("lost"), time.Now().Add(time.Hour))
	if !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("A.Set with Redis down = %v, want ErrUnavailable", err)
	}

	srv.Restart() // same port, empty dataset
	redistest.Eventually(t, "both instances are live again", func() bool { return a.Live() && b.Live() })
	for _, s := range []*Store{a, b} {
		if got := get(t, s, "k"); got != "<not found>" {
			t.Fatalf("read %q after a failed write and a restart with an empty dataset", got)
		}
	}
	set(t, a, "k", "v3")
	if got := get(t, b, "k"); got != "v3" {
		t.Fatalf("B read %q after recovery, want v3", got)
	}
}

func TestCorruptValueIsNotCached(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(nil)
	s := newStore(t, c, Config{})
	ctx := context.Background()
	c.Set(ctx, "test:k", "not a tierstore value", 0)
	for range 2 {
		if _, err := s.Get(ctx, "k"); !errors.Is(err, tierstore.ErrCorrupt) {
			t.Fatalf("Get = %v, want ErrCorrupt", err)
		}
	}
	if st := s.Stats(); st.L1.Hits != 0 {
		t.Fatalf("a corrupt value was served from L1: %+v", st)
	}
	// Counted as corrupt, the class of the error the caller got.
	if got := s.Stats().Redis; got.ErrorsBy != [NumErrorClasses]uint64{ErrorCorrupt: 2} || got.Errors != 2 {
		t.Fatalf("errors %d by class %v, want 2 corrupt", got.Errors, got.ErrorsBy)
	}
}

func TestClosedStoreRefusesOperations(t *testing.T) {
	_, c := redistest.Miniredis(t)
	s := newStore(t, c, Config{Invalidation: invalidation.OwnWrites})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
	if err := s.Set(ctx, "k", nil, time.Time{}); !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("Set after Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestCancelledReadReturnsPromptlyWhileFlightContinues(t *testing.T) {
	m, _ := redistest.Miniredis(t)
	hold := redistest.NewReplyHold(t, m.Addr())
	s := newStore(t, redis.NewClient(&redis.Options{Addr: hold.Addr()}), Config{Invalidation: invalidation.OwnWrites})
	set(t, s, "k", "v")
	s.l1.InvalidateAll()
	held, release := hold.Arm("test:k")
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := s.Get(ctx, "k"); errc <- err }()
	<-held // Redis has answered the shared read; its reply is held
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v, want context.Canceled", err)
	}
	// The flight continues for others: it fills L1 once released.
	release()
	redistest.Eventually(t, "the flight fills L1", func() bool { return lookupL1(s, "k") == "v" })
}

// A graceful shutdown closes the store while handlers still run: every
// call must return normally (a result or ErrClosed), never panic, and
// every call after Close must return ErrClosed.
func TestCloseDuringCallsNeverPanics(t *testing.T) {
	_, c := redistest.Miniredis(t)
	// 300 rounds: without the close gate (nearcache's gate), ristretto's
	// "send on closed channel" panic shows in most runs with -race; 10
	// rounds are too few to show it.
	for range 300 {
		// A small L1: closing ristretto clears its counters, which for
		// the default size costs more than the rest of a round.
		s, err := New(Config{Redis: c, Invalidation: invalidation.OwnWrites, KeyPrefix: "close:", L1MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		started := make(chan struct{}, 8)
		for g := range 8 {
			wg.Go(func() {
				for i := 0; ; i++ {
					k := fmt.Sprintf("k%d-%d", g, i%16)
					errs := []error{
						s.Set(ctx, k, []byte("v"), time.Now().Add(time.Hour)),
						func() error { _, err := s.Get(ctx, k); return err }(),
						s.Touch(ctx, k, time.Now().Add(time.Hour)),
						s.Delete(ctx, k),
					}
					if i == 1 {
						started <- struct{}{}
					}
					for _, err := range errs {
						if errors.Is(err, tierstore.ErrClosed) {
							return
						}
						if err != nil && !errors.Is(err, tierstore.ErrNotFound) {
							t.Errorf("call during Close: %v", err)
							return
						}
					}
				}
			})
		}
		for range 8 {
			<-started
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if _, err := s.Get(ctx, "k"); !errors.Is(err, tierstore.ErrClosed) {
			t.Fatalf("Get after Close = %v, want ErrClosed", err)
		}
	}
}

// The sequential half of the race above: a write whose Redis step is
// still running when Close returns comes back with an honest result and
// leaves the closed store closed. A hook holds every script call in Redis
// until Close has returned.
func TestCloseWhileWritesWaitForRedis(t *testing.T) {
	_, c := redistest.Miniredis(t)
	s := newStore(t, c, Config{Invalidation: invalidation.OwnWrites})
	ctx := context.Background()
	set(t, s, "k", "v")
	held := make(chan struct{}, 3)
	release := make(chan struct{})
	c.AddHook(holdScripts{held, release})

	writes := []func() error{
		func() error { return s.Set(ctx, "k", []byte("w"), time.Now().Add(time.Hour)) },
		func() error { return s.Delete(ctx, "k") },
		func() error { return s.Touch(ctx, "k", time.Now().Add(time.Minute)) },
	}
	errs := make(chan error, len(writes))
	for _, w := range writes {
		go func() { errs <- w() }()
	}
	for range writes {
		<-held
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	for range writes {
		// The write reached Redis before Close: nil, ErrNotFound (the
		// Delete ran first) or ErrClosed are all honest; a panic is not.
		if err := <-errs; err != nil && !errors.Is(err, tierstore.ErrClosed) && !errors.Is(err, tierstore.ErrNotFound) {
			t.Errorf("write racing Close = %v", err)
		}
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
}

// holdScripts holds every script call (the tiered writes) until release
// is closed, after signalling held.
type holdScripts struct{ held, release chan struct{} }

func (holdScripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h holdScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			if n == "evalsha" {
				h.held <- struct{}{}
			}
			<-h.release
		}
		return next(ctx, cmd)
	}
}
func (holdScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A shared read ends at the deadline of the caller that started it; a
// caller that joined it with a later deadline must not fail with the
// first one's: it reads again.
func TestJoinedReadOutlivesTheFirstCallersDeadline(t *testing.T) {
	_, c := redistest.Miniredis(t)
	s := newStore(t, c, Config{Invalidation: invalidation.OwnWrites})
	set(t, s, "k", "v")
	s.l1.InvalidateAll()

	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	joined := make(chan struct{}, 2)
	s.hooks().afterFlightJoin = func(string) { joined <- struct{}{} }
	bothJoined := make(chan struct{})
	var reads atomic.Int32
	s.hooks().beforeL2Read = func(ctx context.Context, _ string) {
		if reads.Add(1) == 1 {
			// The first shared read starts once both callers are in it,
			// after the first caller's deadline passed: once the read's
			// own context, which has that deadline, has ended (its timer
			// may fire after the caller's).
			<-bothJoined
			<-ctx.Done()
		}
	}
	go func() { _, _ = s.Get(short, "k") }()
	<-joined
	secondErr := make(chan error, 1)
	var second []byte
	go func() {
		v, err := s.Get(context.Background(), "k")
		second = v
		secondErr <- err
	}()
	<-joined
	close(bothJoined)
	if err := <-secondErr; err != nil || string(second) != "v" {
		t.Fatalf("Get without a deadline, joined to a read whose caller's deadline passed = %q, %v; want v", second, err)
	}
	if n := reads.Load(); n != 2 {
		t.Fatalf("%d shared reads, want 2 (the expired one and the retry)", n)
	}
}

// A waiter whose own deadline passes returns ErrUnavailable with
// context.DeadlineExceeded, like a read that timed out itself.
func TestWaiterDeadlineIsUnavailable(t *testing.T) {
	m, _ := redistest.Miniredis(t)
	// Redis 100ms away: a read takes 200ms, far past the caller's deadline.
	c := redis.NewClient(&redis.Options{Addr: redistest.Latency(t, m.Addr(), 100*time.Millisecond)})
	t.Cleanup(func() { c.Close() })
	s := newStore(t, c, Config{Invalidation: invalidation.OwnWrites, HealthCheckInterval: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := s.Get(ctx, "k")
	if !errors.Is(err, tierstore.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get past its deadline = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
}

func TestWaitLiveAfterCloseIsErrClosed(t *testing.T) {
	_, c := redistest.Miniredis(t)
	s := newStore(t, c, Config{Invalidation: invalidation.OwnWrites})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waiting := make(chan error, 1)
	s2, err := New(Config{Redis: c, Invalidation: invalidation.OwnWrites, KeyPrefix: "other:", HealthCheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	go func() { waiting <- s2.WaitLive(ctx) }()
	s.Close()
	s2.Close()
	if err := s.WaitLive(ctx); !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("WaitLive after Close = %v, want ErrClosed", err)
	}
	if err := <-waiting; err != nil && !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("WaitLive during Close = %v, want nil or ErrClosed", err)
	}
}

func TestTinyHealthCheckIntervalIsAnError(t *testing.T) {
	_, c := redistest.Miniredis(t)
	for _, d := range []time.Duration{-time.Second, time.Nanosecond, 3 * time.Nanosecond, time.Millisecond} {
		if s, err := New(Config{Redis: c, Invalidation: invalidation.OwnWrites, HealthCheckInterval: d}); err == nil {
			s.Close()
			t.Errorf("New with HealthCheckInterval %v succeeded", d)
		}
	}
}

// One read that goes to Redis is one L1 miss, though the shared read looks
// at L1 again before asking Redis.
func TestOneRedisReadIsOneMiss(t *testing.T) {
	_, c := redistest.Miniredis(t)
	s := newStore(t, c, Config{Invalidation: invalidation.OwnWrites})
	set(t, s, "k", "v")
	s.l1.InvalidateAll()
	before := s.Stats()
	get(t, s, "k")
	after := s.Stats()
	if misses, l2 := after.L1.Misses-before.L1.Misses, after.Redis.Hits-before.Redis.Hits; misses != 1 || l2 != 1 {
		t.Fatalf("one Get through to Redis counted %d L1 misses and %d Redis hits, want 1 and 1", misses, l2)
	}
}

// A shared read that was never sent, because the caller that started it
// left while the store's connection was busy, must not fail the callers
// that joined it: they read again. The connection is held busy by a write
// whose completion is held.
func TestJoinedReadOutlivesTheFirstCallersCancellation(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(nil), Config{})
	set(t, s, "k", "v")
	s.l1.InvalidateAll()

	writing, releaseWrite := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.hooks().afterL2Write = func(string) { // on the connection's goroutine: it holds every read and write
		once.Do(func() { close(writing); <-releaseWrite })
	}
	go func() { _ = s.Set(context.Background(), "other", []byte("x"), time.Time{}) }()
	<-writing

	joined := make(chan struct{}, 2)
	s.hooks().afterFlightJoin = func(string) { joined <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() { _, err := s.Get(ctx, "k"); firstErr <- err }()
	<-joined
	type result struct {
		v   string
		err error
	}
	second := make(chan result, 1)
	go func() { v, err := s.Get(context.Background(), "k"); second <- result{string(v), err} }()
	<-joined
	cancel()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Get = %v, want context.Canceled", err)
	}
	close(releaseWrite)
	if r := <-second; r.err != nil || r.v != "v" {
		t.Fatalf("Get that joined a read its starter abandoned = %q, %v; want v", r.v, r.err)
	}
}
