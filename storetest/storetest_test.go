package storetest_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/storetest"
)

// mapStore is the smallest Store that conforms: no optional capability.
// It shows what the suite asks of a third-party store.
type mapStore struct {
	mu sync.Mutex
	m  map[string]item
}

type item struct {
	value  []byte
	expiry time.Time
}

func (s *mapStore) check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return tierstore.CheckKey(key)
}

func (s *mapStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.m[key]
	if !ok || (!it.expiry.IsZero() && !time.Now().Before(it.expiry)) {
		return nil, tierstore.ErrNotFound
	}
	return bytes.Clone(it.value), nil
}

func (s *mapStore) Set(ctx context.Context, key string, value []byte, expiry time.Time) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	if len(value) > tierstore.DefaultMaxValueBytes {
		return tierstore.ErrTooLarge
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !expiry.IsZero() && !time.Now().Before(expiry) {
		delete(s.m, key)
		return nil
	}
	s.m[key] = item{bytes.Clone(value), expiry}
	return nil
}

func (s *mapStore) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

func newMapStore(*testing.T) tierstore.Store { return &mapStore{m: map[string]item{}} }

func TestMinimalStoreConforms(t *testing.T) {
	storetest.Run(t, newMapStore)
	storetest.RunBadInput(t, newMapStore, nil)
}
