package gorillastore_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/gorillastore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/tiered"
)

// Two instances, A and B, each a tiered.Store with the gorilla adapter,
// on one real redis-server: the situations of issue #12.

const prefix = "t:"

type node struct {
	tier  *tiered.Store
	store *gorillastore.Store
	h     http.Handler
}

// pair is A and B on one server. B's invalidations go through watch, so
// the test can wait until B has applied them (settle) or hold them
// (holdB).
type pair struct {
	srv   *redistest.Server
	a, b  *node
	truth *l2.Store // reads Redis itself
	watch watch
	seq   atomic.Int64
}

type setup struct {
	name    string
	latency time.Duration // B reaches Redis through a proxy that delays each byte this much
	gate    bool          // the test holds B's invalidations (holdB)
}

var (
	direct  = setup{name: "direct"}
	gated   = setup{name: "B's invalidations held", gate: true}
	slow1ms = setup{name: "B behind 1ms", latency: time.Millisecond}
	slow5ms = setup{name: "B behind 5ms", latency: 5 * time.Millisecond}
)

func newPair(t *testing.T, su setup) *pair {
	t.Helper()
	p := &pair{srv: redistest.Start(t)}
	opts := func() *redis.Options { return &redis.Options{ContextTimeoutEnabled: true} }
	newNode := func(cfg tiered.Config) *node {
		cfg.KeyPrefix = prefix
		tier, err := tiered.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tier.Close() })
		store := gorillastore.New(tier)
		return &node{tier: tier, store: store, h: rig(store)}
	}
	p.a = newNode(tiered.Config{Redis: p.srv.Client(opts())})
	cfgB := tiered.Config{Redis: p.srv.Client(opts()), OnInvalidate: p.watch.onInvalidate}
	if su.latency > 0 {
		o := opts()
		o.Addr = redistest.Latency(t, p.srv.Addr(), su.latency)
		c := redis.NewClient(o)
		t.Cleanup(func() { c.Close() })
		cfgB.Redis = c
	}
	if su.gate {
		// While B's invalidations are held, so are its health-check
		// pongs: its lease must outlast the test.
		cfgB.HealthCheckInterval = time.Minute
	}
	p.b = newNode(cfgB)
	redistest.WaitLive(t, p.a.tier, p.b.tier)
	var err error
	if p.truth, err = l2.New(l2.Config{Redis: p.srv.Client(nil), KeyPrefix: prefix}); err != nil {
		t.Fatal(err)
	}
	return p
}

// watch sees B's invalidations, in order, on B's subscription goroutine.
type watch struct {
	markers sync.Map                  // key -> chan struct{}, closed when B applied its invalidation
	held    atomic.Pointer[heldQueue] // if set, the next invalidation waits there
}

type heldQueue struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *watch) onInvalidate(key string) {
	if ch, ok := w.markers.LoadAndDelete(key); ok {
		close(ch.(chan struct{}))
	}
	if h := w.held.Swap(nil); h != nil {
		close(h.entered)
		<-h.release // and every later invalidation waits behind this one
	}
}

// await waits for ch, failing t if it takes 10 seconds (it is a guard
// against a hung test, not a timing assumption).
func await(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting until %s", what)
	}
}

