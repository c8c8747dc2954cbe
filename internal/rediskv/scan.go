package rediskv

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/tierstore/tierstore"
)

// Keys calls fn for each key under the prefix, without the prefix, using
// SCAN (on every master, for a Cluster client). fn is never called
// concurrently. Names under the prefix that are no valid tierstore key
// (EpochKey, or one no Store could have written) are skipped.
func (s *Client) Keys(ctx context.Context, fn func(key string) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var mu sync.Mutex
	stopped := false
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, globEscape(s.prefix)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			key := strings.TrimPrefix(iter.Val(), s.prefix)
			if tierstore.CheckKey(key) != nil {
				continue
			}
			mu.Lock()
			if !stopped && !fn(key) {
				stopped = true
			}
			done := stopped
			mu.Unlock()
			if done {
				return nil
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.rdb)
	}
	if err != nil {
		return s.WrapError(ctx, "keys", "", err)
	}
	return nil
}

// globEscape escapes the characters SCAN MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
