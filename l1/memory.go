package l1

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/tierstore/tierstore"
)

// The methods in this file make Store the memory-only tierstore.Store.
// Writes are synchronous: when Set returns nil the value is readable, and
// when the cache declines it Set says so (ErrNotAdmitted) instead of
// dropping it silently.

var (
	_ tierstore.Store        = (*Store)(nil)
	_ tierstore.Toucher      = (*Store)(nil)
	_ tierstore.Viewer       = (*Store)(nil)
	_ tierstore.ExpiryReader = (*Store)(nil)
	_ tierstore.Lister       = (*Store)(nil)
)

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return tierstore.ErrClosed
	}
	return nil
}

// Get returns a copy of the value under key, or tierstore.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.GetWithExpiry(ctx, key)
	return v, err
}

// GetWithExpiry returns a copy of the value under key and its expiry.
func (s *Store) GetWithExpiry(ctx context.Context, key string) ([]byte, time.Time, error) {
	var out []byte
	expiry, err := s.view(ctx, key, func(b []byte) error {
		out = bytes.Clone(b)
		return nil
	})
	return out, expiry, err
}

// View calls fn with the cached value under key, without copying it.
func (s *Store) View(ctx context.Context, key string, fn func([]byte) error) error {
	_, err := s.view(ctx, key, fn)
	return err
}

func (s *Store) view(ctx context.Context, key string, fn func([]byte) error) (time.Time, error) {
	if err := s.check(ctx); err != nil {
		return time.Time{}, err
	}
	hit, expiry, err := s.Lookup(key, fn)
	if hit {
		return expiry, err
	}
	// Keys are validated on writes, so an invalid key can only miss:
	// checking it here keeps the hit path free of the scan.
	if err := tierstore.CheckKey(key); err != nil {
		return time.Time{}, err
	}
	return time.Time{}, tierstore.ErrNotFound
}

// Keys calls fn for each live key. The keys are collected first, so fn may
// use the store.
func (s *Store) Keys(ctx context.Context, fn func(key string) bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	var keys []string
	s.cache.IterValues(func(e *entry) bool {
		if s.current(e) && !s.expired(e) {
			keys = append(keys, e.key)
		}
		return false
	})
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn(k) {
			return nil
		}
	}
	return nil
}

// Set stores a copy of value under key until expiry, capped by TTL.
func (s *Store) Set(ctx context.Context, key string, value []byte, expiry time.Time) error {
	if err := s.checkWrite(ctx, key); err != nil {
		return err
	}
	if len(value) > s.maxValue {
		return fmt.Errorf("l1: set: %d bytes, limit %d: %w", len(value), s.maxValue, tierstore.ErrTooLarge)
	}
	if !expiry.IsZero() && !time.Now().Before(expiry) {
		s.del(key)
		return nil
	}
	return s.store(key, bytes.Clone(value), expiry, 0)
}

// store writes the entry synchronously: it waits until ristretto has applied
// the write and reports whether its admission policy kept it.
//
// Two concurrent first writes of one key are both new to ristretto, which
// keeps one and rejects the other as a duplicate. A rejected write whose
// key is present afterwards was overtaken by such a concurrent write (the
// key was absent when this one began, or ristretto would have updated it
// in place), so it succeeded and was overwritten. Otherwise, and when
// ristretto's write buffer was full, it is tried again before it is
// reported. A later eviction, or a concurrent Delete, is not a failure of
// this write.
func (s *Store) store(key string, value []byte, expiry time.Time, capAt int64) error {
	h := s.hashOf(key)
	for attempt := range 5 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 100 * time.Microsecond)
		}
		e := s.fill(key, value, expiry, s.stampOf(s.stripeOfHash(h)), h, capAt)
		if e == nil {
			if s.closed.Load() {
				return tierstore.ErrClosed
			}
			continue // write buffer full
		}
		s.cache.Wait()
		if !e.rejected.Load() {
			return nil
		}
		if _, ok := s.get(key); ok {
			return nil
		}
	}
	return ErrNotAdmitted
}

// Delete removes key.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.checkWrite(ctx, key); err != nil {
		return err
	}
	s.del(key)
	return nil
}

// Touch changes the expiry of key without copying its value.
func (s *Store) Touch(ctx context.Context, key string, expiry time.Time) error {
	if err := s.checkWrite(ctx, key); err != nil {
		return err
	}
	e, ok := s.get(key)
	if !ok || s.expired(e) || !s.current(e) {
		return tierstore.ErrNotFound
	}
	if !expiry.IsZero() && !time.Now().Before(expiry) {
		s.del(key)
		return nil
	}
	return s.store(key, e.value, expiry, e.capAt) // a touch does not restart TTL
}

func (s *Store) checkWrite(ctx context.Context, key string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return tierstore.CheckKey(key)
}
