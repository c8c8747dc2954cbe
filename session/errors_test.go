package session_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

// logRecords is a logger writing JSON records to a buffer, and the
// records it got.
type logRecords struct{ buf bytes.Buffer }

func (l *logRecords) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(&l.buf, nil)) }

func (l *logRecords) all(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// sessionRecords are the records the session package wrote.
func (l *logRecords) sessionRecords(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, rec := range l.all(t) {
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "session:") {
			out = append(out, rec)
		}
	}
	return out
}

// captureDefault makes slog.Default write to a buffer until the test
// ends. (Tests of this package do not run in parallel.)
func captureDefault(t *testing.T) *logRecords {
	var l logRecords
	old := slog.Default()
	slog.SetDefault(l.logger())
	t.Cleanup(func() { slog.SetDefault(old) })
	return &l
}

// failingStore fails every call with err.
type failingStore struct{ err error }

func (s failingStore) Get(context.Context, string) ([]byte, error) { return nil, s.err }
func (s failingStore) Set(context.Context, string, []byte, time.Time) error {
	return s.err
}
func (s failingStore) Delete(context.Context, string) error { return s.err }

// The default ErrorHandler answers an outage (an error wrapping
// tierstore.ErrUnavailable) with 503 and a Retry-After, anything else with
// 500, and logs either through Config.Logger, never slog.Default.
func TestDefaultErrorHandlerAnswersAnOutageWith503(t *testing.T) {
	for _, c := range []struct {
		name       string
		err        error
		code       int
		retryAfter string
	}{
		{"unavailable", fmt.Errorf("l2: get: %w: dial tcp: connection refused", tierstore.ErrUnavailable), http.StatusServiceUnavailable, "1"},
		{"refused", fmt.Errorf("l2: get: %w: NOPERM", tierstore.ErrRefused), http.StatusInternalServerError, ""},
		{"other", errDown, http.StatusInternalServerError, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			def := captureDefault(t)
			var logs logRecords
			m, err := session.New(session.Config{Store: failingStore{c.err}, Logger: logs.logger(), Cookie: session.Cookie{AllowInsecure: true}})
			if err != nil {
				t.Fatal(err)
			}
			h := m.LoadAndSave(handler(m))
			for _, path := range []string{"/put?user=ada", "/get?k=user"} { // a failed save, a failed load
				req := httptest.NewRequest("GET", path, nil)
				req.AddCookie(&http.Cookie{Name: "session", Value: session.NewID()})
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != c.code || rec.Header().Get("Retry-After") != c.retryAfter {
					t.Errorf("%s: answered %d, Retry-After %q; want %d, %q", path, rec.Code, rec.Header().Get("Retry-After"), c.code, c.retryAfter)
				}
			}
			if got := logs.sessionRecords(t); len(got) != 2 {
				t.Errorf("Config.Logger got %d session records, want 2: %s", len(got), logs.buf.String())
			}
			if got := def.sessionRecords(t); len(got) != 0 {
				t.Errorf("slog.Default got %d session records: %s", len(got), def.buf.String())
			}
		})
	}
}

// Redis down during a session request: a real redis-server, stopped. The
// request is answered 503 with Retry-After, the error is logged through
// Config.Logger with the request's path and no session ID, key or value,
// and slog.Default hears nothing from the session package.
func TestRedisDownIsAnswered503WithRetryAfter(t *testing.T) {
	def := captureDefault(t)
	srv := redistest.Start(t)
	store, err := tiered.New(tiered.Config{Redis: srv.Client(nil), HealthCheckInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	redistest.WaitLive(t, store)
	var logs logRecords
	m, err := session.New(session.Config{Store: store, Logger: logs.logger(), Cookie: session.Cookie{AllowInsecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	h := m.LoadAndSave(handler(m))
	_, cookie := serveCookie(h, "/put?user=ada", "")
	if cookie == "" {
		t.Fatal("no session before the outage")
	}
	srv.Kill()
	// A session this instance does not hold (its load reads Redis), and a
	// new one (its save writes Redis).
	other := session.NewID()
	for _, req := range []struct{ path, cookie string }{{"/get?k=user", other}, {"/put?secret=hunter2", ""}} {
		r := httptest.NewRequest("GET", req.path, nil)
		if req.cookie != "" {
			r.AddCookie(&http.Cookie{Name: "session", Value: req.cookie})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
			t.Errorf("%s with Redis down: answered %d, Retry-After %q; want 503, \"1\"", req.path, rec.Code, rec.Header().Get("Retry-After"))
		}
		if c := sessionCookie(rec.Result()); c != nil {
			t.Errorf("%s with Redis down set a cookie", req.path)
		}
	}
	recs := logs.sessionRecords(t)
	if len(recs) != 2 {
		t.Fatalf("Config.Logger got %d session records, want 2: %s", len(recs), logs.buf.String())
	}
	for _, rec := range recs {
		if rec["level"] != "ERROR" || rec["status"] != float64(503) || rec["path"] == nil || rec["err"] == nil {
			t.Errorf("record %v: want level ERROR, status 503, the path and the error", rec)
		}
	}
	id, _, _ := strings.Cut(cookie, ".")
	secrets := []string{id, other, "hunter2", "secret"}
	for _, id := range []string{id, other} { // and their Store keys
		sum := sha256.Sum256([]byte(id))
		secrets = append(secrets, base64.RawURLEncoding.EncodeToString(sum[:]))
	}
	for _, secret := range secrets {
		if strings.Contains(logs.buf.String(), secret) {
			t.Errorf("the log names %q: %s", secret, logs.buf.String())
		}
	}
	if got := def.sessionRecords(t); len(got) != 0 {
		t.Errorf("slog.Default got %d session records: %s", len(got), def.buf.String())
	}
}
