package session_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

// The per-user index, its events and its races, on each Store: l1 (two
// Managers on one memory store), l2 and tiered (two instances, each with
// its own client, on one real redis-server). A judge, a Manager on a
// store without a cache (l2, or the l1 store itself), says what the
// source of truth holds.

// userApp is one instance: a Manager behind LoadAndSave with the routes
// of userHandler, on a hookedStore over its tier.
type userApp struct {
	m      *session.Manager
	h      http.Handler
	hooks  *hookedStore
	tiered *tiered.Store // nil unless the tier is tiered
	inv    *redistest.Invalidations
	held   chan chan struct{}
}

// eventLog collects the events of every instance of a test.
type eventLog struct {
	mu   sync.Mutex
	list []session.Event
}

func (l *eventLog) add(e session.Event) { l.mu.Lock(); l.list = append(l.list, e); l.mu.Unlock() }

// count returns how many events of kind were reported for handle ("":
// any).
func (l *eventLog) count(kind session.EventKind, handle string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.list {
		if e.Kind == kind && (handle == "" || e.Handle == handle) {
			n++
		}
	}
	return n
}

// hookedStore is a tier with hooks on the per-user index's calls (keys
// with "user:" after the prefix), and fails the test on any walk of the
// keyspace (Keys).
type hookedStore struct {
	t testing.TB
	tierstore.Store
	// beforeIndexWrite, if set, runs before each write of an index.
	beforeIndexWrite atomic.Pointer[func()]
	// onIndexRead, if set, runs before each read of an index.
	onIndexRead atomic.Pointer[func()]
}

func isIndex(key string) bool { return strings.Contains(key, session.DefaultKeyPrefix+"user:") }

func (h *hookedStore) vs() tierstore.Versioned { return h.Store.(tierstore.Versioned) }

func (h *hookedStore) run(p *atomic.Pointer[func()], key string) {
	if f := p.Load(); f != nil && isIndex(key) {
		(*f)()
	}
}

func (h *hookedStore) Set(ctx context.Context, key string, v []byte, exp time.Time) error {
	h.run(&h.beforeIndexWrite, key)
	return h.Store.Set(ctx, key, v, exp)
}

func (h *hookedStore) Delete(ctx context.Context, key string) error {
	h.run(&h.beforeIndexWrite, key)
	return h.Store.Delete(ctx, key)
}

func (h *hookedStore) GetVersion(ctx context.Context, key string, atLeast tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	h.run(&h.onIndexRead, key)
	return h.vs().GetVersion(ctx, key, atLeast)
}

func (h *hookedStore) ViewVersion(ctx context.Context, key string, atLeast tierstore.Version, fn func([]byte, tierstore.Version, time.Time) error) error {
	h.run(&h.onIndexRead, key)
	if vv, ok := h.Store.(tierstore.VersionViewer); ok {
		return vv.ViewVersion(ctx, key, atLeast, fn)
	}
	b, v, exp, err := h.vs().GetVersion(ctx, key, atLeast) // l2 lends nothing
	if err != nil {
		return err
	}
	return fn(b, v, exp)
}

func (h *hookedStore) SetIf(ctx context.Context, key string, v []byte, exp time.Time, want tierstore.Version) (tierstore.Version, error) {
	h.run(&h.beforeIndexWrite, key)
	return h.vs().SetIf(ctx, key, v, exp, want)
}

func (h *hookedStore) DeleteIf(ctx context.Context, key string, want tierstore.Version) error {
	h.run(&h.beforeIndexWrite, key)
	return h.vs().DeleteIf(ctx, key, want)
}

func (h *hookedStore) Touch(ctx context.Context, key string, exp time.Time) error {
	return h.Store.(tierstore.Toucher).Touch(ctx, key, exp)
}

func (h *hookedStore) Keys(context.Context, func(string) bool) error {
	h.t.Error("the keyspace was walked (Keys)")
	return nil
}

func newUserApp(t *testing.T, store tierstore.Store, inv *redistest.Invalidations, cfg session.Config) *userApp {
	t.Helper()
	app := &userApp{hooks: &hookedStore{t: t, Store: store}, inv: inv, held: make(chan chan struct{})}
	app.tiered, _ = store.(*tiered.Store)
	cfg.Store = app.hooks
	cfg.Cookie.AllowInsecure = true
	m, err := session.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app.m, app.h = m, m.LoadAndSave(userHandler(t, m, app.held))
	return app
}

