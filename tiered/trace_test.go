package tiered

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// recordingTracer records each call's op and outcome.
type recordingTracer struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingTracer) Start(_ context.Context, op string) func(error) {
	return func(err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		outcome := "ok"
		if err != nil {
			outcome = "err"
		}
		r.calls = append(r.calls, op+" "+outcome)
	}
}

func (r *recordingTracer) ops() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// The Tracer sees each call that goes to Redis, with its outcome, once;
// hits and calls refused before Redis (a bad key) never; nil removes it.
func TestTracerSeesWhatGoesToRedis(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(nil), Config{})
	ctx := context.Background()
	r := &recordingTracer{}
	s.SetTracer(r)
	set(t, s, "k", "v")
	cached(t, s, "k") // the writer's copy, dropped by its own report, read again
	before := len(r.ops())
	get(t, s, "k") // a hit
	if _, err := s.Get(ctx, ""); err == nil {
		t.Fatal("Get of an empty key succeeded")
	}
	v, err := s.SetIf(ctx, "c", []byte("x"), time.Time{}, tierstore.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIf(ctx, "c", v+1); !errors.Is(err, tierstore.ErrConflict) {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, "k", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	got := r.ops()[before:]
	want := []string{"set_if ok", "delete_if err", "touch ok", "delete ok"}
	if !slices.Equal(got, want) {
		t.Fatalf("traced %v, want %v", got, want)
	}
	if first := r.ops()[0]; first != "set ok" {
		t.Fatalf("first traced call %q, want the set", first)
	}
	s.SetTracer(nil)
	if _, err := s.Get(ctx, "absent"); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatal(err)
	}
	if n := len(r.ops()); n != before+len(want) {
		t.Fatalf("%d calls traced after SetTracer(nil)", n-before-len(want))
	}
}
