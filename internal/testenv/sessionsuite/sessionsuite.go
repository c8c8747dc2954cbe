// Package sessionsuite is the two-instance test of a web framework's
// sessions on tierstore: an app, built by the framework's test on each of
// two tiered instances sharing one real redis-server (tieredpair), serves
// the routes below, and the suite checks what the framework's adapter
// promises: a login on A is seen on B; a logout on B is seen on A; a
// logout is final over a request of the session in flight; concurrent
// requests changing different keys keep both. Where a framework's
// interface cannot keep one of the last two, the suite checks that the
// race goes the way the docs say, so that the docs cannot go stale.
//
// The routes, as the benchmarks' race apps serve them:
//
//	POST /login           puts user=ada (starting a session)
//	GET  /read            answers "user|a|b", the values of those keys
//	POST /write?key=K     calls RunHook(the request's Hook header), then puts K=set
//	POST /logout          destroys the session
package sessionsuite

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/tieredpair"
)

// Hook is the request header naming the hook of a /write request; the
// app passes its value to RunHook once the session is loaded and before
// it changes it. A header, not a context value, so that it reaches apps
// whose test server builds its own request (Fiber's app.Test).
const Hook = "X-Sessionsuite-Hook"

// Value is what /write puts.
const Value = "set"

var (
	hooks   sync.Map // id -> func()
	hookSeq atomic.Int64
)

// RunHook runs the hook that the Hook header's value names, if any.
func RunHook(id string) {
	if h, ok := hooks.LoadAndDelete(id); ok {
		h.(func())()
	}
}

// Register registers hook and returns the Hook header value that names
// it, and a function that forgets it (if it did not run).
func Register(hook func()) (id string, forget func()) {
	id = strconv.FormatInt(hookSeq.Add(1), 10)
	hooks.Store(id, hook)
	return id, func() { hooks.Delete(id) }
}

