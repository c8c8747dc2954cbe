package session_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

// instance is one server process: its own tiered store and manager.
type instance struct {
	store   *tiered.Store
	h       http.Handler
	markers redistest.Markers
}

func newInstance(t *testing.T, srv *redistest.Server) *instance {
	t.Helper()
	in := &instance{}
	store, err := tiered.New(tiered.Config{
		Redis: srv.Client(nil), HealthCheckInterval: 200 * time.Millisecond,
		OnInvalidate: in.markers.OnInvalidate,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	redistest.WaitLive(t, store)
	m, err := session.New(session.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	in.store, in.h = store, m.LoadAndSave(handler(m))
	return in
}

func (in *instance) do(t *testing.T, path, cookie string) *http.Response {
	t.Helper()
	return serve(in.h, path, cookie)
}

// afterInvalidation runs write, then waits until in has applied at least
// one more invalidation than before it.
func afterInvalidation(t *testing.T, in *instance, write func()) {
	t.Helper()
	redistest.AfterGrowth(t, "the invalidation arrives", func() uint64 { return in.store.Stats().Invalidation.Received }, write)
}

func TestLogoutOnOneInstanceIsRejectedOnTheOther(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newInstance(t, srv), newInstance(t, srv)
	id := sessionCookie(a.do(t, "/put?user=ada", "")).Value
	for range 3 { // B reads it, and holds it in its L1
		if got := body(b.do(t, "/get?k=user", id)); got != "ada" {
			t.Fatalf("B read %q", got)
		}
	}
	if got := body(a.do(t, "/get?k=user", id)); got != "ada" {
		t.Fatalf("A read %q", got)
	}
	b.do(t, "/destroy", id)
	a.markers.CaughtUp(t, a.store, b.store) // not "one more invalidation": A's own save reported back late could be it
	if got := body(a.do(t, "/get?k=user", id)); got != "" {
		t.Fatalf("A still serves a session destroyed on B: %q", got)
	}
}

func TestRenewOnOneInstanceRejectsTheOldIDOnTheOther(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newInstance(t, srv), newInstance(t, srv)
	old := sessionCookie(a.do(t, "/put?user=ada", "")).Value
	if got := body(b.do(t, "/get?k=user", old)); got != "ada" {
		t.Fatalf("B read %q", got)
	}
	var renewed string
	afterInvalidation(t, b, func() { renewed = sessionCookie(a.do(t, "/renew", old)).Value })
	if got := body(b.do(t, "/get?k=user", old)); got != "" {
		t.Fatalf("B still accepts the old ID: %q", got)
	}
	if got := body(b.do(t, "/get?k=user", renewed)); got != "ada" {
		t.Fatalf("B reads %q under the new ID", got)
	}
}

// An operator deleting a session's key in Redis logs the user out on
// every instance, and no later request, on any instance, brings the
// session back: Redis reports the DEL to both (tiered's server-assisted
// invalidation), so neither saves its cached copy over the deletion.
func TestOperatorDeleteLogsOutEverywhere(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newInstance(t, srv), newInstance(t, srv)
	id := sessionCookie(a.do(t, "/put?user=ada", "")).Value
	for _, in := range []*instance{a, b} {
		for range 3 { // held in both L1s
			if got := body(in.do(t, "/get?k=user", id)); got != "ada" {
				t.Fatalf("read %q before the delete", got)
			}
		}
	}
	c := srv.Client(nil)
	ctx := context.Background()
	keys, err := c.Keys(ctx, "tierstore:[^\x00]*").Result() // not the epoch key
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys in Redis: %q, %v", keys, err)
	}
	ra, rb := a.store.Stats().Invalidation.Received, b.store.Stats().Invalidation.Received
	if err := c.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, "both instances hear the delete", func() bool {
		return a.store.Stats().Invalidation.Received > ra && b.store.Stats().Invalidation.Received > rb
	})
	for name, in := range map[string]*instance{"A": a, "B": b} {
		if got := body(in.do(t, "/get?k=user", id)); got != "" {
			t.Fatalf("%s still serves the deleted session: %q", name, got)
		}
		// A request that writes, with the old cookie, starts a new
		// session under a new ID: the old one stays deleted.
		res := in.do(t, "/put?cart=1", id)
		if c := sessionCookie(res); c == nil || c.Value == id {
			t.Fatalf("%s kept the deleted session's ID", name)
		}
		if got := body(in.do(t, "/get?k=user", id)); got != "" {
			t.Fatalf("%s brought the deleted session back: %q", name, got)
		}
	}
}
