package tiered

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/bus"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/session"
)

// outage is a store on a real redis-server that holds key "k" = "v1" in
// L1, and then loses Redis (the process killed: dials refused).
type outage struct {
	srv *redistest.Server
	s   *Store
}

// quickClient: no retries, so that a dial refused fails the call at once.
func quickClient(srv *redistest.Server) *redis.Client {
	return srv.Client(&redis.Options{MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
}

// startOutage caches k on a store with cfg, kills Redis and waits until
// the store has lost its proof.
func startOutage(t *testing.T, cfg Config) *outage {
	t.Helper()
	srv := redistest.Start(t)
	s := newStore(t, quickClient(srv), cfg)
	set(t, s, "k", "v1")
	set(t, s, "other", "o1")
	cached(t, s, "k")
	cached(t, s, "other")
	srv.Kill()
	redistest.Eventually(t, "the store is not Live", func() bool { return !s.Live() })
	return &outage{srv: srv, s: s}
}

// afterOwnReport runs write, and returns once a report has come back.
func afterOwnReport(t *testing.T, s *Store, write func()) {
	t.Helper()
	redistest.AfterGrowth(t, "the report of the write", func() uint64 { return s.Stats().Invalidation.Received }, write)
}

func (o *outage) get(t *testing.T, key string) (string, error) {
	t.Helper()
	v, err := o.s.Get(context.Background(), key)
	return string(v), err
}

// wantServed fails unless key is served v by the fail-safe.
func (o *outage) wantServed(t *testing.T, key, v string) {
	t.Helper()
	before := o.s.Stats().FailSafe.Serves
	got, err := o.get(t, key)
	if err != nil || got != v {
		t.Fatalf("Get(%q) during the outage = %q, %v; want %q from the fail-safe", key, got, err, v)
	}
	if n := o.s.Stats().FailSafe.Serves; n != before+1 {
		t.Fatalf("FailSafe.Serves = %d after one fail-safe read, want %d", n, before+1)
	}
}

// wantUnavailable fails unless a read of key fails with ErrUnavailable
// without a fail-safe serve.
func (o *outage) wantUnavailable(t *testing.T, key string) {
	t.Helper()
	before := o.s.Stats().FailSafe.Serves
	got, err := o.get(t, key)
	if !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("Get(%q) during the outage = %q, %v; want ErrUnavailable", key, got, err)
	}
	if n := o.s.Stats().FailSafe.Serves; n != before {
		t.Fatalf("FailSafe.Serves went from %d to %d on a read that failed", before, n)
	}
}

func TestFailSafeServesWithinTheBoundNotAfter(t *testing.T) {
	o := startOutage(t, Config{FailSafe: time.Second})
	o.wantServed(t, "k", "v1")
	o.wantServed(t, "other", "o1")
	st := o.s.Stats().FailSafe
	if st.Activations != 1 || !st.Active {
		t.Fatalf("FailSafe stats during the outage: %+v, want one activation, active", st)
	}
	redistest.Eventually(t, "the fail-safe window ends", func() bool { return !o.s.Stats().FailSafe.Active })
	o.wantUnavailable(t, "k")
	if st := o.s.Stats().FailSafe; st.Activations != 1 {
		t.Fatalf("Activations = %d after one loss of proof", st.Activations)
	}
}

// A key never cached is not served, and a version newer than the copy
// (a cookie's) is not served from it.
func TestFailSafeServesOnlyWhatWasCached(t *testing.T) {
	o := startOutage(t, Config{FailSafe: time.Minute})
	o.wantUnavailable(t, "never-cached")
	_, _, _, err := o.s.GetVersion(context.Background(), "k", tierstore.Version(1<<62))
	if !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("GetVersion past the cached version during the outage: %v, want ErrUnavailable", err)
	}
	o.wantServed(t, "k", "v1")
}

func TestFailSafeNeverAfterADelete(t *testing.T) {
	o := startOutage(t, Config{FailSafe: time.Minute})
	o.wantServed(t, "k", "v1")
	if err := o.s.Delete(context.Background(), "k"); !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("Delete during the outage: %v, want ErrUnavailable", err)
	}
	o.wantUnavailable(t, "k")
	o.wantServed(t, "other", "o1") // the tombstone is the key's
}

