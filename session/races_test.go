package session_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

// The races of one browser's requests across two instances (issue 12's
// table), on a real redis-server. Each test makes the bad interleaving
// happen for certain: a handler that waits on a channel holds its request
// between loading the session and saving it, and an instance whose
// invalidations are held (holdInvalidations) keeps serving its stale copy
// of the session for as long as the test wants.

// racer is one instance: a tiered store, a Manager, and a handler with,
// besides the routes of handler, /hold: load, signal loaded, wait for
// release, then put the query's keys (the save follows).
type racer struct {
	store  *tiered.Store
	h      http.Handler
	held   chan chan struct{} // /hold sends its release channel here once loaded
	inv    redistest.Invalidations
	prefix string
}

// newRacer starts an instance on addr. Its lease is long, so that while
// its invalidations are held it stays Live and serves its stale copies.
func newRacer(t *testing.T, addr string) *racer {
	t.Helper()
	r := &racer{held: make(chan chan struct{}), prefix: "races:"}
	store, err := tiered.New(tiered.Config{
		Redis:               redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true}),
		KeyPrefix:           r.prefix,
		HealthCheckInterval: time.Minute,
		OnInvalidate:        r.inv.OnInvalidate,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	redistest.WaitLive(t, store)
	m, err := session.New(session.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", handler(m))
	mux.Handle("/hold", holdRoute(m, r.held))
	r.store, r.h = store, m.LoadAndSave(mux)
	return r
}

// holdRoute is /hold: once the session is loaded, it sends a release
// channel to held and waits for it to close, then puts the query's keys
// (or, with destroy, destroys the session); the save follows.
func holdRoute(m *session.Manager, held chan chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		release := make(chan struct{})
		held <- release
		<-release
		if req.URL.Query().Has("destroy") {
			if err := m.Destroy(req.Context()); err != nil {
				http.Error(w, err.Error(), 500)
			}
			return
		}
		for k, v := range req.URL.Query() {
			if err := m.Put(req.Context(), k, v[0]); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		io.WriteString(w, "ok")
	}
}

// startHeld serves a /hold request with cookie through h in the
// background and returns once it has loaded its session; finish
// releases it and returns its response.
func startHeld(h http.Handler, held chan chan struct{}, path, cookie string) (finish func() *http.Response) {
	done := make(chan *http.Response, 1)
	go func() {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(&http.Cookie{Name: "session", Value: cookie})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		done <- rec.Result()
	}()
	release := <-held
	return func() *http.Response {
		close(release)
		return <-done
	}
}

// do sends a request with the cookie value (if not empty) and returns the
// body and the session cookie value the response set ("" if none).
func (r *racer) do(t *testing.T, path, cookie string) (string, string) {
	t.Helper()
	res := serve(r.h, path, cookie)
	if res.StatusCode != 200 {
		t.Fatalf("%s: status %d: %s", path, res.StatusCode, body(res))
	}
	return body(res), setCookie(res)
}

// hold starts a /hold request in the background once it has loaded its
// session; finish releases it and returns its body and cookie.
func (r *racer) hold(t *testing.T, path, cookie string) (finish func() (string, string)) {
	t.Helper()
	done := startHeld(r.h, r.held, path, cookie)
	return func() (string, string) {
		res := done()
		set := ""
		if c := sessionCookie(res); c != nil {
			set = c.Value
		}
		return fmt.Sprint(res.StatusCode, " ", body(res)), set
	}
}

// holdInvalidations makes r apply no invalidation until release is called.
func (r *racer) holdInvalidations(t *testing.T, c *redis.Client) (release func()) {
	t.Helper()
	return r.inv.Hold(t, func(marker string) {
		_, _ = r.store.Get(context.Background(), marker) // followed, in per-key mode
		if err := c.Set(context.Background(), r.prefix+marker, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
}

// user reports what a fresh request with cookie sees of user on r ("" for
// no session), without saving anything.
func (r *racer) user(t *testing.T, cookie string) string {
	got, _ := r.do(t, "/get?k=user", cookie)
	return got
}

// pair is two instances on one real redis-server, each with a client of
// its own to Redis, B's behind delay (0: none).
func pair(t *testing.T, delay time.Duration) (a, b *racer, c *redis.Client) {
	srv := redistest.Start(t)
	addrB := srv.Addr()
	if delay > 0 {
		addrB = redistest.Latency(t, srv.Addr(), delay)
	}
	return newRacer(t, srv.Addr()), newRacer(t, addrB), srv.Client(nil)
}

// login creates the session on a (user=ada), makes b hold it in L1 and
// returns the cookie.
func login(t *testing.T, a, b *racer) string {
	t.Helper()
	_, cookie := a.do(t, "/put?user=ada", "")
	redistest.WaitLive(t, b.store)
	b.warm(t, cookie)
	return cookie
}

// warm reads the session on r until r serves it from L1. Call it again
// after holdInvalidations: an invalidation of an earlier write (the
// login's own) may drop the first copy after it served.
func (r *racer) warm(t *testing.T, cookie string) {
	t.Helper()
	for i := 0; ; i++ {
		hits := r.store.Stats().L1.Hits
		if got := r.user(t, cookie); got != "ada" {
			t.Fatalf("B reads user %q", got)
		}
		if r.store.Stats().L1.Hits > hits {
			return
		}
		if i == 1000 {
			t.Fatal("B never serves the session from L1")
		}
	}
}

// sameID reports whether two cookie values name one session.
func sameID(x, y string) bool {
	x, _, _ = strings.Cut(x, ".")
	y, _, _ = strings.Cut(y, ".")
	return x == y
}

// sessionKeys returns the session keys in Redis.
func sessionKeys(t *testing.T, c *redis.Client, prefix string) []string {
	keys, err := c.Keys(context.Background(), prefix+session.DefaultKeyPrefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// A request that loaded the session before a logout on another instance
// and saves after it does not bring the session back.
func TestLogoutDuringAWriteOnAnotherInstanceIsFinal(t *testing.T) {
	for _, held := range []bool{false, true} {
		t.Run(fmt.Sprintf("invalidations-held=%v", held), func(t *testing.T) {
			a, b, c := pair(t, 0)
			cookie := login(t, a, b)
			if held {
				defer b.holdInvalidations(t, c)()
				b.warm(t, cookie)
			}
			finish := b.hold(t, "/hold?cart=1", cookie)
			a.do(t, "/destroy", cookie)
			if res, set := finish(); res != "200 ok" || set != "" {
				t.Fatalf("B's request: %q, cookie %q; want 200 and no cookie", res, set)
			}
			if keys := sessionKeys(t, c, a.prefix); len(keys) != 0 {
				t.Fatalf("the destroyed session is back in Redis: %q", keys)
			}
			if got := a.user(t, cookie); got != "" {
				t.Fatalf("A serves the destroyed session: %q", got)
			}
		})
	}
}

// The same with Renew: the old ID stays dead, the new one holds the data.
func TestRenewDuringAWriteOnAnotherInstanceIsFinal(t *testing.T) {
	a, b, c := pair(t, 0)
	old := login(t, a, b)
	finish := b.hold(t, "/hold?cart=1", old)
	_, renewed := a.do(t, "/renew", old)
	if res, set := finish(); res != "200 ok" || set != "" {
		t.Fatalf("B's request: %q, cookie %q; want 200 and no cookie", res, set)
	}
	if keys := sessionKeys(t, c, a.prefix); len(keys) != 1 {
		t.Fatalf("sessions in Redis: %q, want the renewed one only", keys)
	}
	if got := a.user(t, old); got != "" {
		t.Fatalf("the old ID is alive again: user %q", got)
	}
	if got := a.user(t, renewed); got != "ada" {
		t.Fatalf("the renewed session holds user %q", got)
	}
}

// After a logout on A has returned, a writing request on B, whose copy of
// the session is stale (its invalidation held, or late with B 1 or 5 ms
// from Redis), does not bring the session back.
func TestWriteAfterLogoutOnAStaleInstanceDoesNotResurrect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		held  bool
	}{{"held", 0, true}, {"1ms", time.Millisecond, false}, {"5ms", 5 * time.Millisecond, false}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, c := pair(t, tc.delay)
			for range 5 {
				cookie := login(t, a, b)
				var release func()
				if tc.held {
					release = b.holdInvalidations(t, c)
					b.warm(t, cookie)
				}
				a.do(t, "/destroy", cookie)
				if tc.held {
					if got := b.user(t, cookie); got != "ada" {
						t.Fatalf("B's copy is not stale (user %q): the test does not test", got)
					}
				}
				// B either saves nothing (its stale copy's save conflicts)
				// or, if it heard of the logout, starts a new session.
				_, set := b.do(t, "/put?cart=1", cookie)
				if set != "" && sameID(set, cookie) {
					t.Fatalf("B's write after the logout saved the old ID again")
				}
				if keys := sessionKeys(t, c, a.prefix); len(keys) > 1 || len(keys) == 1 && set == "" {
					t.Fatalf("the destroyed session is back in Redis: %q", keys)
				}
				if release != nil {
					release()
				}
				for name, in := range map[string]*racer{"A": a, "B": b} {
					if got := in.user(t, cookie); got != "" {
						t.Fatalf("%s serves the destroyed session: %q", name, got)
					}
				}
				if keys := sessionKeys(t, c, a.prefix); len(keys) > 0 {
					c.Del(context.Background(), keys...) // the new session
				}
			}
		})
	}
}

// Two requests one after the other, A then B, each changing a different
// key: both changes survive, also when B's copy is stale. With the cookie
// A's response set, B even sees A's change in its request
// (read-your-writes); with an older cookie, B's save merges.
func TestSequentialChangesOnTwoInstancesBothSurvive(t *testing.T) {
	for _, tc := range []struct {
		name      string
		delay     time.Duration
		held      bool
		oldCookie bool
	}{
		{"held", 0, true, false},
		{"held/old-cookie", 0, true, true},
		{"1ms", time.Millisecond, false, false},
		{"5ms", 5 * time.Millisecond, false, false},
		{"5ms/old-cookie", 5 * time.Millisecond, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, c := pair(t, tc.delay)
			for i := range 5 {
				cookie := login(t, a, b)
				var release func()
				if tc.held {
					release = b.holdInvalidations(t, c)
					b.warm(t, cookie)
				}
				_, next := a.do(t, fmt.Sprintf("/put?a=%d", i), cookie)
				if !tc.oldCookie {
					cookie = next
					if got, _ := b.do(t, "/get?k=a", cookie); got != fmt.Sprint(i) {
						t.Fatalf("B does not see A's change with A's cookie: a=%q", got)
					}
				}
				_, next = b.do(t, fmt.Sprintf("/put?b=%d", i), cookie)
				for name, in := range map[string]*racer{"A": a, "B": b} {
					if got, _ := in.do(t, "/get?k=a", next); got != fmt.Sprint(i) {
						t.Fatalf("%s: A's change is lost: a=%q", name, got)
					}
					if got, _ := in.do(t, "/get?k=b", next); got != fmt.Sprint(i) {
						t.Fatalf("%s: B's change is lost: b=%q", name, got)
					}
				}
				if release != nil {
					release()
				}
			}
		})
	}
}

// Two concurrent requests changing different keys, on one instance or
// two: both load before either saves, and both changes survive.
func TestConcurrentChangesToDifferentKeysBothSurvive(t *testing.T) {
	for _, same := range []bool{true, false} {
		t.Run(fmt.Sprintf("same-instance=%v", same), func(t *testing.T) {
			a, b, _ := pair(t, 0)
			other := b
			if same {
				other = a
			}
			for i := range 10 {
				cookie := login(t, a, b)
				finishX := a.hold(t, fmt.Sprintf("/hold?x=%d", i), cookie)
				finishY := other.hold(t, fmt.Sprintf("/hold?y=%d", i), cookie)
				finishX()
				_, last := finishY() // the browser keeps the cookie of the last response
				for name, in := range map[string]*racer{"A": a, "B": b} {
					for _, k := range []string{"x", "y", "user"} {
						want := fmt.Sprint(i)
						if k == "user" {
							want = "ada"
						}
						if got, _ := in.do(t, "/get?k="+k, last); got != want {
							t.Fatalf("after both saves %s reads %s=%q, want %q", name, k, got, want)
						}
					}
				}
			}
		})
	}
}

// Two concurrent changes of one key: the last save wins, and the session
// holds one of the two values, never a mix with another key lost.
func TestConcurrentChangesToOneKeyLastWriterWins(t *testing.T) {
	a, b, _ := pair(t, 0)
	cookie := login(t, a, b)
	finishX := a.hold(t, "/hold?k=x", cookie)
	finishY := b.hold(t, "/hold?k=y", cookie)
	_, _ = finishX()
	_, cy := finishY()
	if got, _ := a.do(t, "/get?k=k", cy); got != "y" {
		t.Fatalf("k = %q, want the last save's y", got)
	}
	if got := a.user(t, cy); got != "ada" {
		t.Fatalf("user = %q", got)
	}
}

// Cookies name the version of the last save; one that does not parse is
// no session, whatever its ID.
func TestMalformedCookieVersionsStartAFreshSession(t *testing.T) {
	a, b, _ := pair(t, 0)
	cookie := login(t, a, b)
	id, _, _ := strings.Cut(cookie, ".")
	for _, bad := range []string{id + ".", id + ".0", id + ".Zz", id + ".-1", id + ".1.2", id + "." + strings.Repeat("z", 14), id + "x.1"} {
		if got := a.user(t, bad); got != "" {
			t.Errorf("cookie %q reads the session (user %q)", bad, got)
		}
	}
	if got := a.user(t, id); got != "ada" {
		t.Errorf("a cookie without a version does not read the session: %q", got)
	}
}
