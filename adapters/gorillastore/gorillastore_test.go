package gorillastore_test

import (
	"encoding/gob"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/gorillastore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/tiered"
)

type cart struct{ Items []string }

func init() { gob.Register(cart{}) }

// app uses gorilla's registry flow: store.Get, change Values, sessions.Save.
func app(store sessions.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, "sid")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		s.Values["user"] = "ada"
		s.Values["cart"] = cart{Items: []string{"tea"}}
		if err := sessions.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, "sid")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		user, _ := s.Values["user"].(string)
		c, _ := s.Values["cart"].(cart)
		if len(c.Items) == 1 {
			user += "+" + c.Items[0]
		}
		io.WriteString(w, user)
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		s, _ := store.Get(r, "sid")
		s.Options.MaxAge = -1
		if err := s.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	return mux
}

func do(t *testing.T, h http.Handler, path string, cookie *http.Cookie) (string, *http.Cookie) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == "sid" {
			return rec.Body.String(), c
		}
	}
	return rec.Body.String(), nil
}

func TestGorillaRegistryFlow(t *testing.T) {
	mem, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	store := gorillastore.New(mem)
	h := app(store)

	_, cookie := do(t, h, "/login", nil)
	if cookie == nil || !validCookie(cookie.Value) || !cookie.HttpOnly || !cookie.Secure || cookie.MaxAge != gorillastore.DefaultMaxAge {
		t.Fatalf("cookie = %+v; want only a 43-character ID and a version, HttpOnly, Secure, MaxAge 30 days", cookie)
	}
	if got, _ := do(t, h, "/whoami", cookie); got != "ada+tea" {
		t.Fatalf("whoami = %q, want ada+tea", got)
	}
	_, deleted := do(t, h, "/logout", cookie)
	if deleted == nil || deleted.MaxAge >= 0 {
		t.Fatalf("logout cookie = %+v, want a deletion", deleted)
	}
	if got, _ := do(t, h, "/whoami", cookie); got != "" {
		t.Fatalf("after logout whoami = %q", got)
	}
	for _, bad := range []string{"forged", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", string(make([]byte, 1<<20))} {
		if got, _ := do(t, h, "/whoami", &http.Cookie{Name: "sid", Value: bad}); got != "" {
			t.Fatalf("a made-up cookie reads %q", got)
		}
	}
}

// validCookie reports whether v is "<43-character ID>.<base-36 version>".
func validCookie(v string) bool {
	id, version, ok := strings.Cut(v, ".")
	_, err := strconv.ParseUint(version, 36, 64)
	return ok && len(id) == 43 && err == nil && version[0] != '0' && strings.ToLower(version) == version
}

func TestStoreFailureIsReported(t *testing.T) {
	srv := redistest.Start(t)
	tier, err := tiered.New(tiered.Config{Redis: srv.Client(&redis.Options{MaxRetries: -1, DialTimeout: 200 * time.Millisecond})})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	store := gorillastore.New(tier)
	h := app(store)
	_, cookie := do(t, h, "/login", nil)
	srv.Kill()
	// Until the store notices, L1 may serve, within the documented bound.
	redistest.Eventually(t, "the store notices", func() bool { return !tier.Live() })
	req := httptest.NewRequest("GET", "/whoami", nil)
	req.AddCookie(cookie)
	s, err := store.New(req, "sid")
	if !errors.Is(err, tierstore.ErrUnavailable) || s == nil || !s.IsNew {
		t.Fatalf("New with Redis down = %v, %v; want a new session and ErrUnavailable", s, err)
	}
}

func TestLogoutOnOneInstanceIsRejectedOnTheOther(t *testing.T) {
	srv := redistest.Start(t)
	instance := func() (*tiered.Store, http.Handler) {
		s, err := tiered.New(tiered.Config{Redis: srv.Client(nil), HealthCheckInterval: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		redistest.WaitLive(t, s)
		return s, app(gorillastore.New(s))
	}
	storeA, a := instance()
	_, b := instance()
	_, cookie := do(t, a, "/login", nil)
	if got, _ := do(t, b, "/whoami", cookie); got != "ada+tea" {
		t.Fatalf("B reads %q", got)
	}
	do(t, a, "/whoami", cookie) // A holds it in L1 too
	redistest.AfterGrowth(t, "A receives the invalidation", func() uint64 { return storeA.Stats().Invalidation.Received },
		func() { do(t, b, "/logout", cookie) })
	if got, _ := do(t, a, "/whoami", cookie); got != "" {
		t.Fatalf("A still serves a session logged out on B: %q", got)
	}
}