// A write fails, and leaves nothing served: neither its value (which
// Redis may or may not have) nor the one before.
func TestFailSafeWritesFail(t *testing.T) {
	o := startOutage(t, Config{FailSafe: time.Minute})
	ctx := context.Background()
	if err := o.s.Set(ctx, "k", []byte("v2"), time.Now().Add(time.Hour)); !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("Set during the outage: %v, want ErrUnavailable", err)
	}
	if _, err := o.s.SetIf(ctx, "new", []byte("n"), time.Time{}, tierstore.NoVersion); !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("SetIf during the outage: %v, want ErrUnavailable", err)
	}
	o.wantUnavailable(t, "k")
	o.wantUnavailable(t, "new")
	if err := o.s.Touch(ctx, "other", time.Now().Add(time.Hour)); !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("Touch during the outage: %v, want ErrUnavailable", err)
	}
	o.wantUnavailable(t, "other")
}

// A report of a change that still reaches the store during the outage
// (handed to the subscription's callback, as the bus does) drops the
// copy for the fail-safe too; a report of a flush drops them all.
func TestFailSafeNeverAfterAnInvalidationOrAFlush(t *testing.T) {
	o := startOutage(t, Config{FailSafe: time.Minute})
	o.s.onMessage(bus.Message{Key: "k"})
	o.wantUnavailable(t, "k")
	o.wantServed(t, "other", "o1")
	o.s.onGap(invalidation.GapFlushed, "server flushed its data")
	o.wantUnavailable(t, "other")
	if st := o.s.Stats().FailSafe; st.Active {
		t.Fatalf("fail-safe still active after a flush: %+v", st)
	}
}

// Gaps during the outage (the subscription's redials) neither open a
// second window nor close the first.
func TestFailSafeOutlivesTheOutagesOwnGaps(t *testing.T) {
	o := startOutage(t, Config{FailSafe: time.Minute})
	gaps := o.s.Stats().Invalidation.Gaps
	redistest.Eventually(t, "the outage makes a gap of its own", func() bool { return o.s.Stats().Invalidation.Gaps > gaps })
	o.wantServed(t, "k", "v1")
	if st := o.s.Stats().FailSafe; st.Activations != 1 {
		t.Fatalf("Activations = %d, want 1 for one loss of proof", st.Activations)
	}
}

func TestFailSafeOffIsTodaysBehaviour(t *testing.T) {
	o := startOutage(t, Config{})
	o.wantUnavailable(t, "k")
	if st := o.s.Stats().FailSafe; st.Serves != 0 || st.Activations != 0 || st.Active {
		t.Fatalf("FailSafe stats with FailSafe off: %+v", st)
	}
}

func TestNegativeFailSafeIsAnError(t *testing.T) {
	srv := redistest.Start(t)
	if _, err := New(Config{Redis: srv.Client(nil), FailSafe: -time.Second}); err == nil || !strings.Contains(err.Error(), "FailSafe") {
		t.Fatalf("New with a negative FailSafe: %v", err)
	}
}

// Redis that refuses (here: an ACL that withdraws every command at run
// time) is not an outage: the fail-safe, active since the proof was lost,
// serves nothing.
func TestFailSafeNeverServesOnRefused(t *testing.T) {
	srv := redistest.Start(t)
	srv.Do("ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all")
	c := srv.Client(&redis.Options{Username: "app", Password: "pw", MaxRetries: -1})
	s := newStore(t, c, Config{FailSafe: time.Minute})
	set(t, s, "k", "v1")
	cached(t, s, "k")
	srv.Do("ACL", "SETUSER", "app", "-@all")
	redistest.Eventually(t, "the store is not Live", func() bool { return !s.Live() })
	if st := s.Stats().FailSafe; !st.Active {
		t.Fatalf("fail-safe not active after the proof was lost: %+v", st)
	}
	if _, err := s.Get(context.Background(), "k"); !errors.Is(err, tierstore.ErrRefused) {
		t.Fatalf("Get with every command refused: %v, want ErrRefused", err)
	}
	if st := s.Stats().FailSafe; st.Serves != 0 {
		t.Fatalf("fail-safe served %d reads of a Redis that refuses", st.Serves)
	}
}

// After the outage, the store is Live again and reads come from Redis
// (here a Redis restarted empty): the window is closed.
func TestFailSafeEndsWhenLiveAgain(t *testing.T) {
	o := startOutage(t, Config{FailSafe: time.Hour})
	o.wantServed(t, "k", "v1")
	o.srv.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.s.WaitLive(ctx); err != nil {
		t.Fatal(err)
	}
	if st := o.s.Stats().FailSafe; st.Active {
		t.Fatalf("fail-safe active once Live again: %+v", st)
	}
	if got := get(t, o.s, "k"); got != "<not found>" {
		t.Fatalf("read %q from a Redis restarted empty", got)
	}
}

