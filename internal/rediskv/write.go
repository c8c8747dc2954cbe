package rediskv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tierstore/tierstore"
)

// Notice is a pub/sub message to publish in the same atomic Redis step as
// a write. The zero Notice publishes nothing.
type Notice struct {
	Channel string
	Payload []byte
}

// pxat is expiry as the scripts' and SET's PXAT argument, in Unix
// milliseconds ("0": none). past reports an expiry not after the current
// millisecond: Redis would hold the key as already expired, and a time
// before 1970 would even read as none or be refused, so a write that may
// be given one deletes instead (TouchAndPublish).
func pxat(expiry time.Time) (arg string, past bool) {
	if expiry.IsZero() {
		return "0", false
	}
	ms := expiry.UnixMilli()
	return strconv.FormatInt(ms, 10), ms <= time.Now().UnixMilli()
}

var framePool = sync.Pool{New: func() any { return new([]byte) }}

// SetAndPublish stores value under key until expiry (zero: none; else in
// the future, see Client) and publishes n in the same atomic step. done,
// if not nil, gets the outcome once Redis has answered (see Runner), also
// when SetAndPublish returned early because ctx ended. It is not called
// when ctx was already done on entry; a Runner may still call it with
// ctx's error for a write it never sent.
func (s *Client) SetAndPublish(ctx context.Context, key string, value []byte, expiry time.Time, n Notice, done func(error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	px, _ := pxat(expiry)
	buf := framePool.Get().(*[]byte)
	*buf = appendFrame((*buf)[:0], value)
	call := Call{setScript, []string{s.prefix + key}, []any{*buf, px, n.Channel, n.Payload}}
	if n.Channel == "" && !s.follow {
		// Nothing to publish: a plain SET, which, unlike a script's,
		// Redis attributes to the connection that sent it (see package
		// tracking on NOLOOP, in broadcast mode).
		call = Call{Args: []any{"set", s.prefix + key, *buf}}
		if px != "0" {
			call.Args = append(call.Args, "pxat", px)
		}
	}
	err := s.runner.Run(ctx, call, func(cmd *redis.Cmd) {
		if cap(*buf) <= 64<<10 { // do not pin huge buffers
			framePool.Put(buf)
		}
		if done != nil {
			done(cmd.Err())
		}
	}).Err()
	if err != nil {
		return s.WrapError(ctx, "set", key, err)
	}
	return nil
}

// DeleteAndPublish removes key and publishes n in the same atomic step. It
// reports whether the key existed. done is as for SetAndPublish.
func (s *Client) DeleteAndPublish(ctx context.Context, key string, n Notice, done func(error)) (existed bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	call := Call{delScript, []string{s.prefix + key}, []any{n.Channel, n.Payload}}
	if n.Channel == "" {
		call = Call{Args: []any{"del", s.prefix + key}}
	}
	deleted, err := s.runner.Run(ctx, call, outcome(done)).Int()
	if err != nil {
		return false, s.WrapError(ctx, "delete", key, err)
	}
	return deleted > 0, nil
}

// TouchAndPublish sets the expiry of key (zero: none) without rewriting its
// value, and publishes n in the same atomic step if the expiry moved
// earlier; it reports whether it did. An expiry that is not in the future
// deletes the key (and publishes): that is Touch's meaning, not a check of
// the caller's. It returns tierstore.ErrNotFound if the key is absent,
// whatever the expiry. done is as for SetAndPublish.
func (s *Client) TouchAndPublish(ctx context.Context, key string, expiry time.Time, n Notice, done func(error)) (published bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	px, past := pxat(expiry)
	if past {
		existed, err := s.DeleteAndPublish(ctx, key, n, done)
		if err == nil && !existed {
			return true, tierstore.ErrNotFound
		}
		return true, err
	}
	call := Call{touchScript, []string{s.prefix + key}, []any{px, n.Channel, n.Payload}}
	res, err := s.runner.Run(ctx, call, outcome(done)).Int()
	if err != nil {
		return false, s.WrapError(ctx, "touch", key, err)
	}
	if res == 0 {
		return false, tierstore.ErrNotFound
	}
	return res == 2, nil
}

// SetIf stores value under key until expiry (zero: none; else in the
// future, see Client) only if the key's version is want
// (tierstore.NoVersion: absent), and publishes n in the same atomic step;
// it returns the new version, or an error wrapping tierstore.ErrConflict
// and writes nothing. done is as for SetAndPublish, with the new version.
func (s *Client) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version, n Notice, done func(tierstore.Version, error)) (tierstore.Version, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	px, _ := pxat(expiry)
	frame := appendFrameV2(make([]byte, 0, frameHeaderV2+len(value)), value, 0)
	call := Call{setIfScript, []string{s.prefix + key}, []any{uint64(want), frame, px, n.Channel, n.Payload}}
	v, err := conditional(s.runner.Run(ctx, call, func(cmd *redis.Cmd) {
		if done != nil {
			done(conditional(cmd))
		}
	}))
	if err != nil {
		return 0, s.conditionalError(ctx, "set", key, err)
	}
	return v, nil
}

// DeleteIf removes key only if its version is want, and publishes n in
// the same atomic step; otherwise it returns an error wrapping
// tierstore.ErrConflict. want tierstore.NoVersion succeeds if the key is
// absent, deleting nothing. done is as for SetAndPublish.
func (s *Client) DeleteIf(ctx context.Context, key string, want tierstore.Version, n Notice, done func(error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	call := Call{delIfScript, []string{s.prefix + key}, []any{uint64(want), n.Channel, n.Payload}}
	_, err := conditional(s.runner.Run(ctx, call, func(cmd *redis.Cmd) {
		if done != nil {
			_, err := conditional(cmd)
			done(err)
		}
	}))
	if err != nil {
		return s.conditionalError(ctx, "delete", key, err)
	}
	return nil
}

// conditional reads a conditional script's reply: the new version (1
// from delIfScript), or a conflict (0) as tierstore.ErrConflict.
func conditional(cmd *redis.Cmd) (tierstore.Version, error) {
	v, err := cmd.Int64()
	switch {
	case err != nil:
		return 0, err
	case v == 0:
		return 0, tierstore.ErrConflict
	}
	return tierstore.Version(v), nil
}

// conditionalError names the key of a conditional write's error: a
// conflict as it is, any other through WrapError.
func (s *Client) conditionalError(ctx context.Context, op, key string, err error) error {
	if errors.Is(err, tierstore.ErrConflict) {
		return fmt.Errorf("%s: %s %s: %w", s.op, op, s.name(key), err)
	}
	return s.WrapError(ctx, op, key, err)
}
