package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/internal/testenv/sessionsuite"
)

// Each framework's app on two tiered instances sharing a real
// redis-server, through httptest: a login on A is seen on B, a logout on
// B is final on A, over a write in flight too, and concurrent writes of
// different keys on A and B keep both.
func TestTwoInstances(t *testing.T) {
	for name, newApp := range Apps {
		t.Run(name, func(t *testing.T) {
			sessionsuite.Run(t, sessionsuite.Config{
				App: func(t testing.TB, store tierstore.Store) http.Handler {
					h, err := newApp(store, func(r *http.Request) { sessionsuite.RunHook(r.Header.Get(sessionsuite.Hook)) })
					if err != nil {
						t.Fatal(err)
					}
					return h
				},
				FinalLogout: true,
				KeepsBoth:   true,
			})
		})
	}
}

// The walk-through runs, on miniredis and on a real redis-server.
func TestWalkthrough(t *testing.T) {
	srv := redistest.Start(t)
	for name := range Apps {
		for _, addr := range []string{"", srv.Addr()} {
			var out bytes.Buffer
			if err := run(name, addr, &out); err != nil {
				t.Fatalf("%s on %q: %v\n%s", name, addr, err, out.String())
			}
			if lines := strings.Count(out.String(), "\n"); lines != 6 {
				t.Fatalf("%s: %d steps, want 6:\n%s", name, lines, out.String())
			}
		}
	}
}
