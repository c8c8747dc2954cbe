package scsstore_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/scsstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/tiered"
)

// stores returns the tiers to run scs on: memory only, and tiered on a
// real redis-server.
func stores(t *testing.T) map[string]tierstore.Store {
	mem, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	srv := redistest.Start(t)
	tier, err := tiered.New(tiered.Config{Redis: srv.Client(&redis.Options{ContextTimeoutEnabled: true})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tier.Close() })
	return map[string]tierstore.Store{"memory": mem, "tiered": tier, "memory/not-versioned": plain{mem, mem}}
}

// plain hides a store's optional capabilities but listing: a store that
// is not tierstore.Versioned, whose saves are unconditional.
type plain struct {
	tierstore.Store
	tierstore.Lister
}

func cookie(token string) *http.Cookie { return &http.Cookie{Name: "session", Value: token} }

// app is scs's own SessionManager and LoadAndSave with the adapter.
func app(sm *scs.SessionManager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) { sm.Put(r.Context(), "user", r.URL.Query().Get("user")) })
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, sm.GetString(r.Context(), "user")) })
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	return sm.LoadAndSave(mux)
}

func do(t *testing.T, h http.Handler, path, token string) (body, newToken string) {
	t.Helper()
	// A request context of its own, as net/http gives every request.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", path, nil)
	if token != "" {
		req.AddCookie(cookie(token))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == "session" {
			newToken = c.Value
		}
	}
	return rec.Body.String(), newToken
}

func TestSCSSessionManagerOnEveryTier(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			sm := scs.New()
			sm.Store = scsstore.New(store)
			h := app(sm)

			_, token := do(t, h, "/put?user=ada", "")
			if got, _ := do(t, h, "/get", token); got != "ada" {
				t.Fatalf("get = %q, want ada", got)
			}
			_, renewed := do(t, h, "/renew", token)
			if renewed == "" || renewed == token {
				t.Fatal("RenewToken did not issue a new token")
			}
			if got, _ := do(t, h, "/get", token); got != "" {
				t.Fatalf("the token replaced by RenewToken still reads %q", got)
			}
			if got, _ := do(t, h, "/get", renewed); got != "ada" {
				t.Fatalf("the renewed token reads %q", got)
			}
			all := map[string]bool{}
			if err := sm.Iterate(context.Background(), func(ctx context.Context) error {
				all[sm.GetString(ctx, "user")] = true
				return nil
			}); err != nil || !all["ada"] || len(all) != 1 {
				t.Fatalf("Iterate saw %v, %v; want one session of ada", all, err)
			}
			do(t, h, "/destroy", renewed)
			if got, _ := do(t, h, "/get", renewed); got != "" {
				t.Fatalf("a destroyed session reads %q", got)
			}
		})
	}
}

func TestSCSLifetimeAndIdleTimeout(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			sm := scs.New()
			sm.Store = scsstore.New(store)
			sm.Lifetime = time.Hour
			sm.IdleTimeout = 300 * time.Millisecond
			h := app(sm)
			_, token := do(t, h, "/put?user=ada", "")
			if got, _ := do(t, h, "/get", token); got != "ada" {
				t.Fatalf("get = %q", got)
			}
			time.Sleep(600 * time.Millisecond) // idle for twice the timeout
			if got, _ := do(t, h, "/get", token); got != "" {
				t.Fatalf("an idle-expired session reads %q", got)
			}

			sm.Lifetime, sm.IdleTimeout = 300*time.Millisecond, 0
			_, token = do(t, h, "/put?user=grace", "")
			time.Sleep(600 * time.Millisecond)
			if got, _ := do(t, h, "/get", token); got != "" {
				t.Fatalf("an expired session reads %q", got)
			}
		})
	}
}

func TestMalformedTokensAreNotFound(t *testing.T) {
	mem, _ := l1.New(l1.Config{})
	defer mem.Close()
	s := scsstore.New(mem)
	for _, token := range []string{"", "bad\ntoken", string(make([]byte, 600))} {
		b, found, err := s.Find(token)
		if b != nil || found || err != nil {
			t.Errorf("Find(%q) = %v, %v, %v; want not found, no error", token, b, found, err)
		}
		if err := s.Delete(token); err != nil {
			t.Errorf("Delete(%q) = %v", token, err)
		}
	}
}
