// Package l2 is the Redis-only tierstore.Store: values under a key prefix
// in any go-redis UniversalClient (single node, Sentinel, Cluster), with
// Redis's native expiry. Every read is a round trip; nothing is cached in
// the process.
//
// Values are stored framed with a checksum, so bytes under the prefix that
// tierstore did not write are reported as tierstore.ErrCorrupt instead of
// being served. An l2.Store and a tiered.Store with the same KeyPrefix
// share their data.
package l2

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/rediskv"
)

// DefaultKeyPrefix is the key prefix used when Config.KeyPrefix is empty:
// tiered's default too, so that the two share data unconfigured.
const DefaultKeyPrefix = "tierstore:"

// Config configures a Store. Zero fields take the documented defaults.
type Config struct {
	// Redis is the client; required. The Store never closes it. Set
	// ContextTimeoutEnabled in its options so that go-redis honours your
	// contexts' deadlines on the socket.
	Redis redis.UniversalClient
	// KeyPrefix is prepended to every key in Redis. Default
	// DefaultKeyPrefix.
	KeyPrefix string
	// MaxValueBytes is the largest value Set and SetIf accept. Default
	// tierstore.DefaultMaxValueBytes (1 MiB).
	MaxValueBytes int
}

// Store is the Redis-only tierstore.Store. It is safe for concurrent use.
//
// Every method checks its arguments before anything is sent to Redis: a
// done context returns its error, a key tierstore.CheckKey refuses
// returns tierstore.ErrInvalidKey, and a value over MaxValueBytes returns
// tierstore.ErrTooLarge.
type Store struct {
	kv       *rediskv.Client
	maxValue int
}

var (
	_ tierstore.Store     = (*Store)(nil)
	_ tierstore.Toucher   = (*Store)(nil)
	_ tierstore.Lister    = (*Store)(nil)
	_ tierstore.Versioned = (*Store)(nil)
)

// New returns a Store. Redis need not be reachable; if it answers within
// a second, New checks that it runs Redis 7.0 or later and otherwise
// fails with an error wrapping tierstore.ErrRefused.
func New(cfg Config) (*Store, error) {
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	kv, err := rediskv.New(rediskv.Config{Redis: cfg.Redis, KeyPrefix: cfg.KeyPrefix, MaxValueBytes: cfg.MaxValueBytes, Op: "l2"})
	if err != nil {
		return nil, err
	}
	return &Store{kv: kv, maxValue: kv.MaxValueBytes()}, nil
}

// MaxValueBytes returns the largest value the Store accepts:
// Config.MaxValueBytes, or its default.
func (s *Store) MaxValueBytes() int { return s.maxValue }

// check refuses a call whose context is done or whose key is invalid.
// The rediskv client trusts its callers, so no method reaches it without
// passing here.
func check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return tierstore.CheckKey(key)
}

// checkSize refuses a value over the Store's limit.
func (s *Store) checkSize(value []byte) error {
	if len(value) > s.maxValue {
		return fmt.Errorf("l2: set: the value has %d bytes, over MaxValueBytes (%d): %w", len(value), s.maxValue, tierstore.ErrTooLarge)
	}
	return nil
}

// past reports whether expiry is set and not in the future: such a write
// is a delete.
func past(expiry time.Time) bool {
	return !expiry.IsZero() && !time.Now().Before(expiry)
}

// Get returns the value under key, or tierstore.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := check(ctx, key); err != nil {
		return nil, err
	}
	r, err := s.kv.Read(ctx, key, "")
	return r.Value, err
}

// Set stores value under key until expiry (zero: none). An expiry that is
// not in the future deletes the key.
func (s *Store) Set(ctx context.Context, key string, value []byte, expiry time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if past(expiry) {
		return s.Delete(ctx, key)
	}
	if err := tierstore.CheckKey(key); err != nil {
		return err
	}
	if err := s.checkSize(value); err != nil {
		return err
	}
	return s.kv.SetAndPublish(ctx, key, value, expiry, rediskv.Notice{}, nil)
}

// Delete removes key. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := check(ctx, key); err != nil {
		return err
	}
	_, err := s.kv.DeleteAndPublish(ctx, key, rediskv.Notice{}, nil)
	return err
}

// Touch changes the expiry of key without rewriting its value; it returns
// tierstore.ErrNotFound if the key is absent. An expiry that is not in
// the future deletes the key.
func (s *Store) Touch(ctx context.Context, key string, expiry time.Time) error {
	if err := check(ctx, key); err != nil {
		return err
	}
	_, err := s.kv.TouchAndPublish(ctx, key, expiry, rediskv.Notice{}, nil)
	return err
}

// Keys calls fn for each key under the prefix, without the prefix, using
// SCAN (on every master, for a Cluster client). fn is never called
// concurrently.
func (s *Store) Keys(ctx context.Context, fn func(key string) bool) error {
	return s.kv.Keys(ctx, fn)
}

// GetVersion returns the value under key with its version and expiry, in
// one round trip. atLeast is ignored: every read is Redis's current value.
// The expiry is never later than the real one.
func (s *Store) GetVersion(ctx context.Context, key string, atLeast tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	if err := check(ctx, key); err != nil {
		return nil, 0, time.Time{}, err
	}
	r, err := s.kv.Read(ctx, key, "")
	return r.Value, r.Version, r.Expiry, err
}

// SetIf stores value under key until expiry only if the key's version is
// want (tierstore.NoVersion: absent), in one script run atomically by
// Redis, and returns the new version; otherwise it returns an error
// wrapping tierstore.ErrConflict. An expiry that is not in the future
// deletes the key under the same condition (DeleteIf) and returns 0.
func (s *Store) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version) (tierstore.Version, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if past(expiry) {
		return 0, s.DeleteIf(ctx, key, want)
	}
	if err := tierstore.CheckKey(key); err != nil {
		return 0, err
	}
	if err := s.checkSize(value); err != nil {
		return 0, err
	}
	return s.kv.SetIf(ctx, key, value, expiry, want, rediskv.Notice{}, nil)
}

// DeleteIf removes key only if its version is want; otherwise it returns
// an error wrapping tierstore.ErrConflict.
func (s *Store) DeleteIf(ctx context.Context, key string, want tierstore.Version) error {
	if err := check(ctx, key); err != nil {
		return err
	}
	return s.kv.DeleteIf(ctx, key, want, rediskv.Notice{}, nil)
}