// sessionHandler: /put?v= stores v, /get answers it, /destroy destroys
// the session; a Store failure is a 503 (the default ErrorHandler).
func sessionHandler(t testing.TB, s *Store) http.Handler {
	m, err := session.New(session.Config{
		Store: s, Cookie: session.Cookie{AllowInsecure: true},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Put(r.Context(), "v", r.URL.Query().Get("v")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, m.GetString(r.Context(), "v"))
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	return m.LoadAndSave(mux)
}

// request runs one request with the cookie (if any), and returns the
// status, the body and the session cookie set.
func request(h http.Handler, path, cookie string) (int, string, string) {
	req := httptest.NewRequest("GET", path, nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: session.DefaultCookieName, Value: cookie})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == session.DefaultCookieName {
			cookie = c.Value
		}
	}
	return rec.Code, rec.Body.String(), cookie
}

// A session destroyed during the outage (the Destroy fails) is not
// served by the fail-safe afterwards; before it, it was.
func TestFailSafeNeverAfterADestroy(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, quickClient(srv), Config{FailSafe: time.Minute})
	h := sessionHandler(t, s)
	// The session is saved with SetIf, whose script reads the key before
	// writing it: its report comes back (per-key mode) and drops the
	// copy, which a refresh reads again.
	var cookie string
	afterOwnReport(t, s, func() { _, _, cookie = request(h, "/put?v=ada", "") })
	redistest.Eventually(t, "the session is an L1 hit", func() bool {
		hits := s.Stats().L1.Hits
		code, body, _ := request(h, "/get", cookie)
		return code == 200 && body == "ada" && s.Stats().L1.Hits > hits
	})
	srv.Kill()
	redistest.Eventually(t, "the store is not Live", func() bool { return !s.Live() })
	if code, body, _ := request(h, "/get", cookie); code != 200 || body != "ada" {
		t.Fatalf("request during the outage: %d %q, want the session from the fail-safe", code, body)
	}
	if code, _, _ := request(h, "/destroy", cookie); code != http.StatusServiceUnavailable {
		t.Fatalf("Destroy during the outage answered %d, want 503", code)
	}
	if code, body, _ := request(h, "/get", cookie); code != http.StatusServiceUnavailable {
		t.Fatalf("request after a failed Destroy: %d %q, want 503 (never the destroyed session)", code, body)
	}
}

// While the breaker is open, calls fail at once without going to Redis:
// with the one probe held before it is sent, N more reads and writes
// return ErrUnavailable, and none of them is sent (beforeL2Read counts
// what goes to the reads' connection). Once Redis is back, calls work.
func TestFailFastOneProbeAtATime(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, quickClient(srv), Config{})
	set(t, s, "k", "v1")
	srv.Kill()
	redistest.Eventually(t, "the breaker opens", func() bool {
		_, _ = s.Get(context.Background(), "cold")
		return s.Stats().FailSafe.Open
	})
	var sent atomic.Int64
	held, release := make(chan struct{}), make(chan struct{})
	s.hooks().beforeL2Read = func(context.Context, string) {
		if sent.Add(1) == 1 {
			close(held)
			<-release
		}
	}
	probe := make(chan error, 1)
	go func() {
		// Retried until it is the probe: the breaker lets one through
		// once its retry delay has passed.
		for {
			_, err := s.Get(context.Background(), "probe")
			if sent.Load() > 0 {
				probe <- err
				return
			}
		}
	}()
	<-held
	fast := s.Stats().FailSafe.FastFails
	const n = 50
	for i := range n {
		var err error
		if i%2 == 0 {
			_, err = s.Get(context.Background(), "cold")
		} else {
			err = s.Set(context.Background(), "w", []byte("x"), time.Time{})
		}
		if !errors.Is(err, tierstore.ErrUnavailable) || !strings.Contains(err.Error(), "failing fast") {
			t.Fatalf("call %d while the probe is out: %v, want a fast ErrUnavailable", i, err)
		}
	}
	if got := sent.Load(); got != 1 {
		t.Fatalf("%d reads sent while one probe was out, want 1 (the probe)", got)
	}
	if got := s.Stats().FailSafe.FastFails - fast; got != n {
		t.Fatalf("FastFails grew by %d for %d calls", got, n)
	}
	close(release)
	if err := <-probe; !errors.Is(err, tierstore.ErrUnavailable) {
		t.Fatalf("probe with Redis down: %v", err)
	}
	srv.Restart()
	redistest.Eventually(t, "calls work again", func() bool {
		return s.Set(context.Background(), "k", []byte("v2"), time.Time{}) == nil
	})
	if st := s.Stats().FailSafe; st.Open {
		t.Fatalf("breaker open after a write succeeded: %+v", st)
	}
}
