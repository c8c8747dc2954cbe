package rediskv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
)

// MinRedisVersion is the oldest Redis tierstore works with: the touch
// script uses PEXPIRETIME (7.0).
const MinRedisVersion = "7.0.0"

// CheckServer reports an error wrapping tierstore.ErrRefused if a Redis
// server behind rdb (every master of a Cluster) is older than
// MinRedisVersion. It returns nil when it cannot tell: Redis unreachable
// (it need not be up when a store is created) or INFO denied by an ACL
// (the scripts then fail on first use with ErrRefused naming the
// command).
func CheckServer(ctx context.Context, rdb redis.UniversalClient) error {
	check := func(ctx context.Context, c redis.Cmdable) error {
		info, err := c.Info(ctx, "server").Result()
		if err != nil {
			return err
		}
		return checkVersion(info)
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return check(ctx, c) })
	} else {
		err = check(ctx, rdb)
	}
	if errors.Is(err, tierstore.ErrRefused) {
		return err
	}
	return nil
}

// checkVersion checks the redis_version of an INFO reply.
func checkVersion(info string) error {
	version := infoField(info, "redis_version")
	if version != "" && !versionAtLeast(version, MinRedisVersion) {
		return fmt.Errorf("tierstore needs Redis %s or later, the server runs %s: %w", MinRedisVersion, version, tierstore.ErrRefused)
	}
	return nil
}

// infoField returns the value of field in an INFO reply, or "".
func infoField(info, field string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// versionAtLeast compares dotted numeric versions; a part that is not a
// number counts as 0.
func versionAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := range max(len(h), len(w)) {
		var hv, wv int
		if i < len(h) {
			hv, _ = strconv.Atoi(h[i])
		}
		if i < len(w) {
			wv, _ = strconv.Atoi(w[i])
		}
		if hv != wv {
			return hv > wv
		}
	}
	return true
}

// Probe runs, on a key under prefix that no Store can hold, the commands
// a store's reads and writes need (with scripts: the read script too),
// and returns an error wrapping tierstore.ErrRefused naming the first
// that Redis refuses (an ACL, a renamed command, credentials). Any other
// failure (Redis unreachable) is returned as Wrap makes it.
func Probe(ctx context.Context, rdb redis.UniversalClient, prefix string, scripts bool) error {
	key := prefix + "\x00probe"
	type probeCmd struct {
		what string
		run  func() error
	}
	cmds := []probeCmd{
		{"GET", func() error { return rdb.Get(ctx, key).Err() }},
		{"PTTL", func() error { return rdb.PTTL(ctx, key).Err() }},
		{"DEL", func() error { return rdb.Del(ctx, key).Err() }},
	}
	if scripts {
		cmds = append(cmds, probeCmd{"the read script (EVALSHA, EVAL)", func() error { return readScript.Run(ctx, rdb, []string{key}).Err() }})
	}
	for _, c := range cmds {
		if err := c.run(); err != nil && !errors.Is(err, redis.Nil) {
			return Wrap(ctx, "probe: "+c.what+" on "+prefix+"*", err)
		}
	}
	return nil
}
