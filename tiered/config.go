package tiered

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/bus"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/invalidation"
)

// Defaults for zero Config fields.
const (
	DefaultL1TTL                = time.Minute
	DefaultL1MaxBytes           = 64 << 20 // 64 MiB
	DefaultHealthCheckInterval  = time.Second
	DefaultAccessReportInterval = time.Second
)

// Config configures a Store. Zero fields take the documented defaults.
type Config struct {
	// Redis is the client, required: *redis.Client, a Sentinel failover
	// client or *redis.ClusterClient (reading from masters). The Store
	// never closes it. It makes connections of its own from the client's
	// options (address, credentials, database, TLS, timeouts, OnConnect),
	// which hooks added with AddHook do not see; with invalidation.OwnWrites
	// it reads and writes through the client itself (see
	// docs/architecture.md).
	Redis redis.UniversalClient
	// KeyPrefix is prepended to every key in Redis. Default "tierstore:".
	// Instances share data (and invalidations) only if they share it.
	KeyPrefix string
	// Channel is the pub/sub channel of the invalidations that stores
	// publish with invalidation.OwnWrites (unused otherwise: Redis reports the
	// changes itself). Default "tierstore:invalidate:" + KeyPrefix.
	Channel string
	// L1TTL is the longest an entry stays in memory, whatever its expiry.
	// Default DefaultL1TTL (1m).
	L1TTL time.Duration
	// L1MaxBytes bounds the live memory held by the L1 cache's entries
	// (key + value + a fixed overhead per entry). RSS is larger by
	// the garbage collector's headroom: see docs/operations.md on
	// GOMEMLIMIT. Default DefaultL1MaxBytes (64 MiB).
	L1MaxBytes int64
	// MaxValueBytes is the largest value Set accepts. Default
	// tierstore.DefaultMaxValueBytes (1 MiB).
	MaxValueBytes int
	// HealthCheckInterval bounds staleness when invalidations may have been
	// lost: L1 serves only while a heartbeat made within this interval
	// has come back on the subscription, proving that every change made
	// before it has been reported (see docs/consistency.md). Heartbeats
	// go out four times per interval. Default DefaultHealthCheckInterval
	// (1s); at least 4ms.
	HealthCheckInterval time.Duration
	// AccessReportInterval is how often, at most, a key served from L1 is
	// reported to Redis as used (a batched TOUCH), so that an LRU or LFU
	// maxmemory-policy does not take the keys read most, which L1 keeps
	// from reaching Redis, for the idlest. Nothing is sent while the
	// policy is another one (noeviction, the default, or random or TTL
	// eviction). Redis's LRU clock counts whole seconds, which is why the
	// default is DefaultAccessReportInterval (1s). Negative: never report.
	AccessReportInterval time.Duration
	// Invalidation is how changes reach this instance: invalidation.PerKey
	// (the default), invalidation.Broadcast or invalidation.OwnWrites. In
	// the first two every change to a key under KeyPrefix reaches every
	// instance that holds it, whoever makes it (another program, an
	// operator's DEL, expiry, eviction, FLUSHDB, a resync): Redis reports
	// them (CLIENT TRACKING; PerKey only to the instances that read the
	// key, Broadcast to all; see docs/consistency.md). With OwnWrites,
	// only writes through tiered stores publish invalidations: a change
	// made any other way, including through l2.Store, is seen by an
	// instance holding the key only when its L1 entry ends (L1TTL). Use
	// it for a Redis that refuses CLIENT TRACKING (some managed services;
	// New then fails with tierstore.ErrRefused) or has no tracking
	// (miniredis).
	Invalidation invalidation.Mode
	// Logger, if set, records the store's state changes: Live gained and
	// lost (with the cause), gaps and why, re-registrations, refused
	// permissions, replaced subscriptions. At most one record per kind
	// of change per second (the next says how many were left out), never
	// one on the hit path, never a key (keys appear as the prefix and a
	// hash), a session ID or a value. Default nil: silent.
	Logger *slog.Logger
	// FailSafe, if positive, lets a read be served from memory while Redis
	// is unreachable (its read fails with tierstore.ErrUnavailable, never
	// tierstore.ErrRefused), for at most FailSafe after the store lost its
	// proof (Live became false), if the key's copy was in L1 and coherent
	// at that moment and nothing has invalidated it since: a report of a
	// change that still arrived, a write or delete of the key on this
	// instance (a delete, or a session's Destroy, that fails leaves a
	// tombstone here), a flush or another dataset reported. A value so
	// served is at most FailSafe + HealthCheckInterval older than Redis's
	// (see docs/consistency.md); it never outlives its own expiry or
	// L1TTL. Writes still fail, and nothing is kept only in memory.
	// Default 0: off, a read fails while Redis is unreachable. See
	// docs/operations.md on choosing it.
	FailSafe time.Duration
	// OnInvalidate, if set, is called after a report of a change of key
	// (a peer's, or in per-key mode this instance's own write reported
	// back) has been applied to L1: for tracing and metrics. It runs on the
	// subscription's goroutine, in message order, so it must be quick: a
	// slow OnInvalidate delays every later invalidation (and, past Redis's
	// output-buffer limit for pub/sub clients, gets the subscription cut,
	// which flushes L1). It must not call Close, which waits for that
	// goroutine to end.
	OnInvalidate func(key string)
}

// resolved returns cfg with its defaults filled in, and the key prefix,
// or why cfg is invalid.
func (cfg Config) resolved() (Config, error) {
	if cfg.Redis == nil {
		return cfg, errors.New("tiered: Config.Redis is nil")
	}
	if cfg.L1TTL < 0 {
		return cfg, errors.New("tiered: negative L1TTL")
	}
	if cfg.L1MaxBytes < 0 || cfg.MaxValueBytes < 0 {
		return cfg, errors.New("tiered: negative L1MaxBytes or MaxValueBytes")
	}
	// Checked here as well as by each bus: a Cluster's buses start later,
	// one per master, where an error could only be retried.
	if d := cfg.HealthCheckInterval; d < 0 || (d > 0 && d < bus.MinHealthCheckInterval) {
		return cfg, fmt.Errorf("tiered: HealthCheckInterval %v: want 0 (the default) or at least %v", d, bus.MinHealthCheckInterval)
	}
	if cfg.FailSafe < 0 {
		return cfg, errors.New("tiered: negative FailSafe")
	}
	if cfg.Invalidation < invalidation.PerKey || cfg.Invalidation > invalidation.OwnWrites {
		return cfg, fmt.Errorf("tiered: unknown Invalidation %v", cfg.Invalidation)
	}
	if cfg.L1TTL == 0 {
		cfg.L1TTL = DefaultL1TTL
	}
	if cfg.HealthCheckInterval == 0 {
		cfg.HealthCheckInterval = DefaultHealthCheckInterval
	}
	if cfg.L1MaxBytes == 0 {
		cfg.L1MaxBytes = DefaultL1MaxBytes
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = rediskv.DefaultKeyPrefix
	}
	if cfg.Channel == "" {
		cfg.Channel = "tierstore:invalidate:" + cfg.KeyPrefix
	}
	if cfg.AccessReportInterval == 0 {
		cfg.AccessReportInterval = DefaultAccessReportInterval
	}
	if cfg.MaxValueBytes == 0 {
		cfg.MaxValueBytes = tierstore.DefaultMaxValueBytes
	}
	return cfg, nil
}
