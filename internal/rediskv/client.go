package rediskv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tierstore/tierstore"
)

// DefaultKeyPrefix is the key prefix used when Config.KeyPrefix is empty.
const DefaultKeyPrefix = "tierstore:"

// Config configures a Client. Zero fields take the documented defaults.
type Config struct {
	Redis     redis.UniversalClient // required; never closed here
	KeyPrefix string                // default DefaultKeyPrefix
	// MaxValueBytes is what Client.MaxValueBytes reports, for the
	// callers' check (see Client); default tierstore.DefaultMaxValueBytes.
	MaxValueBytes int
	// Op names the caller in errors ("l2", "tiered").
	Op string
	// Runner runs the writes. Default: each on Redis's pool.
	Runner Runner
	// Reader, if set, runs the reads (see ReadAsync); default: each on
	// Redis's pool. Not the writes' Runner: a write held by a write
	// pause must not hold up the reads behind it.
	Reader Runner
	// Follow makes every write that stores a value a script that reads
	// its key after writing it (see the scripts), so that a Runner with
	// per-key tracking goes on following what it wrote; otherwise a
	// write with nothing to publish is a plain SET.
	Follow bool
}

// Client reads and writes tierstore values in Redis.
//
// A Client trusts its callers' arguments: each public store checks them
// once, at its own entry point, and a Client does not check them again.
// A caller passes only keys that tierstore.CheckKey accepts, values no
// longer than MaxValueBytes, and, to SetAndPublish and SetIf, an expiry
// that is zero or in the future (a past one is the caller's delete).
// What a Client still refuses itself is a context already done.
type Client struct {
	rdb      redis.UniversalClient
	runner   Runner
	reader   Runner // nil: reads on the pool
	prefix   string
	maxValue int
	op       string
	follow   bool
}

// serverCheckTimeout bounds the version check in New: Redis need not be
// up when a store is created, and New must not stall a service's start.
const serverCheckTimeout = time.Second

// New returns a Client. If Redis answers within a second, it checks that
// the server is recent enough (CheckServer).
func New(cfg Config) (*Client, error) {
	if cfg.Op == "" {
		cfg.Op = "rediskv"
	}
	if cfg.Redis == nil {
		return nil, errors.New(cfg.Op + ": Config.Redis is nil")
	}
	if cfg.MaxValueBytes < 0 {
		return nil, errors.New(cfg.Op + ": negative MaxValueBytes")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.MaxValueBytes == 0 {
		cfg.MaxValueBytes = tierstore.DefaultMaxValueBytes
	}
	ctx, cancel := context.WithTimeout(context.Background(), serverCheckTimeout)
	defer cancel()
	if err := CheckServer(ctx, cfg.Redis); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Op, err)
	}
	if cfg.Runner == nil {
		cfg.Runner = poolRunner{cfg.Redis}
	}
	return &Client{rdb: cfg.Redis, runner: cfg.Runner, reader: cfg.Reader, prefix: cfg.KeyPrefix, maxValue: cfg.MaxValueBytes, op: cfg.Op, follow: cfg.Follow}, nil
}

// MaxValueBytes returns the largest value the callers let through:
// Config.MaxValueBytes, or its default.
func (s *Client) MaxValueBytes() int { return s.maxValue }

// EpochKey returns the name of the key that identifies the dataset under
// prefix (see package tracking): not a valid tierstore key, so that no
// Store can read or write it, and Keys skips it.
func EpochKey(prefix string) string { return prefix + "\x00epoch" }
