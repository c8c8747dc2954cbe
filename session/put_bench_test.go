package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tierstore/tierstore/l1"
)

// BenchmarkPut is what a request that changes its session pays before
// the save: the load of a session of five small values from the Store's
// memory (its decoding spared by the decoded-session cache), then no,
// one or two Puts (the first one copies the shared values).
func BenchmarkPut(b *testing.B) {
	store, err := l1.New(l1.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	m, err := New(Config{Store: store, Cookie: Cookie{AllowInsecure: true}})
	if err != nil {
		b.Fatal(err)
	}
	login := m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range map[string]any{"user": "ada", "id": 42, "roles": []string{"admin"}, "csrf": "0123456789abcdef", "seen": true} {
			if err := m.Put(r.Context(), k, v); err != nil {
				b.Fatal(err)
			}
		}
	}))
	rec := httptest.NewRecorder()
	login.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	cookie := rec.Result().Cookies()[0].Value
	for _, c := range []struct {
		name string
		keys []string
	}{{"load", nil}, {"load+one", []string{"cart"}}, {"load+two", []string{"cart", "flash"}}} {
		b.Run(c.name, func(b *testing.B) {
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
