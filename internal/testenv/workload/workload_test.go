package workload_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/workload"
)

// mapStore is a Store in a map; two of them model instances that never
// see each other's writes.
type mapStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *mapStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, tierstore.ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

func (s *mapStore) Set(_ context.Context, key string, value []byte, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), value...)
	return nil
}

func (s *mapStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// splitStore reads one store and writes another: an instance that never
// sees the writes, its own included.
type splitStore struct{ read, write tierstore.Store }

func (s splitStore) Get(ctx context.Context, key string) ([]byte, error) {
	return s.read.Get(ctx, key)
}

func (s splitStore) Set(ctx context.Context, key string, value []byte, expiry time.Time) error {
	return s.write.Set(ctx, key, value, expiry)
}

func (s splitStore) Delete(ctx context.Context, key string) error { return s.write.Delete(ctx, key) }

// The runs are serial with a fixed number of operations, so their counts
// depend on the seeds only, never on the scheduler or the machine's load.
func TestRunCountsStaleReads(t *testing.T) {
	ctx := context.Background()
	cfg := workload.Config{Keys: 100, ReadShare: 0.5, Concurrency: 4, Ops: 2000, Serial: true, StaleAfter: time.Nanosecond}
	run := func(cfg workload.Config, instances ...tierstore.Store) workload.Result {
		t.Helper()
		r, err := workload.Run(ctx, instances, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r.Reads == 0 || r.Writes == 0 || r.Errors != 0 {
			t.Fatalf("run: %v", r)
		}
		return r
	}
	a, b := &mapStore{m: map[string][]byte{}}, &mapStore{m: map[string][]byte{}}
	for _, s := range []tierstore.Store{a, b} {
		if err := workload.Preload(ctx, s, cfg); err != nil {
			t.Fatal(err)
		}
	}

	if r := run(cfg, a, a); r.Stale != 0 {
		t.Errorf("two instances sharing one store: %v, want no stale reads", r)
	}
	// The goroutines on a write, those on b then read what b never got.
	if r := run(cfg, a, b); r.Stale < 100 {
		t.Errorf("two instances that never see each other's writes: %v, want many stale reads", r)
	}
	// b holds the values of earlier runs, each key written more often
	// than in the next run, which b only reads: they are stale all the same.
	few := cfg
	few.ReadShare = 0.99
	if r := run(few, a, splitStore{read: b, write: a}); r.Stale == 0 {
		t.Errorf("reading values left by earlier runs: %v, want stale reads", r)
	}
}
