package benchmarks

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/scsstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

// setup is one way of serving sessions: a handler that reads "user" from
// the session and writes it, and the cookie of a session holding "ada".
type setup struct {
	name    string
	handler http.Handler
	cookie  *http.Cookie
}

// setups builds every configuration on one redis-server.
func setups(tb testing.TB) []setup {
	srv := redistest.Start(tb)
	newClient := func() *goredis.Client {
		return srv.Client(&goredis.Options{ContextTimeoutEnabled: true})
	}
	tier, err := tiered.New(tiered.Config{Redis: newClient(), KeyPrefix: "bench-tiered:"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tier.Close() })
	redistest.WaitLive(tb, tier)
	red, err := l2.New(l2.Config{Redis: newClient(), KeyPrefix: "bench-l2:"})
	if err != nil {
		tb.Fatal(err)
	}

	tierstoreSessions := func(store tierstore.Store) http.Handler {
		m, err := session.New(session.Config{Store: store})
		if err != nil {
			tb.Fatal(err)
		}
		return m.LoadAndSave(sessionApp(m.Put, m.GetString))
	}
	scsSessions := func(store scs.Store) http.Handler {
		sm := scs.New()
		sm.Store = store
		return sm.LoadAndSave(sessionApp(func(ctx context.Context, k string, v any) error {
			sm.Put(ctx, k, v)
			return nil
		}, sm.GetString))
	}
	pool := &redis.Pool{MaxIdle: 16, Dial: func() (redis.Conn, error) { return redis.Dial("tcp", srv.Addr()) }}
	tb.Cleanup(func() { pool.Close() })

	all := []setup{
		{name: "no-sessions", handler: sessionApp(func(context.Context, string, any) error { return nil }, func(context.Context, string) string { return "ada" })},
		{name: "tierstore-session/tiered", handler: tierstoreSessions(tier)},
		{name: "tierstore-session/redis", handler: tierstoreSessions(red)},
		{name: "scs/redisstore", handler: scsSessions(redisstore.New(pool))},
		{name: "scs/scsstore-tiered", handler: scsSessions(scsstore.New(tier))},
	}
	for i := range all {
		all[i].cookie = login(tb, all[i].handler)
	}
	// The baseline gets the same request, cookie included, as a browser
	// sends it whatever the handler does with it: only the handler differs.
	all[0].cookie = all[1].cookie
	return all
}

// sessionApp: /login puts user=ada; / writes the user.
func sessionApp(put func(context.Context, string, any) error, get func(context.Context, string) string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := put(r.Context(), "user", "ada"); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, get(r.Context(), "user"))
	})
	return mux
}

func login(tb testing.TB, h http.Handler) *http.Cookie {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
	for _, c := range rec.Result().Cookies() {
		return c
	}
	return nil // no-sessions
}

// serve serves one request with a context that ends with it, as an
// http.Server's does (scsstore pairs a save with its load through it).
func serve(h http.Handler, c *http.Cookie) *httptest.ResponseRecorder {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Every configuration must actually serve the session it is measured on.
func TestSetupsServeTheSession(t *testing.T) {
	for _, s := range setups(t) {
		if got := serve(s.handler, s.cookie).Body.String(); got != "ada" {
			t.Errorf("%s serves %q, want ada", s.name, got)
		}
	}
}

// BenchmarkRequest is one GET that loads an existing session and reads a
// value from it, through each configuration. The session is unchanged, so
// nothing is written back.
func BenchmarkRequest(b *testing.B) {
	for _, s := range setups(b) {
		b.Run(s.name, func(b *testing.B) {
			for range 100 { // warm: let L1 admit the session
				serve(s.handler, s.cookie)
				time.Sleep(100 * time.Microsecond)
			}
			b.ReportAllocs()
			for b.Loop() {
				if rec := serve(s.handler, s.cookie); rec.Body.Len() != 3 {
					b.Fatalf("body %q", rec.Body)
				}
			}
		})
	}
}

// discard is a ResponseWriter that keeps nothing but its header map,
// which each request starts empty.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkOverhead is BenchmarkRequest without httptest: one request
// value, served again and again (each time with a context that ends with
// it), and a ResponseWriter that discards the body. What a request costs
// outside the handler is then small and steady, and the difference
// between the rows is the session middleware's own cost.
func BenchmarkOverhead(b *testing.B) {
	for _, s := range setups(b)[:2] { // no-sessions, tierstore-session/tiered
		b.Run(s.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/", nil)
			req.AddCookie(s.cookie)
			w := &discard{h: http.Header{}}
			for range 100 { // warm: let L1 admit the session
				serve(s.handler, s.cookie)
				time.Sleep(100 * time.Microsecond)
			}
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.Background())
				clear(w.h)
				s.handler.ServeHTTP(w, req.WithContext(ctx))
				cancel()
			}
		})
	}
}
