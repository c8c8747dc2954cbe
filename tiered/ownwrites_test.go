package tiered

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/session"
)

// scriptsEchoed reports whether Redis reports a script's writes back to
// the writer in broadcast mode despite NOLOOP (before 7.2).
func scriptsEchoed(t *testing.T, c *redis.Client) bool {
	t.Helper()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	var major, minor int
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			_, _ = fmt.Sscanf(v, "%d.%d", &major, &minor)
		}
	}
	return major < 7 || major == 7 && minor < 2
}

// A session saved on an instance is served from that instance's memory
// on its next request, in both tracking modes: the quick start's visit
// counter (read, then save, every request). Redis reports each save back
// to its writer (in per-key mode always, in broadcast mode on Redis 7.0,
// where a save, a script, escapes NOLOOP): the instance reads the key
// again (refresh), off the request's path, and once that has landed the
// next request is served from memory (an L1 hit, no miss). Each save is reported back
// once: the refresh reads on the writes' connection, which follows the
// key already, so the reads' connection does not follow it too.
func TestSavedSessionIsServedFromMemory(t *testing.T) {
	for _, mode := range []invalidation.Mode{invalidation.PerKey, invalidation.Broadcast} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := redistest.Start(t)
			s := newStore(t, srv.Client(nil), Config{Invalidation: mode})
			refreshed := make(chan struct{}, 64)
			s.hooks().afterRefresh = func(string) { refreshed <- struct{}{} }
			landed := uint64(0)
			m, err := session.New(session.Config{Store: s, Cookie: session.Cookie{AllowInsecure: true}})
			if err != nil {
				t.Fatal(err)
			}
			h := m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				visits := m.GetInt(r.Context(), "visits") + 1
				if err := m.Put(r.Context(), "visits", visits); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				fmt.Fprint(w, visits)
			}))
			echoed := mode == invalidation.PerKey || scriptsEchoed(t, srv.Client(nil))
			var cookie *http.Cookie
			const requests = 50
			hits := 0
			for i := 1; i <= requests; i++ {
				var before, after Stats
				serve := func() {
					before = s.Stats()
					defer func() { after = s.Stats() }()
					req := httptest.NewRequest("GET", "/", nil)
					if cookie != nil {
						req.AddCookie(cookie)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if got := rec.Body.String(); got != fmt.Sprint(i) {
						t.Fatalf("request %d: %q", i, got)
					}
					for _, c := range rec.Result().Cookies() {
						cookie = c
					}
				}
				if echoed {
					// Its report comes back: wait for it, and for the read
					// it starts, before the next request.
					redistest.AfterGrowth(t, "the save's report arrives", received(s), serve)
					for ; landed < s.refreshes.Load(); landed++ {
						<-refreshed
					}
				} else {
					serve()
				}
				if i > 1 && after.L1.Hits > before.L1.Hits && after.L1.Misses == before.L1.Misses {
					hits++
				}
			}
			// At least 90%, the target: under load one request in 49 has
			// been seen to miss (in either mode), its cause not yet pinned
			// down; without the refresh none is served from memory.
			if want := (requests - 1) * 9 / 10; hits < want {
				t.Fatalf("%d of %d repeat requests served from memory; want at least %d", hits, requests-1, want)
			}
			// Each save is reported back once, and once more after a
			// request that missed: its read, on the reads' connection,
			// has that connection follow the key too.
			if echoed {
				misses := uint64(requests - 1 - hits)
				if got := s.Stats().Invalidation.Received; got < requests || got > requests+misses {
					t.Fatalf("%d reports of %d saves with %d misses; want one each, and at most one more per miss", got, requests, misses)
				}
			}
		})
	}
}
