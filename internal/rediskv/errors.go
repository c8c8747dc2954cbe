package rediskv

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tierstore/tierstore"
)

// name identifies a key in errors and logs without revealing it: the prefix
// and a short hash of the key, enough to correlate reports.
func (s *Client) name(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	return fmt.Sprintf("%skey#%08x", s.prefix, h.Sum32())
}

// Named is how this client names op on key in errors ("tiered: get
// tierstore:key#1a2b3c4d").
func (s *Client) Named(op, key string) string { return s.op + ": " + op + " " + s.name(key) }

// WrapError is Wrap for op on key, named as this client names it.
func (s *Client) WrapError(ctx context.Context, op, key string, err error) error {
	return Wrap(ctx, s.Named(op, key), err)
}

// deadlineError is the error of a call whose context deadline passed
// while it waited for Redis: tierstore.ErrUnavailable and
// context.DeadlineExceeded, with cause (which may be nil) in the text.
func deadlineError(what string, cause error) error {
	if cause == nil || errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", what, tierstore.ErrUnavailable, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: %w: %w (%v)", what, tierstore.ErrUnavailable, context.DeadlineExceeded, cause)
}

// Wrap turns a go-redis error into tierstore's: what is prefixes the
// message ("l2: get tierstore:key#1a2b3c4d").
//
//   - redis.Nil is tierstore.ErrNotFound, unwrapped;
//   - a cancelled context is context.Canceled: the caller went away;
//   - an expired context deadline is tierstore.ErrUnavailable and
//     context.DeadlineExceeded: Redis did not answer in time;
//   - an error reply is ErrCorrupt (WRONGTYPE), ErrUnavailable (a server
//     that cannot serve for now) or ErrRefused (anything else: a
//     misconfiguration a retry will not fix; credentials refused say
//     "auth");
//   - anything else (the network, the pool) is ErrUnavailable.
func Wrap(ctx context.Context, what string, err error) error {
	if errors.Is(err, redis.Nil) {
		return tierstore.ErrNotFound
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s: %w", what, context.Canceled)
	}
	// With ContextTimeoutEnabled the socket's deadline is the context's,
	// so the read can time out an instant before ctx.Err() reports it:
	// a passed deadline is the cause whichever fired first.
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return deadlineError(what, err)
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		code, _, _ := strings.Cut(reply.Error(), " ")
		switch code {
		case "WRONGTYPE":
			return fmt.Errorf("%s: %w: %w", what, tierstore.ErrCorrupt, err)
		case "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY", "BUSY", "MOVED", "ASK", "NOREPLICAS":
			return fmt.Errorf("%s: %w: %w", what, tierstore.ErrUnavailable, err)
		case "NOAUTH", "WRONGPASS":
			return fmt.Errorf("%s: auth: %w: %w", what, tierstore.ErrRefused, err)
		default:
			return fmt.Errorf("%s: %w: %w", what, tierstore.ErrRefused, err)
		}
	}
	return fmt.Errorf("%s: %w: %w", what, tierstore.ErrUnavailable, err)
}
