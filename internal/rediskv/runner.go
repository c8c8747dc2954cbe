package rediskv

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Call is one write: a script with its keys and arguments, or, when
// Script is nil, the command in Args.
type Call struct {
	Script *redis.Script
	Keys   []string
	Args   []any
}

// Key returns the key c writes, with the prefix: for routing in a Cluster.
func (c Call) Key() string {
	if c.Script == nil {
		key, _ := c.Args[1].(string)
		return key
	}
	return c.Keys[0]
}

// Run runs c on rdb (one round trip, or two for a script Redis has not
// cached yet).
func (c Call) Run(ctx context.Context, rdb redis.UniversalClient) *redis.Cmd {
	if c.Script == nil {
		return rdb.Do(ctx, c.Args...)
	}
	return c.Script.Run(ctx, rdb, c.Keys, c.Args...)
}

// Runner runs a Client's writes.
//
// Run sends call and returns its reply, or a Cmd failed with ctx's error
// if ctx ends first. Either way it calls done with the reply exactly once,
// when Redis has answered or the attempt has failed for good, even if ctx
// ended before (done may then run on another goroutine): done is where a
// caller learns the outcome that a cancelled caller no longer waits for.
type Runner interface {
	Run(ctx context.Context, call Call, done func(*redis.Cmd)) *redis.Cmd
}

// poolRunner runs each call on its own pooled connection.
type poolRunner struct{ rdb redis.UniversalClient }

func (p poolRunner) Run(ctx context.Context, call Call, done func(*redis.Cmd)) *redis.Cmd {
	cmd := call.Run(ctx, p.rdb)
	done(cmd)
	return cmd
}

// outcome adapts done (which may be nil) to a Runner's callback.
func outcome(done func(error)) func(*redis.Cmd) {
	return func(cmd *redis.Cmd) {
		if done != nil {
			done(cmd.Err())
		}
	}
}
