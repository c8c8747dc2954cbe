package session_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/codec"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/session"
)

// countingStore wraps a Versioned Store, counting calls and failing on
// demand. It has the capabilities every tier has but lending reads, so
// the Manager reads with GetVersion and saves with SetIf.
type countingStore struct {
	tierstore.Store
	gets, sets, deletes, touches atomic.Int32
	fail                         atomic.Bool
}

var errDown = errors.New("store down")

func (c *countingStore) versioned() tierstore.Versioned { return c.Store.(tierstore.Versioned) }

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	if c.fail.Load() {
		return nil, errDown
	}
	return c.Store.Get(ctx, key)
}

func (c *countingStore) GetVersion(ctx context.Context, key string, atLeast tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	c.gets.Add(1)
	if c.fail.Load() {
		return nil, 0, time.Time{}, errDown
	}
	return c.versioned().GetVersion(ctx, key, atLeast)
}

func (c *countingStore) Set(ctx context.Context, key string, v []byte, exp time.Time) error {
	c.sets.Add(1)
	if c.fail.Load() {
		return errDown
	}
	return c.Store.Set(ctx, key, v, exp)
}

func (c *countingStore) SetIf(ctx context.Context, key string, v []byte, exp time.Time, want tierstore.Version) (tierstore.Version, error) {
	c.sets.Add(1)
	if c.fail.Load() {
		return 0, errDown
	}
	return c.versioned().SetIf(ctx, key, v, exp, want)
}

func (c *countingStore) Delete(ctx context.Context, key string) error {
	c.deletes.Add(1)
	if c.fail.Load() {
		return errDown
	}
	return c.Store.Delete(ctx, key)
}

func (c *countingStore) DeleteIf(ctx context.Context, key string, want tierstore.Version) error {
	c.deletes.Add(1)
	if c.fail.Load() {
		return errDown
	}
	return c.versioned().DeleteIf(ctx, key, want)
}

func (c *countingStore) Touch(ctx context.Context, key string, exp time.Time) error {
	c.touches.Add(1)
	if c.fail.Load() {
		return errDown
	}
	return c.Store.(tierstore.Toucher).Touch(ctx, key, exp)
}

func (c *countingStore) calls() int32 {
	return c.gets.Load() + c.sets.Load() + c.deletes.Load() + c.touches.Load()
}

// plainStore is a countingStore without the Versioned capability: a
// Store that knows no versions nor expiries (Get, Set, Delete), and can
// Touch.
type plainStore struct{ c *countingStore }

func (p plainStore) Get(ctx context.Context, key string) ([]byte, error) { return p.c.Get(ctx, key) }
func (p plainStore) Set(ctx context.Context, key string, v []byte, exp time.Time) error {
	return p.c.Set(ctx, key, v, exp)
}
func (p plainStore) Delete(ctx context.Context, key string) error { return p.c.Delete(ctx, key) }
func (p plainStore) Touch(ctx context.Context, key string, exp time.Time) error {
	return p.c.Touch(ctx, key, exp)
}

// clock is an injectable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	t     testing.TB
	store *countingStore
	clock *clock
	m     *session.Manager
	h     http.Handler
}

// newFixture serves: GET /put?k=v puts, GET /get?k= writes the value,
// /renew, /destroy, /touch-nothing.
func newFixture(t testing.TB, cfg session.Config) *fixture {
	t.Helper()
	mem, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	f := &fixture{t: t, store: &countingStore{Store: mem}, clock: &clock{now: time.Now()}}
	if cfg.Store == nil {
		cfg.Store = f.store
	}
	cfg.Now = f.clock.Now
	f.m, err = session.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.h = f.m.LoadAndSave(handler(f.m))
	return f
}

func handler(m *session.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		for k, v := range r.URL.Query() {
			if err := m.Put(r.Context(), k, v[0]); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, m.GetString(r.Context(), r.URL.Query().Get("k")))
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Renew(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/nothing", func(http.ResponseWriter, *http.Request) {})
	return mux
}

// do sends a request with cookie (if not empty) and returns the response.
func (f *fixture) do(path, cookie string) *http.Response {
	f.t.Helper()
	return serve(f.h, path, cookie)
}

// setCookie returns the session cookie res set ("" if none).
func setCookie(res *http.Response) string {
	if c := sessionCookie(res); c != nil {
		return c.Value
	}
	return ""
}

func body(r *http.Response) string { b, _ := io.ReadAll(r.Body); return string(b) }

// serveCookie serves a GET of path with the session cookie (none if "")
// and returns the body and the session cookie the response set ("" if
// none).
func serveCookie(h http.Handler, path, cookie string) (string, string) {
	res := serve(h, path, cookie)
	return body(res), setCookie(res)
}

func sessionCookie(r *http.Response) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == "session" {
			return c
		}
	}
	return nil
}

