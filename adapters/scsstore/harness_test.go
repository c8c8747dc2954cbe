package scsstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/scsstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/tiered"
)

// A setup is two instances, A and B, of one service sharing sessions.
type setup struct {
	name  string
	a, b  tierstore.Store
	truth tierstore.Store // reads the source of truth, bypassing any cache
	// del deletes a Store key as an operator would (DEL in redis-cli).
	del func(t *testing.T, key string)
	// hold keeps B's in-memory copies as they are, stale or not, until
	// release: B applies no invalidation in between. A no-op where B has
	// none to hold.
	hold func(t *testing.T) (release func())
	// holds reports whether hold makes B's copies stale for certain.
	holds bool
}

func noHold(*testing.T) func() { return func() {} }

// setups returns the pairs of instances the race tests run on: a shared
// memory store (the pure logic: no stale copies), and two tiered stores on
// one real redis-server, with B direct, with B's invalidations held back,
// and with B 1 ms and 5 ms away.
func setups(t *testing.T) []setup {
	mem, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	all := []setup{{
		name: "memory", a: mem, b: mem, truth: mem, hold: noHold,
		del: func(t *testing.T, key string) {
			if err := mem.Delete(context.Background(), key); err != nil {
				t.Fatal(err)
			}
		},
	}}
	srv := redistest.Start(t)
	client := func(addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		t.Cleanup(func() { c.Close() })
		return c
	}
	for _, v := range []struct {
		name    string
		latency time.Duration
		held    bool
	}{{"tiered", 0, false}, {"tiered/B-held", 0, true}, {"tiered/B+1ms", time.Millisecond, false}, {"tiered/B+5ms", 5 * time.Millisecond, false}} {
		prefix := "t" + fmt.Sprint(len(all)) + ":"
		newTiered := func(c *redis.Client, cfg tiered.Config) *tiered.Store {
			cfg.Redis, cfg.KeyPrefix = c, prefix
			s, err := tiered.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		a := newTiered(client(srv.Addr()), tiered.Config{})
		bAddr := srv.Addr()
		if v.latency > 0 {
			bAddr = redistest.Latency(t, srv.Addr(), v.latency)
		}
		var h *redistest.Invalidations
		bcfg := tiered.Config{}
		if v.held {
			// A lease long enough that B keeps serving from memory while
			// its subscription is held.
			h = &redistest.Invalidations{Marker: "gate"}
			bcfg.OnInvalidate, bcfg.HealthCheckInterval = h.OnInvalidate, 10*time.Second
		}
		b := newTiered(client(bAddr), bcfg)
		redistest.WaitLive(t, a, b)
		truth, err := l2.New(l2.Config{Redis: client(srv.Addr()), KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		s := setup{
			name: v.name, a: a, b: b, truth: truth, hold: noHold,
			del: func(t *testing.T, key string) { srv.Do("DEL", prefix+key) },
		}
		if h != nil {
			s.hold = func(t *testing.T) func() {
				return h.Hold(t, func(marker string) {
					_, _ = b.Get(context.Background(), marker) // followed, in per-key mode
					if err := a.Set(context.Background(), marker, []byte("x"), time.Time{}); err != nil {
						t.Fatal(err)
					}
				})
			}
			s.holds = true
		}
		all = append(all, s)
	}
	return all
}

// gates lets a test stop a request inside its handler: the request named
// by the X-Gate header signals loaded once scs has loaded its session, and
// waits for release before it changes it.
type gate struct{ loaded, release chan struct{} }

type gates struct{ m sync.Map }

func (g *gates) new(name string) *gate {
	gt := &gate{loaded: make(chan struct{}), release: make(chan struct{})}
	g.m.Store(name, gt)
	return gt
}

func (g *gates) wait(r *http.Request, name string) {
	if name == "" {
		return
	}
	v, ok := g.m.Load(name)
	if !ok {
		panic("no gate " + name)
	}
	gt := v.(*gate)
	close(gt.loaded)
	<-gt.release
}

// instance is one instance of the service: scs's SessionManager with the
// adapter, served by a real net/http server (real request contexts).
type instance struct {
	sm     *scs.SessionManager
	store  *scsstore.Store
	server *httptest.Server
}

// newInstance serves:
//
//	/put?k=v&...    puts each k=v (v "-": removes k); the body lists the
//	                values the request loaded
//	/get            the body lists the session's values
//	/destroy        scs Destroy
//	/renew?k=v&...  scs RenewToken, then puts
//	/merge-own?k=v&...  scs MergeSession of the session's own token (a
//	                no-op, which loads it again), then puts
//	/commit-twice?k=v  puts, commits explicitly, waits at gate X-Gate2,
//	                puts k2=v2 from the query, lets LoadAndSave commit
//
// Every handler first waits at the gate named by its X-Gate header.
func newInstance(t *testing.T, store tierstore.Store, g *gates) *instance {
	sm := scs.New()
	st := scsstore.New(store)
	sm.Store = st
	mux := http.NewServeMux()
	put := func(r *http.Request, q map[string][]string) {
		for _, k := range slices.Sorted(maps.Keys(q)) {
			if v := q[k][0]; v == "-" {
				sm.Remove(r.Context(), k)
			} else {
				sm.Put(r.Context(), k, v)
			}
		}
	}
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		g.wait(r, r.Header.Get("X-Gate"))
		seen := list(sm, r.Context())
		put(r, r.URL.Query())
		io.WriteString(w, seen)
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		g.wait(r, r.Header.Get("X-Gate"))
		io.WriteString(w, list(sm, r.Context()))
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		g.wait(r, r.Header.Get("X-Gate"))
		if err := sm.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		g.wait(r, r.Header.Get("X-Gate"))
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		put(r, r.URL.Query())
	})
	mux.HandleFunc("/merge-own", func(w http.ResponseWriter, r *http.Request) {
		g.wait(r, r.Header.Get("X-Gate"))
		if err := sm.MergeSession(r.Context(), sm.Token(r.Context())); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		put(r, r.URL.Query())
	})
	mux.HandleFunc("/commit-twice", func(w http.ResponseWriter, r *http.Request) {
		g.wait(r, r.Header.Get("X-Gate"))
		q := r.URL.Query()
		sm.Put(r.Context(), "k", q.Get("k"))
		if _, _, err := sm.Commit(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		g.wait(r, r.Header.Get("X-Gate2"))
		sm.Put(r.Context(), "k2", q.Get("k2"))
	})
	srv := httptest.NewServer(sm.LoadAndSave(mux))
	t.Cleanup(srv.Close)
	return &instance{sm: sm, store: st, server: srv}
}

// list formats a session's values, sorted: "a=1 b=2".
func list(sm *scs.SessionManager, ctx context.Context) string {
	var parts []string
	for _, k := range sm.Keys(ctx) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, sm.Get(ctx, k)))
	}
	return strings.Join(parts, " ")
}

