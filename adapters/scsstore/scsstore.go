// Package scsstore lets github.com/alexedwards/scs/v2 keep its sessions in
// any tierstore.Store (memory, Redis or tiered): a drop-in replacement for
// scs's memstore or redisstore.
//
//	sessionManager := scs.New()
//	sessionManager.Store = scsstore.New(tieredStore)
package scsstore

import (
	"context"
	"errors"
	"time"

	"github.com/tierstore/tierstore"
)

// DefaultKeyPrefix is the default Store.KeyPrefix.
const DefaultKeyPrefix = "scs:"

// Store implements scs.Store, scs.CtxStore, scs.IterableStore and
// scs.IterableCtxStore. scs tokens are stored as keys (KeyPrefix + token),
// since scs's AllCtx must return them.
type Store struct {
	// KeyPrefix is prepended to tokens to form Store keys, so that scs
	// sessions can share a Store (and its Redis key prefix) with other
	// data. Default DefaultKeyPrefix ("scs:"). Change it only before use.
	KeyPrefix string

	store tierstore.Store
}

// New returns a Store keeping scs sessions in store.
func New(store tierstore.Store) *Store {
	return &Store{KeyPrefix: DefaultKeyPrefix, store: store}
}

// key returns the Store key of token and whether the token is acceptable.
// A token that cannot be a key is a malformed token: scs wants "not found"
// for those, not an error.
func (s *Store) key(token string) (string, bool) {
	k := s.KeyPrefix + token
	return k, token != "" && tierstore.CheckKey(k) == nil
}

// FindCtx returns the session data of token. Absent, expired, malformed
// tokens and unreadable data are "not found"; Store failures are errors.
func (s *Store) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	key, ok := s.key(token)
	if !ok {
		return nil, false, nil
	}
	b, err := s.store.Get(ctx, key)
	switch {
	case errors.Is(err, tierstore.ErrNotFound), errors.Is(err, tierstore.ErrCorrupt):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return b, true, nil
}

// CommitCtx stores the session data of token until expiry.
func (s *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	key, ok := s.key(token)
	if !ok {
		return tierstore.ErrInvalidKey
	}
	return s.store.Set(ctx, key, b, expiry)
}

// DeleteCtx removes token's session. Deleting a missing one is not an error.
func (s *Store) DeleteCtx(ctx context.Context, token string) error {
	key, ok := s.key(token)
	if !ok {
		return nil
	}
	return s.store.Delete(ctx, key)
}

// AllCtx returns every live session by token. The Store must implement
// tierstore.Lister (l1, l2 and tiered all do).
func (s *Store) AllCtx(ctx context.Context) (map[string][]byte, error) {
	lister, ok := s.store.(tierstore.Lister)
	if !ok {
		return nil, errors.New("scsstore: the store cannot list its keys (no tierstore.Lister)")
	}
	var keys []string
	err := lister.Keys(ctx, func(key string) bool {
		if len(key) > len(s.KeyPrefix) && key[:len(s.KeyPrefix)] == s.KeyPrefix {
			keys = append(keys, key)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	all := make(map[string][]byte, len(keys))
	for _, key := range keys {
		b, err := s.store.Get(ctx, key)
		switch {
		case errors.Is(err, tierstore.ErrNotFound), errors.Is(err, tierstore.ErrCorrupt):
			continue // expired or deleted since listed
		case err != nil:
			return nil, err
		}
		all[key[len(s.KeyPrefix):]] = b
	}
	return all, nil
}

// Find is FindCtx with a background context.
func (s *Store) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit is CommitCtx with a background context.
func (s *Store) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete is DeleteCtx with a background context.
func (s *Store) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// All is AllCtx with a background context.
func (s *Store) All() (map[string][]byte, error) {
	return s.AllCtx(context.Background())
}
