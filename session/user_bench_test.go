package session_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/session"
)

// BenchmarkUserIndex is what the per-user index costs where it is used,
// on a memory Store, with the Store calls each operation makes
// (store-calls/op: on l2 or a tiered miss, each is a Redis round trip):
// a login of a browser that has a session (SetUser: the old ID deleted,
// the new one written, the index read and written), UserSessions of a
// user with five sessions, and RevokeUser of five sessions (with the
// five logins it ends, which it needs).
func BenchmarkUserIndex(b *testing.B) {
	mem, err := l1.New(l1.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mem.Close() })
	store := &countingStore{Store: mem}
	m, err := session.New(session.Config{Store: store, Cookie: session.Cookie{AllowInsecure: true}})
	if err != nil {
		b.Fatal(err)
	}
	h := m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.URL.Query().Get("login"); u != "" {
			if err := m.SetUser(r.Context(), u); err != nil {
				b.Fatal(err)
			}
			return
		}
		if err := m.Put(r.Context(), "cart", 1); err != nil {
			b.Fatal(err)
		}
	}))
	visit := func(path, cookie string) string { return setCookie(serve(h, path, cookie)) }
	ctx := context.Background()
	// measure runs setup (untimed, uncounted) and op each iteration.
	measure := func(b *testing.B, setup func(i int) string, op func(i int, arg string)) {
		b.ReportAllocs()
		var calls int32
		n := 0
		for b.Loop() {
			b.StopTimer()
			arg := setup(n)
			b.StartTimer()
			before := store.calls()
			op(n, arg)
			calls += store.calls() - before
			n++
		}
		b.ReportMetric(float64(calls)/float64(n), "store-calls/op")
	}
	b.Run("login", func(b *testing.B) {
		measure(b, func(int) string { return visit("/", "") }, func(i int, cookie string) {
			visit("/?login=u"+strconv.Itoa(i), cookie)
		})
	})
	for range 5 {
		visit("/?login=ada", visit("/", ""))
	}
	b.Run("list-5", func(b *testing.B) {
		measure(b, func(int) string { return "" }, func(int, string) {
			if list, err := m.UserSessions(ctx, "ada"); err != nil || len(list) != 5 {
				b.Fatal(len(list), err)
			}
		})
	})
	b.Run("revoke-5", func(b *testing.B) {
		measure(b, func(i int) string {
			user := "r" + strconv.Itoa(i)
			for range 5 {
				visit("/?login="+user, "")
			}
			return user
		}, func(_ int, user string) {
			if n, err := m.RevokeUser(ctx, user); err != nil || n != 5 {
				b.Fatal(n, err)
			}
		})
	})
}
