package session

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/session/seal"
)

// BenchmarkPut is what a request that changes its session pays before
// the save: the load of a session of five small values from the Store's
// memory (its decoding spared by the decoded-session cache), then no,
// one or two Puts (the first one copies the shared values). The
// sub-benchmarks under "bound" load a session bound to a user with a
// device label (SetUser, SetLabel); those under "sealed" one sealed with
// Config.Encryption (AES-256-GCM).
func BenchmarkPut(b *testing.B) {
	for _, variant := range []struct {
		name      string
		bound     bool
		encrypted bool
	}{{"", false, false}, {"bound/", true, false}, {"sealed/", false, true}} {
		m, cookie := benchSession(b, variant.bound, variant.encrypted)
		for _, c := range []struct {
			name string
			keys []string
		}{{"load", nil}, {"load+one", []string{"cart"}}, {"load+two", []string{"cart", "flash"}}} {
			b.Run(variant.name+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					st, err := m.load(context.Background(), cookie)
					if err != nil || !st.stored {
						b.Fatal("not loaded", err)
					}
					ctx := context.WithValue(context.Background(), contextKey{m}, st)
					for _, k := range c.keys {
						if err := m.Put(ctx, k, 3); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// BenchmarkSave is a whole request that changes its session, through
// LoadAndSave on a memory Store: load, one Put, the conditional save
// (encoding, and sealing with Encryption) and the cookie.
func BenchmarkSave(b *testing.B) {
	for _, variant := range []struct {
		name      string
		bound     bool
		encrypted bool
	}{{"plain", false, false}, {"bound", true, false}, {"sealed", false, true}, {"bound+sealed", true, true}} {
		m, cookie := benchSession(b, variant.bound, variant.encrypted)
		h := m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := m.Put(r.Context(), "cart", 3); err != nil {
				b.Fatal(err)
			}
		}))
		b.Run(variant.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest("GET", "/", nil)
			req.AddCookie(&http.Cookie{Name: "session", Value: cookie})
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}

// benchSession returns a Manager on a memory store and the cookie of a
// session of five small values (bound to a user with a label, sealed).
func benchSession(b *testing.B, bound, encrypted bool) (*Manager, string) {
	store, err := l1.New(l1.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	cfg := Config{Store: store, Cookie: Cookie{AllowInsecure: true}}
	if encrypted {
		k, err := seal.NewKey(1, bytes.Repeat([]byte{7}, 32))
		if err != nil {
			b.Fatal(err)
		}
		if cfg.Encryption, err = seal.NewKeySet(k); err != nil {
			b.Fatal(err)
		}
	}
	m, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	login := m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range map[string]any{"user": "ada", "id": 42, "roles": []string{"admin"}, "csrf": "0123456789abcdef", "seen": true} {
			if err := m.Put(r.Context(), k, v); err != nil {
				b.Fatal(err)
			}
		}
		if bound {
			if err := m.SetLabel(r.Context(), "device", "Firefox on Linux"); err != nil {
				b.Fatal(err)
			}
			if err := m.SetUser(r.Context(), "ada@example.com"); err != nil {
				b.Fatal(err)
			}
		}
	}))
	rec := httptest.NewRecorder()
	login.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	return m, rec.Result().Cookies()[0].Value
}