// userHandler serves handler's routes and /login?user=U&device=D (label,
// then SetUser), /user (the session's user), /hold?k=v (signal loaded,
// wait for release, put; with destroy, Destroy instead), /revoke?user=U, /sessions?user=U (handles,
// the current one starred).
func userHandler(t *testing.T, m *session.Manager, held chan chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", handler(m))
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if d := r.URL.Query().Get("device"); d != "" {
			if err := m.SetLabel(r.Context(), "device", d); err != nil {
				t.Error(err)
			}
		}
		if err := m.SetUser(r.Context(), r.URL.Query().Get("user")); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/user", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, m.User(r.Context())) })
	mux.Handle("/hold", holdRoute(m, held))
	mux.HandleFunc("/sessions", func(w http.ResponseWriter, r *http.Request) {
		list, err := m.UserSessions(r.Context(), r.URL.Query().Get("user"))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		for _, s := range list {
			star := ""
			if s.Current {
				star = "*"
			}
			fmt.Fprintf(w, "%s%s %s\n", star, s.Handle, s.Labels["device"])
		}
	})
	return mux
}

// serve serves a GET and returns the status, body and the session cookie
// set ("" if none).
func (a *userApp) serve(t *testing.T, path, cookie string) (int, string, string) {
	t.Helper()
	res := serve(a.h, path, cookie)
	return res.StatusCode, body(res), setCookie(res)
}

// login logs user in on a, from a fresh browser, and returns the cookie.
func (a *userApp) login(t *testing.T, user, device string) string {
	t.Helper()
	code, b, set := a.serve(t, "/login?user="+user+"&device="+device, "")
	if code != 200 || set == "" {
		t.Fatalf("login of %s: %d %q, cookie %q", user, code, b, set)
	}
	return set
}

// user is the user a read of the session with cookie sees on a ("": none).
func (a *userApp) user(t *testing.T, cookie string) string {
	t.Helper()
	_, b, _ := a.serve(t, "/user", cookie)
	return b
}

// hold starts a /hold request and returns once it has loaded its session;
// finish releases it and returns its status and the cookie it set.
func (a *userApp) hold(t *testing.T, path, cookie string) (finish func() (int, string)) {
	t.Helper()
	done := startHeld(a.h, a.held, path, cookie)
	return func() (int, string) {
		res := done()
		set := ""
		if c := sessionCookie(res); c != nil {
			set = c.Value
		}
		return res.StatusCode, set
	}
}

// warm reads the session on a until a serves it from its L1 (tiered), or
// once (other tiers).
func (a *userApp) warm(t *testing.T, cookie, user string) {
	t.Helper()
	for i := 0; ; i++ {
		var hits uint64
		if a.tiered != nil {
			hits = a.tiered.Stats().L1.Hits
		}
		if got := a.user(t, cookie); got != user {
			t.Fatalf("the session reads user %q, want %q", got, user)
		}
		if a.tiered == nil || a.tiered.Stats().L1.Hits > hits {
			return
		}
		if i == 1000 {
			t.Fatal("the session is never served from L1")
		}
	}
}

// settled waits until a serves no user for any of cookies: within the
// store's invalidation bound for tiered, at once for the others.
func (a *userApp) settled(t *testing.T, what string, cookies []string) {
	t.Helper()
	redistest.Eventually(t, what, func() bool {
		for _, c := range cookies {
			if a.user(t, c) != "" {
				return false
			}
		}
		return true
	})
}

// deployment is two instances and a judge on one tier.
type deployment struct {
	a, b, judge *userApp
	ev          *eventLog
	srv         *redistest.Server // nil for l1
}

var userTiers = []string{"l1", "l2", "tiered"}