type response struct {
	status int
	body   string
	token  string // the session cookie set, "" if none or deleted
	err    error
}

// request makes one request with the session cookie token (if not empty)
// and the gate headers (name, value pairs).
func (in *instance) request(path, token string, headers ...string) response {
	req, err := http.NewRequest("GET", in.server.URL+path, nil)
	if err != nil {
		return response{err: err}
	}
	if token != "" {
		req.AddCookie(&http.Cookie{Name: "session", Value: token})
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := in.server.Client().Do(req)
	if err != nil {
		return response{err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, body: string(body), err: err}
	for _, c := range res.Cookies() {
		if c.Name == "session" && c.MaxAge >= 0 {
			r.token = c.Value
		}
	}
	return r
}

// do is request, failing t unless the answer is a 200.
func (in *instance) do(t *testing.T, path, token string, headers ...string) response {
	t.Helper()
	r := in.request(path, token, headers...)
	check(t, path, r)
	return r
}

func check(t *testing.T, path string, r response) {
	t.Helper()
	if r.err != nil || r.status != 200 {
		t.Fatalf("%s: %d %q %v", path, r.status, r.body, r.err)
	}
}

// async starts a request and returns its answer's channel.
func (in *instance) async(path, token string, headers ...string) <-chan response {
	ch := make(chan response, 1)
	go func() { ch <- in.request(path, token, headers...) }()
	return ch
}

// session reads token's session from the source of truth: its values, or
// nil if it does not exist.
func session(t *testing.T, truth tierstore.Store, token string) map[string]any {
	t.Helper()
	b, err := truth.Get(context.Background(), scsstore.DefaultKeyPrefix+token)
	if errors.Is(err, tierstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	_, values, err := scs.GobCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if values == nil {
		values = map[string]any{}
	}
	return values
}

// rounds is how many times each race test repeats its scenario.
const rounds = 20

// env is what a scenario runs on: the setup, an instance of the service
// on each of its stores, their gates, and the round's number (for unique
// gate names).
type env struct {
	setup
	a, b  *instance
	g     *gates
	round int
	stale int // rounds in which B served a stale copy (the scenario counts)
}

// gate returns a new gate unique to the round.
func (e *env) gate(name string) (*gate, string) {
	name = fmt.Sprintf("%s-%d", name, e.round)
	return e.g.new(name), name
}

// forEachSetup runs scenario rounds times on every setup and fails if any
// round had a bad outcome (scenario returns a description of it, or "").
// If staleEveryRound, the scenario must have seen B serve a stale copy in
// every round where B's invalidations are held: the test is meant to
// exercise that path, and checks that it did.
func forEachSetup(t *testing.T, staleEveryRound bool, scenario func(t *testing.T, e *env) string) {
	for _, s := range setups(t) {
		t.Run(s.name, func(t *testing.T) {
			g := &gates{}
			e := &env{setup: s, a: newInstance(t, s.a, g), b: newInstance(t, s.b, g), g: g}
			var bad []string
			for e.round = range rounds {
				if what := scenario(t, e); what != "" {
					bad = append(bad, fmt.Sprintf("round %d: %s", e.round, what))
				}
			}
			t.Logf("%d of %d rounds bad; B served a stale copy in %d", len(bad), rounds, e.stale)
			if len(bad) > 0 {
				t.Errorf("%d of %d rounds bad:\n%s", len(bad), rounds, strings.Join(bad, "\n"))
			}
			if staleEveryRound && s.holds && e.stale != rounds {
				t.Errorf("B served a stale copy in %d of %d rounds, want all: the hold did not hold", e.stale, rounds)
			}
		})
	}
}