// login creates a session holding user=ada and returns its ID.
func (f *fixture) login() string {
	f.t.Helper()
	c := sessionCookie(f.do("/put?user=ada", ""))
	if c == nil {
		f.t.Fatal("no cookie after the first Put")
	}
	return c.Value
}

func TestNewSessionSetsSecureCookieAndHashedKey(t *testing.T) {
	f := newFixture(t, session.Config{})
	resp := f.do("/put?user=ada", "")
	c := sessionCookie(resp)
	if c == nil {
		t.Fatal("no session cookie")
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge <= 0 {
		t.Fatalf("cookie attributes = %+v; want HttpOnly, Secure, SameSite=Lax, Path=/, persistent", c)
	}
	id, version, _ := strings.Cut(c.Value, ".")
	if len(id) != 43 || version == "" {
		t.Fatalf("cookie %q: want 43 base64url characters (32 random bytes), a dot and the version saved", c.Value)
	}
	if !strings.Contains(resp.Header.Get("Vary"), "Cookie") {
		t.Fatal("no Vary: Cookie")
	}
	ctx := context.Background()
	if _, err := f.store.Store.Get(ctx, "session:"+id); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatal("the raw ID is a store key: a store dump would leak tokens")
	}
	sum := sha256.Sum256([]byte(id))
	if _, err := f.store.Store.Get(ctx, "session:"+base64.RawURLEncoding.EncodeToString(sum[:])); err != nil {
		t.Fatalf("session not under the hash of its ID: %v", err)
	}
}

func TestCookieOptions(t *testing.T) {
	f := newFixture(t, session.Config{Cookie: session.Cookie{
		Name: "session", Domain: "example.com", Path: "/app", SameSite: http.SameSiteStrictMode,
		AllowInsecure: true, AllowScriptAccess: true, BrowserSession: true,
	}})
	c := sessionCookie(f.do("/put?a=b", ""))
	if c.HttpOnly || c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/app" || c.Domain != "example.com" || c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Fatalf("cookie = %+v", c)
	}
}

func TestUnchangedSessionIsNotWritten(t *testing.T) {
	f := newFixture(t, session.Config{})
	id := f.login()
	sets := f.store.sets.Load()
	resp := f.do("/get?k=user", id)
	if got := body(resp); got != "ada" {
		t.Fatalf("read %q, want ada", got)
	}
	if f.store.sets.Load() != sets || sessionCookie(resp) != nil {
		t.Fatal("a read-only request wrote the session or reset the cookie")
	}
	// A request that uses no session at all neither loads a cookie-less
	// session nor writes anything.
	calls := f.store.calls()
	if resp := f.do("/nothing", ""); sessionCookie(resp) != nil || f.store.calls() != calls {
		t.Fatal("an empty session was saved or looked up")
	}
}

func TestSaveHappensBeforeHeadersWhateverTheHandlerWrites(t *testing.T) {
	for name, write := range map[string]func(http.ResponseWriter){
		"WriteHeader": func(w http.ResponseWriter) { w.WriteHeader(http.StatusCreated) },
		"Write":       func(w http.ResponseWriter) { io.WriteString(w, "body") },
		"Flush":       func(w http.ResponseWriter) { w.(http.Flusher).Flush() },
		"controller":  func(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, session.Config{})
			h := f.m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = f.m.Put(r.Context(), "user", "ada")
				write(w)
				io.WriteString(w, " more")
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if sessionCookie(rec.Result()) == nil {
				t.Fatalf("no cookie: the session was saved after the headers went out")
			}
			if f.store.sets.Load() != 1 {
				t.Fatalf("%d Store.Set calls, want 1", f.store.sets.Load())
			}
		})
	}
}

func TestRenewReplacesIDAndDeletesTheOld(t *testing.T) {
	f := newFixture(t, session.Config{})
	old := f.login()
	resp := f.do("/renew", old)
	c := sessionCookie(resp)
	if c == nil || c.Value == old {
		t.Fatal("Renew did not send a new ID")
	}
	if got := body(f.do("/get?k=user", c.Value)); got != "ada" {
		t.Fatalf("the renewed session reads %q, want the old data", got)
	}
	if got := body(f.do("/get?k=user", old)); got != "" {
		t.Fatalf("the old ID still reads %q", got)
	}
}

func TestDestroyDeletesSessionAndCookie(t *testing.T) {
	f := newFixture(t, session.Config{})
	id := f.login()
	resp := f.do("/destroy", id)
	c := sessionCookie(resp)
	if c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("cookie after Destroy = %+v, want a deletion", c)
	}
	if got := body(f.do("/get?k=user", id)); got != "" {
		t.Fatalf("a destroyed session still reads %q", got)
	}
}