// deploy starts two instances and a judge of tier with cfg (Store and
// OnEvent set here).
func deploy(t *testing.T, tier string, cfg session.Config) *deployment {
	t.Helper()
	d := &deployment{ev: &eventLog{}}
	cfg.OnEvent = d.ev.add
	judgeCfg := session.Config{Now: cfg.Now, Encryption: cfg.Encryption}
	switch tier {
	case "l1":
		mem, err := l1.New(l1.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mem.Close() })
		d.a, d.b, d.judge = newUserApp(t, mem, nil, cfg), newUserApp(t, mem, nil, cfg), newUserApp(t, mem, nil, judgeCfg)
		return d
	case "l2", "tiered":
		d.srv = redistest.Start(t)
		judge, err := l2.New(l2.Config{Redis: d.srv.Client(nil)})
		if err != nil {
			t.Fatal(err)
		}
		d.judge = newUserApp(t, judge, nil, judgeCfg)
		stores := make([]tierstore.Store, 2)
		invs := []*redistest.Invalidations{{}, {}}
		for i := range stores {
			if tier == "l2" {
				stores[i], err = l2.New(l2.Config{Redis: d.srv.Client(nil)})
			} else {
				// A long lease, so that an instance whose invalidations a
				// test holds stays Live, serving its stale copies.
				var ts *tiered.Store
				ts, err = tiered.New(tiered.Config{Redis: d.srv.Client(nil), HealthCheckInterval: time.Minute, OnInvalidate: invs[i].OnInvalidate})
				if err == nil {
					t.Cleanup(func() { ts.Close() })
					redistest.WaitLive(t, ts)
				}
				stores[i] = ts
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		d.a, d.b = newUserApp(t, stores[0], invs[0], cfg), newUserApp(t, stores[1], invs[1], cfg)
		return d
	}
	t.Fatalf("no tier %q", tier)
	return nil
}

// noScan fails the test if Redis ran KEYS or SCAN since it was called.
func (d *deployment) noScan(t *testing.T) (check func()) {
	if d.srv == nil {
		return func() {} // l1: hookedStore fails on Keys
	}
	d.srv.Do("CONFIG", "RESETSTAT")
	return func() {
		t.Helper()
		stats := fmt.Sprint(d.srv.Do("INFO", "commandstats"))
		for _, cmd := range []string{"cmdstat_keys:", "cmdstat_scan:"} {
			if strings.Contains(stats, cmd) {
				t.Fatalf("Redis ran %s", strings.TrimSuffix(cmd, ":"))
			}
		}
	}
}

// RevokeUser racing writing requests of every session of the user, held
// between their load and their save on both instances, each of which
// holds the sessions in L1: none of 200 comes back, neither in the
// source of truth nor on either instance, and each session is reported
// revoked once.
func TestRevokeUserRacingWritesOnBothInstancesRevivesNone(t *testing.T) {
	for _, tier := range userTiers {
		t.Run(tier, func(t *testing.T) {
			d := deploy(t, tier, session.Config{})
			check := d.noScan(t)
			revived, raced := 0, 0
			for round := range 10 {
				user := fmt.Sprint("ada", round)
				var cookies []string
				for i := range 5 {
					cookies = append(cookies, d.a.login(t, user, fmt.Sprint("a", i)), d.b.login(t, user, fmt.Sprint("b", i)))
				}
				for _, c := range cookies {
					d.a.warm(t, c, user)
					d.b.warm(t, c, user)
				}
				var finish []func() (int, string)
				for _, c := range cookies {
					finish = append(finish, d.a.hold(t, "/hold?cart=1", c), d.b.hold(t, "/hold?cart=2", c))
				}
				revoker := d.a
				if round%2 == 1 {
					revoker = d.b
				}
				n, err := revoker.m.RevokeUser(context.Background(), user)
				if err != nil || n != len(cookies) {
					t.Fatalf("RevokeUser: %d sessions, %v; want %d", n, err, len(cookies))
				}
				for _, f := range finish {
					raced++
					if code, set := f(); code != 200 || set != "" {
						t.Fatalf("a request in flight: status %d, cookie set %v; want 200 and none", code, set != "")
					}
				}
				for _, c := range cookies {
					if d.judge.user(t, c) != "" {
						revived++
					}
				}
				d.a.settled(t, "A serves no revoked session", cookies)
				d.b.settled(t, "B serves no revoked session", cookies)
				if got := d.ev.count(session.EventRevoked, ""); got != (round+1)*len(cookies) {
					t.Fatalf("%d revoked events after round %d, want %d", got, round, (round+1)*len(cookies))
				}
				if list, err := d.b.m.UserSessions(context.Background(), user); err != nil || len(list) != 0 {
					t.Fatalf("UserSessions after RevokeUser: %v, %v", list, err)
				}
			}
			if raced != 200 || revived != 0 {
				t.Fatalf("%d of %d sessions revived", revived, raced)
			}
			check()
		})
	}
}

// A stale copy of the index (the revoking instance's invalidations held,
// tiered) does not hide a session logged in on the other instance from
// RevokeUser: the index is written conditionally, so the revoke reads it
// again when its copy lost.
func TestRevokeUserSeesALoginItsStaleIndexCopyMissed(t *testing.T) {
	for _, tier := range userTiers {
		t.Run(tier, func(t *testing.T) {
			d := deploy(t, tier, session.Config{})
			first := d.a.login(t, "ada", "a")
			if list, err := d.a.m.UserSessions(context.Background(), "ada"); err != nil || len(list) != 1 {
				t.Fatalf("UserSessions: %v, %v", list, err) // A holds the index in L1
			}
			// B's login writes the index; A does not hear of it until it
			// reads the index again.
			var second string
			if d.a.tiered != nil {
				release := d.a.holdInvalidations(t, d.srv)
				d.a.warmIndex(t, "ada")
				second = d.b.login(t, "ada", "b")
				defer release()
			} else {
				second = d.b.login(t, "ada", "b")
			}
			if n, err := d.a.m.RevokeUser(context.Background(), "ada"); err != nil || n != 2 {
				t.Fatalf("RevokeUser: %d, %v; want both sessions", n, err)
			}
			for _, c := range []string{first, second} {
				if got := d.judge.user(t, c); got != "" {
					t.Fatalf("a session survived RevokeUser: user %q", got)
				}
			}
		})
	}
}

// holdInvalidations makes a (tiered) apply no invalidation until release.
func (a *userApp) holdInvalidations(t *testing.T, srv *redistest.Server) (release func()) {
	t.Helper()
	c := srv.Client(nil)
	return a.inv.Hold(t, func(marker string) {
		_, _ = a.tiered.Get(context.Background(), marker) // followed, in per-key mode
		if err := c.Set(context.Background(), l2.DefaultKeyPrefix+marker, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
}

// Logins of one user beyond MaxSessionsPerUser, concurrent on both
// instances, each reading the index before any writes it (a hook holds
// every index write until all have read): at the end exactly the limit
// is alive, the listed ones, and each session ended is reported evicted
// once.
func TestConcurrentLoginsBeyondTheLimitLeaveTheLimitAlive(t *testing.T) {
	const limit, existing, concurrent = 3, 3, 8
	for _, tier := range userTiers {
		t.Run(tier, func(t *testing.T) {
			d := deploy(t, tier, session.Config{MaxSessionsPerUser: limit})
			check := d.noScan(t)
			var cookies []string
			for i := range existing {
				cookies = append(cookies, d.a.login(t, "ada", fmt.Sprint("old", i)))
			}
			var reads atomic.Int32
			allRead := make(chan struct{})
			onRead := func() {
				if reads.Add(1) == concurrent {
					close(allRead)
				}
			}
			beforeWrite := func() { <-allRead }
			for _, app := range []*userApp{d.a, d.b} {
				app.hooks.onIndexRead.Store(&onRead)
				app.hooks.beforeIndexWrite.Store(&beforeWrite)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			for i := range concurrent {
				app := d.a
				if i%2 == 1 {
					app = d.b
				}
				wg.Go(func() {
					c := app.login(t, "ada", fmt.Sprint("new", i))
					mu.Lock()
					cookies = append(cookies, c)
					mu.Unlock()
				})
			}
			wg.Wait()
			for _, app := range []*userApp{d.a, d.b} {
				app.hooks.onIndexRead.Store(nil)
				app.hooks.beforeIndexWrite.Store(nil)
			}
			alive := 0
			for _, c := range cookies {
				if d.judge.user(t, c) == "ada" {
					alive++
				}
			}
			if alive != limit {
				t.Fatalf("%d sessions alive after %d logins, want the limit, %d", alive, len(cookies), limit)
			}
			// The judge reads past any cache: an instance may list an
			// evicted session for as long as its copy is stale.
			list, err := d.judge.m.UserSessions(context.Background(), "ada")
			if err != nil || len(list) != limit {
				t.Fatalf("UserSessions lists %d, %v; want %d", len(list), err, limit)
			}
			if c, e := d.ev.count(session.EventCreated, ""), d.ev.count(session.EventEvicted, ""); c != len(cookies) || e != len(cookies)-limit {
				t.Fatalf("%d created and %d evicted events; want %d and %d", c, e, len(cookies), len(cookies)-limit)
			}
			for _, s := range list {
				if d.ev.count(session.EventEvicted, s.Handle) != 0 {
					t.Fatalf("a listed session was reported evicted")
				}
			}
			check()
		})
	}
}

// A Renew of a bound session in flight while RevokeUser runs on the
// other instance (held after it wrote the new ID, before it replaced the
// old one in the index) ends logged out: the index keeps the revoked
// handle, so the renewal does not index, or keep, its new ID.
func TestRenewInFlightDuringRevokeUserEndsLoggedOut(t *testing.T) {
	for _, tier := range userTiers {
		t.Run(tier, func(t *testing.T) {
			d := deploy(t, tier, session.Config{})
			cookie := d.a.login(t, "ada", "a")
			reading, resume := make(chan struct{}), make(chan struct{})
			var once sync.Once
			hold := func() { once.Do(func() { close(reading); <-resume }) }
			d.b.hooks.onIndexRead.Store(&hold)
			type result struct {
				code int
				set  string
			}
			done := make(chan result, 1)
			go func() {
				code, _, set := d.b.serve(t, "/renew", cookie)
				done <- result{code, set}
			}()
			<-reading // B wrote the new ID and is about to read the index
			// The renewal deleted the old ID already: the revoke ends no
			// live session, but marks its handle revoked.
			if n, err := d.a.m.RevokeUser(context.Background(), "ada"); err != nil || n != 0 {
				t.Fatalf("RevokeUser: %d, %v", n, err)
			}
			close(resume)
			r := <-done
			if r.code != 200 {
				t.Fatalf("the renewal answered %d", r.code)
			}
			for _, c := range []string{cookie, r.set} {
				if c != "" && d.judge.user(t, c) != "" {
					t.Fatalf("a session of the revoked user is alive after the renewal")
				}
			}
			if list, err := d.a.m.UserSessions(context.Background(), "ada"); err != nil || len(list) != 0 {
				t.Fatalf("UserSessions: %v, %v", list, err)
			}
		})
	}
}

// Each change is reported once, by the instance that made it, with the
// user and the handle, never the ID: a login, its renewal on the other
// instance, two concurrent logouts of it on both, a revocation of one
// session from both instances, an eviction, an anonymous session.
func TestEventsAreReportedOnceEach(t *testing.T) {
	for _, tier := range userTiers {
		t.Run(tier, func(t *testing.T) {
			d := deploy(t, tier, session.Config{MaxSessionsPerUser: 2})
			ctx := context.Background()
			first := d.a.login(t, "ada", "a")
			_, _, renewed := d.b.serve(t, "/renew", first)
			finishA := d.a.hold(t, "/hold?destroy", renewed) // two logouts, loaded before either
			finishB := d.b.hold(t, "/hold?destroy", renewed)
			finishA()
			finishB()
			if d.judge.user(t, renewed) != "" {
				t.Fatal("the destroyed session is alive")
			}
			x := d.b.login(t, "ada", "x")
			list, err := d.judge.m.UserSessions(ctx, "ada") // past any stale copy of the destroyed one
			if err != nil || len(list) != 1 {
				t.Fatalf("UserSessions: %v, %v", list, err)
			}
			hx := list[0].Handle
			if ok, err := d.a.m.RevokeSession(ctx, "ada", hx); !ok || err != nil {
				t.Fatalf("RevokeSession: %v, %v", ok, err)
			}
			if ok, err := d.b.m.RevokeSession(ctx, "ada", hx); ok || err != nil {
				t.Fatalf("RevokeSession of a revoked session: %v, %v", ok, err)
			}
			if d.judge.user(t, x) != "" {
				t.Fatal("the revoked session is alive")
			}
			for i := range 3 { // beyond the limit of 2: the first is evicted
				d.a.login(t, "grace", fmt.Sprint("g", i))
			}
			_, _, anon := d.b.serve(t, "/put?cart=1", "")

			d.ev.mu.Lock()
			defer d.ev.mu.Unlock()
			seen := map[string]int{}
			kinds := map[session.EventKind]int{}
			for _, e := range d.ev.list {
				seen[e.Kind.String()+" "+e.Handle]++
				kinds[e.Kind]++
				for _, c := range []string{first, renewed, x, anon} {
					id, _, _ := strings.Cut(c, ".")
					if strings.Contains(fmt.Sprint(e), id) {
						t.Fatalf("event %v names a session ID", e)
					}
				}
				if e.Handle == "" || e.Kind != session.EventCreated && e.User == "" {
					t.Fatalf("event %v lacks its handle or user", e)
				}
			}
			for k, n := range seen {
				if n != 1 {
					t.Fatalf("%q reported %d times", k, n)
				}
			}
			want := map[session.EventKind]int{
				session.EventCreated:   2 + 3 + 1, // ada's two logins, grace's three, the anonymous session
				session.EventRenewed:   1,
				session.EventDestroyed: 1,
				session.EventRevoked:   1,
				session.EventEvicted:   1,
			}
			for k, n := range want {
				if kinds[k] != n {
					t.Fatalf("%d %s events, want %d (all: %v)", kinds[k], k, n, d.ev.list)
				}
			}
		})
	}
}

// Index entries of ended sessions go without a walk of the keyspace: a
// destroyed session's when the index is read, an expired one's (past its
// deadline, on the Manager's clock, while Redis still holds it) when the
// index is written or read; an index left empty is deleted.
func TestIndexEntriesOfEndedSessionsArePrunedWithoutAScan(t *testing.T) {
	for _, tier := range userTiers {
		t.Run(tier, func(t *testing.T) {
			clk := &clock{now: time.Now()}
			d := deploy(t, tier, session.Config{Now: clk.Now, Lifetime: time.Hour})
			check := d.noScan(t)
			ctx := context.Background()
			indexLen := func() int {
				n, err := session.IndexLen(d.judge.m, ctx, "ada")
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			s1 := d.a.login(t, "ada", "one")
			s2 := d.b.login(t, "ada", "two")
			redistest.Eventually(t, "A's copy of the index lists B's login", func() bool {
				n, err := session.IndexLen(d.a.m, ctx, "ada") // through A's cache
				return err == nil && n == 2
			})
			d.a.serve(t, "/destroy", s2)
			if n := indexLen(); n != 2 {
				t.Fatalf("index of %d before a read", n)
			}
			// On A, which destroyed s2: B may list it while its copy is
			// stale (the Store's staleness bound).
			if list, err := d.a.m.UserSessions(ctx, "ada"); err != nil || len(list) != 1 || list[0].Labels["device"] != "one" {
				t.Fatalf("UserSessions: %+v, %v", list, err)
			}
			if n := indexLen(); n != 1 {
				t.Fatalf("the destroyed session's entry is still in the index (%d entries)", n)
			}
			clk.Advance(time.Hour + time.Second) // s1 is past its deadline
			if got := d.a.user(t, s1); got != "" {
				t.Fatalf("an expired session reads user %q", got)
			}
			d.b.login(t, "ada", "three") // a write of the index prunes s1
			if n := indexLen(); n != 1 {
				t.Fatalf("the expired session's entry is still in the index (%d entries)", n)
			}
			clk.Advance(time.Hour + time.Second)
			if list, err := d.a.m.UserSessions(ctx, "ada"); err != nil || len(list) != 0 {
				t.Fatalf("UserSessions: %+v, %v", list, err)
			}
			if n := indexLen(); n != 0 {
				t.Fatalf("%d entries left", n)
			}
			if d.srv != nil {
				if n := d.srv.Do("DBSIZE"); fmt.Sprint(n) != "3" { // s1, three (expired on the Manager's clock only), the epoch key
					t.Logf("keys in Redis: %v", n)
				}
			}
			check()
		})
	}
}

// What UserSessions shows: each live session with its labels, created
// and last-seen times, the requesting one marked current; a handle is no
// cookie.
func TestUserSessionsListsWhatAnAccountPageShows(t *testing.T) {
	for _, tier := range userTiers {
		t.Run(tier, func(t *testing.T) {
			d := deploy(t, tier, session.Config{})
			phone := d.a.login(t, "ada", "phone") // A holds the index in L1
			var laptop string
			if d.a.tiered != nil {
				// A's copy of the index stays stale: the list read with the
				// laptop's cookie still shows the laptop (read-your-writes).
				release := d.a.holdInvalidations(t, d.srv)
				d.a.warmIndex(t, "ada")
				laptop = d.b.login(t, "ada", "laptop")
				defer release()
			} else {
				laptop = d.b.login(t, "ada", "laptop")
			}
			_, page, _ := d.a.serve(t, "/sessions?user=ada", laptop)
			lines := strings.Split(strings.TrimSpace(page), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "*") || !strings.HasSuffix(lines[0], " laptop") || !strings.HasSuffix(lines[1], " phone") {
				t.Fatalf("the list, newest first, the current one starred:\n%s", page)
			}
			list, err := d.b.m.UserSessions(context.Background(), "ada")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range list {
				if s.Current || s.Created.IsZero() || s.LastSeen.Before(s.Created) || !s.Expires.After(s.LastSeen) {
					t.Fatalf("session info %+v", s)
				}
				for _, c := range []string{phone, laptop} {
					id, _, _ := strings.Cut(c, ".")
					if s.Handle == id || strings.Contains(id, s.Handle) {
						t.Fatal("a handle is the ID")
					}
				}
				if got := d.a.user(t, s.Handle); got != "" {
					t.Fatalf("a handle presented as a cookie reads user %q", got)
				}
				if got := d.a.user(t, s.Handle+"AAAAAAAAAAAAAAAAAAAAA"); got != "" { // a handle of ID length
					t.Fatalf("a handle presented as a cookie reads user %q", got)
				}
			}
			if ok, err := d.a.m.RevokeSession(context.Background(), "grace", list[0].Handle); ok || err != nil {
				t.Fatalf("another user's RevokeSession of ada's handle: %v, %v", ok, err)
			}
			if d.judge.user(t, laptop) != "ada" {
				t.Fatal("another user's revoke ended ada's session")
			}
		})
	}
}

// warmIndex reads user's index on a (tiered) until a serves it from L1.
// Call it after holdInvalidations: an invalidation of an earlier write may
// drop the first copy after it served.
func (a *userApp) warmIndex(t *testing.T, user string) {
	t.Helper()
	for i := 0; ; i++ {
		hits := a.tiered.Stats().L1.Hits
		if _, err := session.IndexLen(a.m, context.Background(), user); err != nil {
			t.Fatal(err)
		}
		if a.tiered.Stats().L1.Hits > hits {
			return
		}
		if i == 1000 {
			t.Fatal("the index is never served from L1")
		}
	}
}

// A login at the limit ends the oldest live session, not one that a
// newer session's logout left in the index: sessions found gone do not
// count.
func TestTheLimitCountsLiveSessionsOnly(t *testing.T) {
	for _, tier := range userTiers {
		t.Run(tier, func(t *testing.T) {
			d := deploy(t, tier, session.Config{MaxSessionsPerUser: 2})
			oldest := d.a.login(t, "ada", "oldest")
			gone := d.b.login(t, "ada", "gone")
			d.b.serve(t, "/destroy", gone)
			newest := d.a.login(t, "ada", "newest")
			for _, c := range []string{oldest, newest} {
				if d.judge.user(t, c) != "ada" {
					t.Fatal("a live session was evicted while the index held a gone one")
				}
			}
			if n := d.ev.count(session.EventEvicted, ""); n != 0 {
				t.Fatalf("%d evicted events", n)
			}
		})
	}
}
