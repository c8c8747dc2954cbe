package main

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/tierstore/tierstore"
)

// rueidisCache is the strongest peer, rueidis with server-assisted
// client-side caching, as a tierstore.Store for the mixed workload: Get is
// DoCache (served from rueidis's local cache until Redis invalidates the
// key; its bytes, not a copy), Set and Delete plain commands.
type rueidisCache struct {
	c   rueidis.Client
	ttl time.Duration
}

// newRueidis connects a rueidis client to the Redis of opts (address,
// credentials, database, TLS).
func newRueidis(opts *redis.Options, ttl time.Duration) (rueidisCache, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{opts.Addr}, Username: opts.Username, Password: opts.Password,
		SelectDB: opts.DB, TLSConfig: opts.TLSConfig, DisableRetry: true,
	})
	return rueidisCache{c: c, ttl: ttl}, err
}

func (r rueidisCache) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := r.c.DoCache(ctx, r.c.B().Get().Key(key).Cache(), r.ttl).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, tierstore.ErrNotFound
	}
	return v, err
}

func (r rueidisCache) Set(ctx context.Context, key string, v []byte, expiry time.Time) error {
	return r.c.Do(ctx, r.c.B().Set().Key(key).Value(rueidis.BinaryString(v)).Pxat(expiry).Build()).Error()
}

func (r rueidisCache) Delete(ctx context.Context, key string) error {
	return r.c.Do(ctx, r.c.B().Del().Key(key).Build()).Error()
}
