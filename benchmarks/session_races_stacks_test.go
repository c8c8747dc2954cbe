package benchmarks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/boj/redistore"
	"github.com/gomodule/redigo/redis"
	"github.com/gorilla/sessions"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/gorillastore"
	"github.com/tierstore/tierstore/adapters/scsstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

// raceStack is one way of serving sessions (a session library on a
// store), of which the race scenarios run two instances, like two
// processes, over one redis-server.
type raceStack struct {
	name string
	// renew: the library can give a session a new ID (the app serves
	// /renew).
	renew bool
	// open returns a new instance: its own store objects and session
	// manager, over the Redis at addr, with its data under prefix.
	open func(tb testing.TB, addr, prefix string) raceInstance
	// judge returns an instance that reads the Redis at addr without any
	// in-process cache: it shows what every instance sees once the
	// invalidations in flight have arrived.
	judge func(tb testing.TB, addr, prefix string) raceInstance
}

// raceInstance is one instance of a stack: an app serving the race routes.
type raceInstance struct {
	http.Handler
	// l1Hits counts the store reads served from memory; nil for a store
	// without an in-process cache.
	l1Hits func() uint64
}

// raceStacks are the stacks compared, tierstore's and its peers'.
func raceStacks() []raceStack {
	tierstoreApp := func(tb testing.TB, store tierstore.Store) http.Handler {
		m, err := session.New(session.Config{Store: store})
		if err != nil {
			tb.Fatal(err)
		}
		return tierstoreRaceApp(m)
	}
	scsApp := func(store scs.Store) http.Handler {
		sm := scs.New()
		sm.Store = store
		return scsRaceApp(sm)
	}
	scsstoreApp := func(tb testing.TB, store tierstore.Store) http.Handler { return scsApp(scsstore.New(store)) }
	gorillastoreApp := func(tb testing.TB, store tierstore.Store) http.Handler {
		return gorillaRaceApp(gorillastore.New(store))
	}
	onTiered, onL2 := onTieredStack, onL2Stack
	scsRedisstore := func(tb testing.TB, addr, prefix string) raceInstance {
		return raceInstance{Handler: scsApp(redisstore.NewWithPrefix(racePool(tb, addr), prefix))}
	}
	// The instances of a deployment share the key that signs the cookie.
	hashKey := []byte("bench-races-redistore-hash-key-0")
	gorillaRedistore := func(tb testing.TB, addr, prefix string) raceInstance {
		store, err := redistore.NewRediStoreWithPool(racePool(tb, addr), hashKey)
		if err != nil {
			tb.Fatal(err)
		}
		store.SetKeyPrefix(prefix)
		return raceInstance{Handler: gorillaRaceApp(store)}
	}
	return []raceStack{
		{name: "session-tiered", renew: true, open: onTiered(tierstoreApp), judge: onL2(tierstoreApp)},
		{name: "session-l2", renew: true, open: onL2(tierstoreApp), judge: onL2(tierstoreApp)},
		{name: "scs-scsstore-tiered", renew: true, open: onTiered(scsstoreApp), judge: onL2(scsstoreApp)},
		{name: "scs-redisstore", renew: true, open: scsRedisstore, judge: scsRedisstore},
		{name: "gorilla-gorillastore-tiered", open: onTiered(gorillastoreApp), judge: onL2(gorillastoreApp)},
		{name: "gorilla-redistore", open: gorillaRedistore, judge: gorillaRedistore},
	}
}

// onTieredStack opens an instance of app on a tiered store.
func onTieredStack(app func(testing.TB, tierstore.Store) http.Handler) func(testing.TB, string, string) raceInstance {
	return func(tb testing.TB, addr, prefix string) raceInstance {
		s, err := tiered.New(tiered.Config{Redis: raceClient(tb, addr), KeyPrefix: prefix})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		redistest.WaitLive(tb, s)
		return raceInstance{app(tb, s), func() uint64 { return s.Stats().L1.Hits }}
	}
}

// onL2Stack opens an instance of app on an l2 store: no in-process cache.
func onL2Stack(app func(testing.TB, tierstore.Store) http.Handler) func(testing.TB, string, string) raceInstance {
	return func(tb testing.TB, addr, prefix string) raceInstance {
		s, err := l2.New(l2.Config{Redis: raceClient(tb, addr), KeyPrefix: prefix})
		if err != nil {
			tb.Fatal(err)
		}
		return raceInstance{Handler: app(tb, s)}
	}
}

