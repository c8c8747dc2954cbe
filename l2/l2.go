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
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/rediskv"
)

// DefaultKeyPrefix is the key prefix used when Config.KeyPrefix is empty.
const DefaultKeyPrefix = rediskv.DefaultKeyPrefix

// Config configures a Store. Zero fields take the documented defaults.
type Config struct {
	// Redis is the client; required. The Store never closes it. Set
	// ContextTimeoutEnabled in its options so that go-redis honours your
	// contexts' deadlines on the socket.
	Redis redis.UniversalClient
	// KeyPrefix is prepended to every key in Redis. Default
	// DefaultKeyPrefix ("tierstore:").
	KeyPrefix string
	// MaxValueBytes is the largest value Set accepts. Default
	// tierstore.DefaultMaxValueBytes (1 MiB).
	MaxValueBytes int
}

// Store is the Redis-only tierstore.Store. It is safe for concurrent use.
type Store struct {
	kv *rediskv.Client
}

var (
	_ tierstore.Store        = (*Store)(nil)
	_ tierstore.Toucher      = (*Store)(nil)
	_ tierstore.Viewer       = (*Store)(nil)
	_ tierstore.ExpiryReader = (*Store)(nil)
	_ tierstore.Lister       = (*Store)(nil)
	_ tierstore.Versioned    = (*Store)(nil)
)

// New returns a Store. Redis need not be reachable; if it answers within
// a second, New checks that it runs Redis 7.0 or later and otherwise
// fails with an error wrapping tierstore.ErrRefused.
func New(cfg Config) (*Store, error) {
	kv, err := rediskv.New(rediskv.Config{Redis: cfg.Redis, KeyPrefix: cfg.KeyPrefix, MaxValueBytes: cfg.MaxValueBytes, Op: "l2"})
	if err != nil {
		return nil, err
	}
	return &Store{kv: kv}, nil
}

// KeyPrefix returns the prefix of the Store's keys in Redis.
func (s *Store) KeyPrefix() string { return s.kv.KeyPrefix() }

// MaxValueBytes returns the largest value the Store accepts.
func (s *Store) MaxValueBytes() int { return s.kv.MaxValueBytes() }

// Get returns the value under key, or tierstore.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.kv.GetWithExpiry(ctx, key)
	return v, err
}

// GetWithExpiry returns the value under key and when it expires (zero: no
// expiry) in one round trip. The expiry is never later than the real one.
func (s *Store) GetWithExpiry(ctx context.Context, key string) ([]byte, time.Time, error) {
	return s.kv.GetWithExpiry(ctx, key)
}

// View calls fn with the value under key. The value comes from Redis on
// every call, so View costs what Get costs; it exists so that Store offers
// the same capabilities as the other stores.
func (s *Store) View(ctx context.Context, key string, fn func([]byte) error) error {
	v, _, err := s.kv.GetWithExpiry(ctx, key)
	if err != nil {
		return err
	}
	return fn(v)
}

// Set stores value under key until expiry (zero: none). An expiry that is
// not in the future deletes the key.
func (s *Store) Set(ctx context.Context, key string, value []byte, expiry time.Time) error {
	return s.kv.SetAndPublish(ctx, key, value, expiry, rediskv.Notice{}, nil)
}

// Delete removes key. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.kv.DeleteAndPublish(ctx, key, rediskv.Notice{}, nil)
	return err
}

// Touch changes the expiry of key without rewriting its value; it returns
// tierstore.ErrNotFound if the key is absent.
func (s *Store) Touch(ctx context.Context, key string, expiry time.Time) error {
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
func (s *Store) GetVersion(ctx context.Context, key string, atLeast tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	r, err := s.kv.Read(ctx, key, "")
	return r.Value, r.Version, r.Expiry, err
}

// SetIf stores value under key until expiry only if the key's version is
// want (tierstore.NoVersion: absent), in one script run atomically by
// Redis, and returns the new version; otherwise it returns an error
// wrapping tierstore.ErrConflict.
func (s *Store) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version) (tierstore.Version, error) {
	return s.kv.SetIf(ctx, key, value, expiry, want, rediskv.Notice{}, nil)
}

// DeleteIf removes key only if its version is want; otherwise it returns
// an error wrapping tierstore.ErrConflict.
func (s *Store) DeleteIf(ctx context.Context, key string, want tierstore.Version) error {
	return s.kv.DeleteIf(ctx, key, want, rediskv.Notice{}, nil)
}