func TestIdleTimeoutEndsInactiveSessions(t *testing.T) {
	f := newFixture(t, session.Config{IdleTimeout: 30 * time.Minute})
	id := f.login()
	for range 4 { // activity every 20 minutes keeps it alive for 80 minutes
		f.clock.Advance(20 * time.Minute)
		if got := body(f.do("/get?k=user", id)); got != "ada" {
			t.Fatalf("an active session read %q", got)
		}
	}
	f.clock.Advance(31 * time.Minute)
	if got := body(f.do("/get?k=user", id)); got != "" {
		t.Fatalf("a session idle for 31m (timeout 30m) still reads %q", got)
	}
}

func TestAbsoluteLifetimeEndsActiveSessions(t *testing.T) {
	f := newFixture(t, session.Config{Lifetime: time.Hour, IdleTimeout: 30 * time.Minute})
	id := f.login()
	for range 5 {
		f.clock.Advance(11 * time.Minute)
		if got := body(f.do("/get?k=user", id)); got != "ada" {
			t.Fatalf("session ended early: %q", got)
		}
	}
	f.clock.Advance(6 * time.Minute) // 61 minutes after login
	if got := body(f.do("/get?k=user", id)); got != "" {
		t.Fatalf("a session past its absolute lifetime still reads %q", got)
	}
}

func TestIdleDeadlineIsExtendedByTouchAtMostOncePerInterval(t *testing.T) {
	f := newFixture(t, session.Config{IdleTimeout: 30 * time.Minute, TouchInterval: 5 * time.Minute})
	id := f.login()
	sets := f.store.sets.Load()
	for range 10 { // ten requests a minute apart: two touches
		f.clock.Advance(time.Minute)
		if got := body(f.do("/get?k=user", id)); got != "ada" {
			t.Fatalf("read %q", got)
		}
	}
	if got := f.store.touches.Load(); got != 2 {
		t.Fatalf("%d touches for 10 requests over 10 minutes with TouchInterval 5m, want 2", got)
	}
	if f.store.sets.Load() != sets {
		t.Fatal("extending the idle deadline rewrote the session")
	}
}

func TestMalformedCookiesStartFreshWithoutStoreCalls(t *testing.T) {
	f := newFixture(t, session.Config{})
	valid := f.login()
	for name, cookie := range map[string]string{
		"10 MB":        strings.Repeat("a", 10<<20),
		"not base64":   strings.Repeat("!", 43),
		"too short":    valid[:42],
		"too long":     valid + "A",
		"stray bits":   valid[:42] + "B", // 'B' sets low bits a 32-byte ID cannot have
		"padded":       valid[:40] + "===",
		"std alphabet": strings.Repeat("+", 43),
	} {
		calls := f.store.calls()
		resp := f.do("/get?k=user", cookie)
		if resp.StatusCode != 200 || body(resp) != "" {
			t.Errorf("%s: status %d body %q, want 200 and a fresh session", name, resp.StatusCode, body(resp))
		}
		if f.store.calls() != calls {
			t.Errorf("%s: a malformed cookie reached the store", name)
		}
	}
}

func TestStoreErrorsAreAnsweredByTheErrorHandler(t *testing.T) {
	var handled atomic.Int32
	f := newFixture(t, session.Config{ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		if !errors.Is(err, errDown) {
			t.Errorf("error handler got %v", err)
		}
		handled.Add(1)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}})
	id := f.login()
	f.store.fail.Store(true)
	// Load fails: the handler never runs.
	if resp := f.do("/get?k=user", id); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("load failure answered %d", resp.StatusCode)
	}
	// Save fails (new session, so no load): the client sees the error,
	// not the handler's "ok", and gets no cookie.
	resp := f.do("/put?user=grace", "")
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body(resp), "ok") || sessionCookie(resp) != nil {
		t.Fatalf("save failure: status %d, cookie %v", resp.StatusCode, sessionCookie(resp))
	}
	if handled.Load() != 2 {
		t.Fatalf("error handler ran %d times, want 2", handled.Load())
	}
}

func TestWithoutMiddlewareMethodsFailCleanly(t *testing.T) {
	f := newFixture(t, session.Config{})
	ctx := context.Background()
	if err := f.m.Put(ctx, "k", "v"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Put = %v, want ErrNoSession", err)
	}
	if f.m.Get(ctx, "k") != nil || f.m.GetString(ctx, "k") != "" || f.m.Exists(ctx, "k") {
		t.Fatal("getters without a session returned something")
	}
	if err := f.m.Renew(ctx); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Renew = %v", err)
	}
}

type profile struct {
	Name  string
	Roles []string
}