// marker writes a key of no session through A, which B read first, so
// that Redis reports it to B after everything written before it.
func (p *pair) marker(t *testing.T) {
	t.Helper()
	key := fmt.Sprintf("marker-%d", p.seq.Add(1))
	ch := make(chan struct{})
	p.watch.markers.Store(key, ch)
	_, _ = p.b.tier.Get(context.Background(), key) // followed by B, in per-key mode
	if err := p.a.tier.Set(context.Background(), key, []byte("x"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	await(t, "B applies "+key, ch)
}

// settle returns once B has applied the invalidations of every write made
// before the call.
func (p *pair) settle(t *testing.T) { p.marker(t) }

// holdB makes B apply no invalidation until release is called (or the
// test ends): B's cached copies stay as they are, however late.
func (p *pair) holdB(t *testing.T) (release func()) {
	t.Helper()
	h := &heldQueue{entered: make(chan struct{}), release: make(chan struct{})}
	release = func() { h.once.Do(func() { close(h.release) }) }
	t.Cleanup(release) // before B is closed, which waits for the subscription
	p.watch.held.Store(h)
	key := fmt.Sprintf("hold-%d", p.seq.Add(1))
	_, _ = p.b.tier.Get(context.Background(), key) // followed by B, in per-key mode
	if err := p.a.tier.Set(context.Background(), key, []byte("x"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	await(t, "B's subscription is held", h.entered)
	return release
}

// stored is the session of cookie c as Redis holds it, and whether Redis
// holds it.
func (p *pair) stored(t *testing.T, c *http.Cookie) (string, bool) {
	t.Helper()
	return storedIn(t, p.truth, p.a.store.KeyOf(idOf(c)))
}

// cachedOnB is B's copy of the session, read as the adapter would
// without a version: from B's L1 if it holds one.
func (p *pair) cachedOnB(t *testing.T, c *http.Cookie) string {
	t.Helper()
	b, _, _, err := p.b.tier.GetVersion(context.Background(), p.b.store.KeyOf(idOf(c)), tierstore.NoVersion)
	if err != nil {
		return err.Error()
	}
	values, err := gorillastore.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return render(values)
}

// start serves a request on h in the background, held before its save.
func start(h http.Handler, target string, cookie *http.Cookie) (*hold, <-chan result) {
	hd := newHold()
	done := make(chan result, 1)
	go func() { done <- call(h, target, cookie, hd) }()
	return hd, done
}

// outcomes tallies what went wrong in the runs of one test: each count
// must be 0.
type outcomes struct {
	runs      int
	alive     int // runs after which the session was stored, or loaded, again
	cookie    int // responses that set a cookie naming it
	notEnded  int // responses whose handler was not shown an ended, empty session
	errored   int // responses other than 200
	lastError string
}

func (o *outcomes) check(t *testing.T) {
	t.Helper()
	if o.alive+o.cookie+o.notEnded+o.errored != 0 {
		t.Fatalf("of %d runs: session alive again after %d; responses that set a cookie naming it %d, that did not tell the handler %d, that failed %d (last: %s)",
			o.runs, o.alive, o.cookie, o.notEnded, o.errored, o.lastError)
	}
}

// saved tallies the response of a save that found the session deleted.
func (o *outcomes) saved(res result, dead *http.Cookie) {
	switch {
	case res.code != 200:
		o.errored++
		o.lastError = fmt.Sprintf("%d %s", res.code, res.body)
	case !res.report.Ended || res.report.After != "" || !res.report.IsNew:
		o.notEnded++
	}
	if res.cookie != nil && idOf(res.cookie) == idOf(dead) {
		o.cookie++
	}
}

// Row 1: logout on A while a writing request of the same session on B is
// in flight (B loaded before, saves after).
func TestLogoutWinsOverAWritingRequestInFlight(t *testing.T) {
	for _, su := range []setup{direct, slow1ms, slow5ms} {
		t.Run(su.name, func(t *testing.T) {
			p := newPair(t, su)
			o := outcomes{runs: 20}
			for i := range o.runs {
				cookie := next(nil, must(t, p.a.h, "/login", nil))
				if i%2 == 0 {
					must(t, p.b.h, "/get", cookie) // B loads from its L1
				}
				hd, done := start(p.b.h, "/set?set=cart=tea", cookie)
				await(t, "B loaded", hd.loaded)
				must(t, p.a.h, "/logout", cookie)
				close(hd.proceed)
				o.saved(<-done, cookie)
				if _, ok := p.stored(t, cookie); ok {
					o.alive++
				}
			}
			o.check(t)
		})
	}
}

// Row 1 again, with the session deleted by an operator instead of a
// logout.
func TestDeletionByAnOperatorWinsOverAWritingRequestInFlight(t *testing.T) {
	for _, how := range []string{"Store.Delete", "DEL", "foreign bytes"} {
		t.Run(how, func(t *testing.T) {
			p := newPair(t, direct)
			o := outcomes{runs: 10}
			for range o.runs {
				cookie := next(nil, must(t, p.a.h, "/login", nil))
				hd, done := start(p.b.h, "/set?set=cart=tea", cookie)
				await(t, "B loaded", hd.loaded)
				key := p.a.store.KeyOf(idOf(cookie))
				switch how {
				case "Store.Delete":
					if err := p.a.store.Delete(context.Background(), idOf(cookie)); err != nil {
						t.Fatal(err)
					}
				case "DEL":
					p.srv.Do("DEL", prefix+key)
				case "foreign bytes":
					p.srv.Do("SET", prefix+key, "not a tierstore value")
				}
				close(hd.proceed)
				o.saved(<-done, cookie)
				if how == "foreign bytes" {
					if got := p.srv.Do("GET", prefix+key); got != "not a tierstore value" {
						o.alive++
					}
				} else if _, ok := p.stored(t, cookie); ok {
					o.alive++
				}
			}
			o.check(t)
		})
	}
}

// Row 2: logout on A returned, then a writing request on B with the old
// cookie, while B's L1 still holds the session.
func TestSaveAfterLogoutDoesNotResurrect(t *testing.T) {
	for _, su := range []setup{gated, direct, slow1ms, slow5ms} {
		t.Run(su.name, func(t *testing.T) {
			p := newPair(t, su)
			o := outcomes{runs: 10}
			if su.gate {
				o.runs = 3
			}
			stale := 0
			for range o.runs {
				cookie := next(nil, must(t, p.a.h, "/login", nil))
				p.settle(t)
				must(t, p.b.h, "/get", cookie) // B caches the session
				release := func() {}
				if su.gate {
					release = p.holdB(t)
				}
				must(t, p.a.h, "/logout", cookie)
				if su.gate {
					if got := p.cachedOnB(t, cookie); got != "user=ada" {
						t.Fatalf("B's L1 holds %q, want the logged-out session: the test would not test", got)
					}
				}
				res := call(p.b.h, "/set?set=cart=tea", cookie, nil)
				if res.report.Loaded == "user=ada" {
					stale++
					o.saved(res, cookie)
				} else if su.gate {
					t.Fatalf("B loaded %q, want its stale copy", res.report.Loaded)
				} else if res.code != 200 || res.cookie != nil && idOf(res.cookie) == idOf(cookie) {
					o.saved(res, cookie) // B knew: a new session, under a new ID
				}
				_, alive := p.stored(t, cookie)
				release()
				p.settle(t)
				// Later requests with the old cookie, on either instance,
				// find no session; a save makes a new one.
				namedIt := false
				for _, n := range []*node{p.a, p.b} {
					later := must(t, n.h, "/set?set=cart=coffee", cookie)
					alive = alive || later.report.Loaded != ""
					namedIt = namedIt || later.cookie == nil || idOf(later.cookie) == idOf(cookie)
				}
				if _, ok := p.stored(t, cookie); ok || alive {
					o.alive++
				}
				if namedIt {
					o.cookie++
				}
			}
			t.Logf("B loaded the logged-out session from its L1 in %d of %d runs", stale, o.runs)
			o.check(t)
		})
	}
}

// Row 3: two requests of one session, one after the other, on A then B,
// each changing a different key, while B's L1 still holds the session
// as it was before A's request.
func TestSequentialRequestsOnTwoInstancesKeepBothChanges(t *testing.T) {
	for _, su := range []setup{gated, direct, slow1ms, slow5ms} {
		for _, kind := range []string{"A's cookie", "the cookie before A's request", "an ID-only cookie"} {
			t.Run(su.name+"/"+kind, func(t *testing.T) {
				p := newPair(t, su)
				runs := 10
				if su.gate {
					runs = 2
				}
				lost, stale := 0, 0
				for i := range runs {
					before := next(nil, must(t, p.a.h, "/login", nil))
					p.settle(t)
					must(t, p.b.h, "/get", before) // B caches the session
					release := func() {}
					if su.gate {
						release = p.holdB(t)
					}
					after := next(before, must(t, p.a.h, fmt.Sprintf("/set?set=a=%d", i), before))
					if su.gate {
						if got := p.cachedOnB(t, before); got != "user=ada" {
							t.Fatalf("B's L1 holds %q, want the session before A's request", got)
						}
					}
					cookie := map[string]*http.Cookie{
						"A's cookie":                    after,
						"the cookie before A's request": before,
						"an ID-only cookie":             plain(after),
					}[kind]
					res := must(t, p.b.h, fmt.Sprintf("/set?set=b=%d", i), cookie)
					want := fmt.Sprintf("a=%d,b=%d,user=ada", i, i)
					if got, _ := p.stored(t, before); got != want {
						lost++
						t.Errorf("stored %q, want %q", got, want)
					}
					if res.report.After != want {
						t.Errorf("B's handler sees %q after its save, want %q", res.report.After, want)
					}
					// With the version A's response gave, B reads A's
					// change at once, stale L1 or not.
					if kind == "A's cookie" && res.report.Loaded != fmt.Sprintf("a=%d,user=ada", i) {
						t.Errorf("with A's cookie B loaded %q: not A's write", res.report.Loaded)
					}
					if res.report.Loaded == "user=ada" {
						stale++
					}
					if su.gate && kind != "A's cookie" && res.report.Loaded != "user=ada" {
						t.Errorf("B loaded %q, want its stale copy (the merge is what is tested)", res.report.Loaded)
					}
					release()
				}
				t.Logf("B loaded the session from before A's request in %d of %d runs", stale, runs)
				if lost != 0 {
					t.Fatalf("A's change lost %d of %d", lost, runs)
				}
			})
		}
	}
}

// Row 4: two concurrent requests of one session, on A and on B, changing
// different keys.
func TestConcurrentRequestsChangingDifferentKeysKeepBoth(t *testing.T) {
	for _, su := range []setup{direct, slow1ms} {
		t.Run(su.name, func(t *testing.T) {
			p := newPair(t, su)
			runs := 200
			if su.latency > 0 {
				runs = 50
			}
			lost := 0
			for i := range runs {
				cookie := next(nil, must(t, p.a.h, "/login", nil))
				holdA, doneA := start(p.a.h, fmt.Sprintf("/set?set=a=%d", i), cookie)
				holdB, doneB := start(p.b.h, fmt.Sprintf("/set?set=b=%d", i), cookie)
				await(t, "A loaded", holdA.loaded)
				await(t, "B loaded", holdB.loaded)
				if i%2 == 0 { // both save at once
					close(holdA.proceed)
					close(holdB.proceed)
				} else { // A saves, then B
					close(holdA.proceed)
					<-doneA
					doneA = nil
					close(holdB.proceed)
				}
				for _, done := range []<-chan result{doneA, doneB} {
					if done == nil {
						continue
					}
					if res := <-done; res.code != 200 {
						t.Fatalf("a save answered %d %s", res.code, res.body)
					}
				}
				if got, _ := p.stored(t, cookie); got != fmt.Sprintf("a=%d,b=%d,user=ada", i, i) {
					lost++
				}
			}
			if lost != 0 {
				t.Fatalf("one change lost %d of %d", lost, runs)
			}
		})
	}
}

func TestSameKeyOnTwoInstancesLastWriterWins(t *testing.T) {
	p := newPair(t, direct)
	cookie := next(nil, must(t, p.a.h, "/login", nil))
	first, second := overlap(t, p.a.h, "/set?set=k=x", p.b.h, "/set?set=k=y", cookie)
	if got, _ := p.stored(t, cookie); got != "k=y,user=ada" {
		t.Fatalf("stored %q, want the last save's k=y", got)
	}
	if first.report.After != "k=x,user=ada" || second.report.After != "k=y,user=ada" {
		t.Fatalf("the handlers see %q and %q", first.report.After, second.report.After)
	}
}

// The version in the cookie: a request that starts after the previous
// response sees its changes on an instance whose copy is older.
func TestCookieVersionGivesReadYourWritesOnAStaleInstance(t *testing.T) {
	p := newPair(t, gated)
	before := next(nil, must(t, p.a.h, "/login", nil))
	p.settle(t)
	must(t, p.b.h, "/get", before)
	p.holdB(t)
	after := next(before, must(t, p.a.h, "/set?set=cart=tea", before))
	// Without the version, B serves its stale copy (the ~1 ms window,
	// here held open)...
	if got := must(t, p.b.h, "/get", plain(after)).report.Loaded; got != "user=ada" {
		t.Fatalf("with an ID-only cookie B loads %q, want its stale copy: the test would not test", got)
	}
	// ...with it, B reads Redis.
	if got := must(t, p.b.h, "/get", after).report.Loaded; got != "cart=tea,user=ada" {
		t.Fatalf("with the cookie of A's response B loads %q, want A's write", got)
	}
}