func raceClient(tb testing.TB, addr string) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
	tb.Cleanup(func() { c.Close() })
	return c
}

func racePool(tb testing.TB, addr string) *redis.Pool {
	pool := &redis.Pool{MaxIdle: 16, Dial: func() (redis.Conn, error) { return redis.Dial("tcp", addr) }}
	tb.Cleanup(func() { pool.Close() })
	return pool
}

// racePair is two instances A and B of one stack, and its judge, sharing
// one redis-server and key prefix.
type racePair struct{ a, b, judge raceInstance }

var racePrefixes atomic.Int64

// newRacePair opens A and the judge on srv directly, and B with bLatency
// added in each direction between it and srv (none if 0).
func newRacePair(tb testing.TB, srv *redistest.Server, st raceStack, bLatency time.Duration) *racePair {
	prefix := fmt.Sprintf("races%d-%s:", racePrefixes.Add(1), st.name)
	bAddr := srv.Addr()
	if bLatency > 0 {
		bAddr = redistest.Latency(tb, srv.Addr(), bLatency)
	}
	return &racePair{
		a:     st.open(tb, srv.Addr(), prefix),
		b:     st.open(tb, bAddr, prefix),
		judge: st.judge(tb, srv.Addr(), prefix),
	}
}

// The race apps serve the same routes on each library:
//
//	POST /login           puts user=ada (starting a session)
//	GET  /read            answers "user|a|b", the values of those keys
//	POST /write?key=K     puts K=set, after calling the request's hook
//	POST /logout          destroys the session
//	POST /renew           gives the session a new ID (where supported)
//
// The hook (see withHook) runs once the session is loaded and before it is
// changed: a scenario holds the request there.

type hookKey struct{}

func withHook(r *http.Request, hook func()) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), hookKey{}, hook))
}

func runHook(r *http.Request) {
	if hook, ok := r.Context().Value(hookKey{}).(func()); ok {
		hook()
	}
}

const raceValue = "set"

func readBody(user, a, b string) string { return user + "|" + a + "|" + b }

// tierstoreRaceApp serves the race routes with tierstore's session package.
func tierstoreRaceApp(m *session.Manager) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		fail(w, m.Put(r.Context(), "user", "ada"))
	})
	mux.HandleFunc("GET /read", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		fmt.Fprint(w, readBody(m.GetString(ctx, "user"), m.GetString(ctx, "a"), m.GetString(ctx, "b")))
	})
	mux.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) {
		runHook(r)
		fail(w, m.Put(r.Context(), r.URL.Query().Get("key"), raceValue))
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		fail(w, m.Destroy(r.Context()))
	})
	mux.HandleFunc("POST /renew", func(w http.ResponseWriter, r *http.Request) {
		fail(w, m.Renew(r.Context()))
	})
	return m.LoadAndSave(mux)
}

// scsRaceApp serves the race routes with scs.
func scsRaceApp(sm *scs.SessionManager) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "user", "ada")
	})
	mux.HandleFunc("GET /read", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		fmt.Fprint(w, readBody(sm.GetString(ctx, "user"), sm.GetString(ctx, "a"), sm.GetString(ctx, "b")))
	})
	mux.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) {
		runHook(r)
		sm.Put(r.Context(), r.URL.Query().Get("key"), raceValue)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		fail(w, sm.Destroy(r.Context()))
	})
	mux.HandleFunc("POST /renew", func(w http.ResponseWriter, r *http.Request) {
		fail(w, sm.RenewToken(r.Context()))
	})
	return sm.LoadAndSave(mux)
}