func TestValuesRoundTripWithTheirTypes(t *testing.T) {
	for name, c := range map[string]codec.Codec{"msgpack": codec.Msgpack, "json": codec.JSON} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, session.Config{Codec: c})
			when := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
			put := f.m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				for k, v := range map[string]any{
					"s": "text", "i": 42, "f": 1.5, "b": true, "t": when,
					"bytes": []byte{1, 2}, "p": profile{"ada", []string{"admin"}}, "flash": "once",
				} {
					if err := f.m.Put(ctx, k, v); err != nil {
						t.Fatal(err)
					}
				}
			}))
			rec := httptest.NewRecorder()
			put.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			id := sessionCookie(rec.Result()).Value

			get := f.m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				var p profile
				ok, err := f.m.Decode(ctx, "p", &p)
				switch {
				case f.m.GetString(ctx, "s") != "text", f.m.GetInt(ctx, "i") != 42, f.m.GetInt64(ctx, "i") != 42,
					f.m.GetFloat64(ctx, "f") != 1.5, !f.m.GetBool(ctx, "b"), !f.m.GetTime(ctx, "t").Equal(when),
					string(f.m.GetBytes(ctx, "bytes")) != "\x01\x02":
					t.Errorf("typed getters: %v", f.m.Keys(ctx))
				case !ok || err != nil || p.Name != "ada" || p.Roles[0] != "admin":
					t.Errorf("Decode struct = %+v, %v, %v", p, ok, err)
				case f.m.PopString(ctx, "flash") != "once" || f.m.Exists(ctx, "flash"):
					t.Error("PopString did not remove the value")
				case f.m.GetString(ctx, "i") != "" || f.m.GetInt(ctx, "absent") != 0:
					t.Error("a getter of the wrong type or an absent key returned a value")
				}
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req.AddCookie(&http.Cookie{Name: "session", Value: id})
			get.ServeHTTP(httptest.NewRecorder(), req)
		})
	}
}

// A Store that is not Versioned reports no expiry, so the Manager cannot
// tell how far the idle deadline would move: every request extends it.
// Its saves are unconditional, and work the same for one request at a
// time.
func TestIdleDeadlineOnAStoreThatIsNotVersionedIsExtendedByEveryRequest(t *testing.T) {
	f := newFixture(t, session.Config{IdleTimeout: 30 * time.Minute, TouchInterval: 5 * time.Minute})
	f.m, _ = session.New(session.Config{Store: plainStore{f.store}, IdleTimeout: 30 * time.Minute,
		TouchInterval: 5 * time.Minute, Now: f.clock.Now})
	f.h = f.m.LoadAndSave(handler(f.m))
	id := f.login()
	if got := body(f.do("/put?user=grace", id)); got != "ok" {
		t.Fatalf("put answered %q", got)
	}
	sets, touches := f.store.sets.Load(), f.store.touches.Load()
	for range 10 {
		f.clock.Advance(time.Minute)
		if got := body(f.do("/get?k=user", id)); got != "grace" {
			t.Fatalf("read %q, want grace", got)
		}
	}
	if got := f.store.touches.Load() - touches; got != 10 {
		t.Fatalf("%d touches for 10 requests on a Store that reports no expiry, want 10", got)
	}
	if f.store.sets.Load() != sets {
		t.Fatal("extending the idle deadline rewrote the session")
	}
	if got := body(f.do("/destroy", id)); got != "" {
		t.Fatalf("destroy answered %q", got)
	}
	if got := body(f.do("/get?k=user", id)); got != "" {
		t.Fatalf("a destroyed session reads %q", got)
	}
}

// A Secure cookie sent over plain HTTP is dropped by browsers without a
// word: the Manager says so once, and stays quiet where the cookie works.
func TestSecureCookieOverPlainHTTPIsLoggedOnce(t *testing.T) {
	for _, c := range []struct {
		name, url, proto string
		insecure, warn   bool
	}{
		{"plain HTTP, remote host", "http://example.com/", "", false, true},
		{"plain HTTP, localhost", "http://localhost:8080/", "", false, false},
		{"plain HTTP, loopback IP", "http://127.0.0.1:8080/", "", false, false},
		{"TLS terminated by a proxy", "http://example.com/", "https", false, false},
		{"TLS", "https://example.com/", "", false, false},
		{"AllowInsecure", "http://example.com/", "", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			f := newFixture(t, session.Config{Cookie: session.Cookie{AllowInsecure: c.insecure},
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			for range 2 {
				r := httptest.NewRequest("GET", c.url+"put?k=v", nil)
				if c.proto != "" {
					r.Header.Set("X-Forwarded-Proto", c.proto)
				}
				f.h.ServeHTTP(httptest.NewRecorder(), r)
			}
			n := strings.Count(logs.String(), "browsers will drop the cookie")
			if want := map[bool]int{true: 1, false: 0}[c.warn]; n != want {
				t.Fatalf("%d warnings, want %d: %s", n, want, logs.String())
			}
		})
	}
}
