// Package fiberstore is a Storage for Fiber, v2 and v3 alike, on any
// tierstore.Store (memory, Redis or tiered): for Fiber's session
// middleware and for every other middleware that takes a Storage (CSRF,
// limiter, cache, idempotency). The package imports no Fiber: a Storage
// has the methods of both versions' interfaces (Get, Set, Delete, Reset,
// Close, and v3's ...WithContext variants).
//
//	store := fiberstore.New(tieredStore)
//	sessions := session.New(session.Config{Storage: store})       // v2
//	app.Use(csrf.New(csrf.Config{Storage: store}))                 // same Storage
//	app.Use(limiter.New(limiter.Config{Storage: store}))           // same Storage
//
// # What holds, and what Fiber's interface prevents
//
// Fiber's Storage is blob-level: the session middleware gets the whole
// session at the start of a request and sets the whole session when it
// saves, with neither a version nor the request it belongs to. So on a
// tiered store:
//
//   - A session saved on one instance is seen on every other at once by
//     a request that starts after the save returned, except within the
//     invalidation delay (well under a millisecond on loopback; bounded by
//     the store's staleness bound under faults), during which an instance
//     that cached the session may serve its older copy.
//   - A logout (Fiber's Destroy, Regenerate or Reset delete the key) is
//     seen by every instance's later requests within that same bound.
//     It is not final: a request of the same session that loaded it
//     before the logout and saves after it stores it again (Set has no
//     way to know it was deleted), and so may a request that read a copy
//     within the invalidation delay.
//   - Two concurrent requests of one session that change different keys
//     may lose one of the changes: the last Set wins, whole.
//
// docs/sessions.md measures both races; tierstore's own session package
// (or the gin and gorilla adapters) keeps these guarantees instead.
//
// Keys are stored as KeyPrefix and the SHA-256 of Fiber's key (a session
// ID, a CSRF token, a client's IP), so that a dump of the store holds no
// token a client could present.
package fiberstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/session/sessionid"
)

// DefaultKeyPrefix is the default Storage.KeyPrefix.
const DefaultKeyPrefix = "fiber:"

// ErrResetUnsupported is returned by Reset on a store that cannot list its
// keys (it does not implement tierstore.Lister): Reset deletes only the
// keys under the Storage's KeyPrefix, never the rest of the store, and
// without a list it cannot find them.
var ErrResetUnsupported = errors.New("fiberstore: reset: the store cannot list its keys (tierstore.Lister), so it cannot delete just this Storage's")

// Storage is a Fiber Storage on a tierstore.Store. All methods are safe
// for concurrent use.
type Storage struct {
	// KeyPrefix is prepended to the hash of every key. Default
	// DefaultKeyPrefix. Give each middleware its own if one may Reset.
	KeyPrefix string

	store tierstore.Store
}

// New returns a Storage on store.
func New(store tierstore.Store) *Storage {
	return &Storage{KeyPrefix: DefaultKeyPrefix, store: store}
}

// GetWithContext returns the value under key, or nil and no error if
// there is none (Fiber's contract), as does an empty key.
func (s *Storage) GetWithContext(ctx context.Context, key string) ([]byte, error) {
	if key == "" {
		return nil, nil
	}
	b, err := s.store.Get(ctx, s.key(key))
	switch {
	case errors.Is(err, tierstore.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("fiberstore: get under %q: %w", s.KeyPrefix, err)
	}
	return b, nil
}

// SetWithContext stores val under key for exp (0: without expiry). An
// empty key or value is ignored without an error, as Fiber's contract
// says (its middlewares never pass one); a negative exp is an error.
func (s *Storage) SetWithContext(ctx context.Context, key string, val []byte, exp time.Duration) error {
	if key == "" || len(val) == 0 {
		return nil
	}
	var expiry time.Time
	switch {
	case exp < 0:
		return fmt.Errorf("fiberstore: set under %q: negative expiration %v", s.KeyPrefix, exp)
	case exp > 0:
		expiry = time.Now().Add(exp)
	}
	if err := s.store.Set(ctx, s.key(key), val, expiry); err != nil {
		return fmt.Errorf("fiberstore: set under %q: %w", s.KeyPrefix, err)
	}
	return nil
}

// DeleteWithContext deletes key, on every instance of a tiered store.
// Deleting a missing key is not an error.
func (s *Storage) DeleteWithContext(ctx context.Context, key string) error {
	if key == "" {
		return nil
	}
	if err := s.store.Delete(ctx, s.key(key)); err != nil {
		return fmt.Errorf("fiberstore: delete under %q: %w", s.KeyPrefix, err)
	}
	return nil
}

// ResetWithContext deletes every key under the Storage's KeyPrefix, and
// nothing else, listing the store's keys (on l2 and tiered a SCAN of the
// Redis keyspace under the store's own prefix: an administrative call,
// not one for a request). It returns ErrResetUnsupported on a store that
// cannot list its keys. Keys written during the call may survive it.
func (s *Storage) ResetWithContext(ctx context.Context) error {
	lister, ok := s.store.(tierstore.Lister)
	if !ok {
		return ErrResetUnsupported
	}
	var mine []string
	if err := lister.Keys(ctx, func(key string) bool {
		if strings.HasPrefix(key, s.KeyPrefix) {
			mine = append(mine, key)
		}
		return true
	}); err != nil {
		return fmt.Errorf("fiberstore: reset under %q: %w", s.KeyPrefix, err)
	}
	for _, key := range mine {
		if err := s.store.Delete(ctx, key); err != nil {
			return fmt.Errorf("fiberstore: reset under %q: %w", s.KeyPrefix, err)
		}
	}
	return nil
}

// Get is GetWithContext without a context.
func (s *Storage) Get(key string) ([]byte, error) {
	return s.GetWithContext(context.Background(), key)
}

// Set is SetWithContext without a context.
func (s *Storage) Set(key string, val []byte, exp time.Duration) error {
	return s.SetWithContext(context.Background(), key, val, exp)
}

// Delete is DeleteWithContext without a context.
func (s *Storage) Delete(key string) error {
	return s.DeleteWithContext(context.Background(), key)
}

// Reset is ResetWithContext without a context.
func (s *Storage) Reset() error {
	return s.ResetWithContext(context.Background())
}

// Close does nothing and returns nil: the tierstore.Store is the
// application's, often shared by several Storages (sessions, CSRF,
// limiter) that Fiber may each close; its owner closes it.
func (s *Storage) Close() error { return nil }

// key is the store key of Fiber's key.
func (s *Storage) key(key string) string { return sessionid.Key(s.KeyPrefix, key) }