// ServeTest serves requests through test, a framework's own test server
// (Fiber's app.Test), as an http.Handler.
func ServeTest(test func(*http.Request) (*http.Response, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := test(r)
		if err != nil {
			http.Error(w, "test server: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		maps.Copy(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}

// Config says how to build an app and what its adapter promises.
type Config struct {
	// App serves the routes on store, one instance of the app.
	App func(t testing.TB, store tierstore.Store) http.Handler
	// FinalLogout: a request of the session that loaded it before a
	// logout and saves after it does not store it again. If false, the
	// suite checks that it does (the documented race).
	FinalLogout bool
	// KeepsBoth: two requests of one session that loaded it before
	// either saved, changing different keys, keep both changes. If
	// false, the suite checks that the second save loses the first's.
	KeepsBoth bool
}

// Run runs the suite, each test on a new pair of instances.
func Run(t *testing.T, cfg Config) {
	t.Run("LoginOnASeenOnB", func(t *testing.T) {
		p := start(t, cfg)
		for range 5 {
			u := p.login(t)
			if v := p.read(t, p.b, u); v != "ada||" {
				t.Fatalf("B reads %q after a login on A", v)
			}
		}
	})
	t.Run("LogoutOnBSeenOnA", func(t *testing.T) {
		p := start(t, cfg)
		for range 5 {
			u := p.login(t)
			p.read(t, p.a, u) // A serves it, from its L1 where it caches
			old := u.clone()
			p.do(t, p.b, "POST", "/logout", u)
			p.pair.Settle(t)
			for _, n := range []http.Handler{p.a, p.b} {
				if v := p.read(t, n, old); v != "||" {
					t.Fatalf("after a logout on B, the old cookie reads %q", v)
				}
			}
			// A later writing request with the old cookie does not bring
			// the login back.
			p.do(t, p.a, "POST", "/write?key=a", old.clone())
			if v := p.read(t, p.b, old); strings.HasPrefix(v, "ada|") {
				t.Fatalf("a write with the old cookie after the logout brought the session back: %q", v)
			}
		}
	})
	t.Run("LogoutOnBOverAWriteInFlightOnA", func(t *testing.T) {
		p := start(t, cfg)
		for range 5 {
			u := p.login(t)
			old := u.clone()
			w := p.startWrite(p.a, "a", u.clone())
			<-w.loaded
			p.do(t, p.b, "POST", "/logout", u)
			close(w.release)
			if code := <-w.done; code >= 300 {
				t.Fatalf("the write in flight answered %d", code)
			}
			p.pair.Settle(t)
			v := p.read(t, p.b, old)
			switch {
			case cfg.FinalLogout && v != "||":
				t.Fatalf("the write in flight during a logout brought the session back: %q", v)
			case !cfg.FinalLogout && v != "ada|set|":
				t.Fatalf("the old cookie reads %q: the write in flight did not store the session again, as the docs say this adapter does (update them)", v)
			}
		}
	})
	t.Run("ConcurrentWritesOnAAndBOfDifferentKeys", func(t *testing.T) {
		p := start(t, cfg)
		for i := range 10 {
			u := p.login(t)
			wa := p.startWrite(p.a, "a", u)
			wb := p.startWrite(p.b, "b", u)
			<-wa.loaded
			<-wb.loaded
			if i%2 == 0 { // both at once
				close(wa.release)
				close(wb.release)
			} else { // A saves, then B
				close(wa.release)
				if code := <-wa.done; code >= 300 {
					t.Fatalf("A's write answered %d", code)
				}
				wa.done <- 200
				close(wb.release)
			}
			for _, w := range []*write{wa, wb} {
				if code := <-w.done; code >= 300 {
					t.Fatalf("a write answered %d", code)
				}
			}
			p.pair.Settle(t)
			v := p.read(t, p.b, u)
			switch {
			case cfg.KeepsBoth && v != "ada|set|set":
				t.Fatalf("after concurrent writes of a and b, the session reads %q", v)
			case !cfg.KeepsBoth && i%2 == 1 && v != "ada||set":
				t.Fatalf("after A's write then B's, loaded before either saved, the session reads %q, not B's whole copy as the docs say (update them)", v)
			}
		}
	})
}

type pair struct {
	pair *tieredpair.Pair
	a, b http.Handler
	cfg  Config
}

var prefixes atomic.Int64

func start(t *testing.T, cfg Config) *pair {
	p := tieredpair.Start(t, fmt.Sprintf("suite%d:", prefixes.Add(1)))
	return &pair{pair: p, a: cfg.App(t, p.A), b: cfg.App(t, p.B), cfg: cfg}
}

// login logs a new user in on A and returns the browser's cookies.
func (p *pair) login(t *testing.T) *Jar {
	u := NewJar()
	p.do(t, p.a, "POST", "/login", u)
	if u.Empty() {
		t.Fatal("the login set no cookie")
	}
	return u
}

func (p *pair) do(t *testing.T, h http.Handler, method, target string, u *Jar) string {
	t.Helper()
	code, body := Send(h, method, target, u, "")
	if code >= 300 {
		t.Fatalf("%s %s: %d %s", method, target, code, body)
	}
	return body
}

// read is GET /read with a copy of u's cookies.
func (p *pair) read(t *testing.T, h http.Handler, u *Jar) string {
	t.Helper()
	return p.do(t, h, "GET", "/read", u.clone())
}

// write is a POST /write held by its hook until release is closed.
type write struct {
	loaded  chan struct{}
	release chan struct{}
	done    chan int // its status code
}

func (p *pair) startWrite(h http.Handler, key string, u *Jar) *write {
	w := &write{loaded: make(chan struct{}), release: make(chan struct{}), done: make(chan int, 1)}
	var once sync.Once
	signal := func() { once.Do(func() { close(w.loaded) }) }
	id, forget := Register(func() { signal(); <-w.release })
	go func() {
		code, _ := Send(h, "POST", "/write?key="+key, u, id)
		forget()
		signal() // if the app never ran the hook, the test fails on the result, not by hanging
		w.done <- code
	}()
	return w
}

// Jar holds one browser's cookies: each response's Set-Cookie replaces
// or deletes them.
type Jar struct {
	mu      sync.Mutex
	cookies map[string]string
}

// NewJar returns an empty Jar.
func NewJar() *Jar { return &Jar{cookies: map[string]string{}} }

func (j *Jar) clone() *Jar {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := NewJar()
	for k, v := range j.cookies {
		c.cookies[k] = v
	}
	return c
}

// Empty reports whether the Jar holds no cookie.
func (j *Jar) Empty() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.cookies) == 0
}

// Send serves one request on h with the Jar's cookies and the Hook
// header hook (if not ""), and updates the Jar from the response.
func Send(h http.Handler, method, target string, j *Jar, hook string) (int, string) {
	req := httptest.NewRequest(method, "https://tierstore.test"+target, nil)
	j.mu.Lock()
	for k, v := range j.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	j.mu.Unlock()
	if hook != "" {
		req.Header.Set(Hook, hook)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	now := time.Now()
	j.mu.Lock()
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 || c.Value == "" || !c.Expires.IsZero() && c.Expires.Before(now) {
			delete(j.cookies, c.Name)
		} else {
			j.cookies[c.Name] = c.Value
		}
	}
	j.mu.Unlock()
	return rec.Code, rec.Body.String()
}