// gorillaRaceApp serves the race routes with gorilla/sessions: store.Get,
// change Values, session.Save; logout is MaxAge -1 and Save. Gorilla has no
// renewal.
func gorillaRaceApp(store sessions.Store) http.Handler {
	const name = "sid"
	mux := http.NewServeMux()
	handle := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, s *sessions.Session) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			s, err := store.Get(r, name)
			if err == nil {
				err = fn(w, r, s)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		})
	}
	handle("POST /login", func(w http.ResponseWriter, r *http.Request, s *sessions.Session) error {
		s.Values["user"] = "ada"
		return s.Save(r, w)
	})
	handle("GET /read", func(w http.ResponseWriter, r *http.Request, s *sessions.Session) error {
		str := func(k string) string { v, _ := s.Values[k].(string); return v }
		_, err := fmt.Fprint(w, readBody(str("user"), str("a"), str("b")))
		return err
	})
	handle("POST /write", func(w http.ResponseWriter, r *http.Request, s *sessions.Session) error {
		runHook(r)
		s.Values[r.URL.Query().Get("key")] = raceValue
		return s.Save(r, w)
	})
	handle("POST /logout", func(w http.ResponseWriter, r *http.Request, s *sessions.Session) error {
		s.Options.MaxAge = -1
		return s.Save(r, w)
	})
	return mux
}

// jar holds one user's cookies, as a browser does: each response's
// Set-Cookie replaces or deletes them. Values are opaque.
type jar struct {
	mu      sync.Mutex
	cookies map[string]*http.Cookie
}

func newJar() *jar { return &jar{cookies: map[string]*http.Cookie{}} }

// clone is a copy of the jar: the cookies as they are now, for a request
// made later with them (an old tab, a replayed cookie).
func (j *jar) clone() *jar {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := newJar()
	for k, v := range j.cookies {
		c.cookies[k] = v
	}
	return c
}

func (j *jar) empty() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.cookies) == 0
}

func (j *jar) addTo(r *http.Request) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range j.cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
}

func (j *jar) update(set []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := time.Now()
	for _, c := range set {
		if c.MaxAge < 0 || c.Value == "" || !c.Expires.IsZero() && c.Expires.Before(now) {
			delete(j.cookies, c.Name)
		} else {
			j.cookies[c.Name] = c
		}
	}
}

// raceResponse is the outcome of one request.
type raceResponse struct {
	code int
	body string
}

func (r raceResponse) ok() bool { return r.code < 300 }

// send serves one request on h with the jar's cookies, updating the jar
// from the response. hook, if not nil, is the request's hook.
func send(h http.Handler, method, path string, j *jar, hook func()) raceResponse {
	// A context that ends with the request, as an http.Server gives
	// (scsstore pairs a save with its load through it).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, method, "https://tierstore.test"+path, nil)
	j.addTo(req)
	if hook != nil {
		req = withHook(req, hook)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	j.update(rec.Result().Cookies())
	return raceResponse{code: rec.Code, body: rec.Body.String()}
}

// sessionValues is what /read answered.
type sessionValues struct{ user, a, b string }

// read reads the session through h, with a copy of j's cookies (so that a
// read does not change the jar).
func read(tb testing.TB, h http.Handler, j *jar) sessionValues {
	r := send(h, "GET", "/read", j.clone(), nil)
	parts := strings.Split(r.body, "|")
	if !r.ok() || len(parts) != 3 {
		tb.Fatalf("read: %d %q", r.code, r.body)
	}
	return sessionValues{user: parts[0], a: parts[1], b: parts[2]}
}

// paused is a writing request that its hook holds, once it has loaded its
// session, until release is closed.
type paused struct {
	// loaded is closed once the request has loaded its session (or has
	// ended without reaching its hook).
	loaded chan struct{}
	done   chan raceResponse
}

// startWrite starts POST /write?key=key on h, to be held by its hook until
// release is closed.
func startWrite(h http.Handler, key string, j *jar, release <-chan struct{}) *paused {
	p := &paused{loaded: make(chan struct{}), done: make(chan raceResponse, 1)}
	var once sync.Once
	signal := func() { once.Do(func() { close(p.loaded) }) }
	go func() {
		r := send(h, "POST", "/write?key="+key, j, func() {
			signal()
			<-release
		})
		signal()
		p.done <- r
	}()
	return p
}

func (p *paused) wait() raceResponse { return <-p.done }

// raceHoldUp bounds how long a scenario waits for a step that the stack
// may hold up until the paused request goes on (as a per-session lock
// would): it then lets the paused request go, and the trial counts as
// serialized, not as a race. A step that is not held up is a few round
// trips to a Redis next to both instances, far inside this bound.
const raceHoldUp = 500 * time.Millisecond

// within reports whether ch is closed within raceHoldUp.
func within(ch <-chan struct{}) bool {
	t := time.NewTimer(raceHoldUp)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}
