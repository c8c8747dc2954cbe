package rediskv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tierstore/tierstore"
)

// Item is a value read from Redis with what came with it.
type Item struct {
	Value   []byte
	Version tierstore.Version
	Expiry  time.Time // zero: none
	Epoch   string    // the epoch key's value ("" if absent or not read)
}

// Read returns the value under key with its version and expiry in one
// round trip and, if epochKey is not "", the value of the key epochKey in
// the same round trip: which dataset the value came from (see package
// tracking). The expiry is measured from before the request was sent,
// less PTTL's rounding, so it is never later than the real one. With a
// Config.Reader, the read travels on the Reader's connection, as one
// script call (see ReadAsync).
func (s *Client) Read(ctx context.Context, key, epochKey string) (Item, error) {
	return s.ReadAsync(ctx, key, epochKey, nil)
}

// ReadAsync is Read on the Config.Reader's connection, where it joins the
// other reads' batches: no pooled connection, no round trip of its own. It
// returns when Redis has answered or ctx has ended; done, if not nil, is
// called exactly once with the outcome, when Redis has answered, also if
// ctx ended first (see Runner), possibly on the Runner's goroutine: it
// must not block. A read refused before it was sent (ctx already done) is
// an outcome too. Without a Reader it reads on a pooled connection: with
// a done, on a goroutine of its own, without ctx's cancellation (keeping
// its deadline, or detachedRead if it has none), so that done hears
// Redis's answer as it does from a Reader; without one, before it returns.
func (s *Client) ReadAsync(ctx context.Context, key, epochKey string, done func(Item, error)) (Item, error) {
	return s.ReadOn(ctx, s.reader, key, epochKey, done)
}

// ReadOn is ReadAsync on reader's connection instead of the Config.Reader's
// (nil: on a pooled connection).
func (s *Client) ReadOn(ctx context.Context, reader Runner, key, epochKey string, done func(Item, error)) (Item, error) {
	if err := ctx.Err(); err != nil || reader == nil {
		if err != nil || done == nil {
			var r Item
			if err == nil {
				r, err = s.readPipelined(ctx, key, epochKey)
			}
			if done != nil {
				done(r, err)
			}
			return r, err
		}
		return s.readDetached(ctx, key, epochKey, done)
	}
	start := time.Now()
	keys := []string{s.prefix + key}
	if epochKey != "" {
		keys = append(keys, epochKey)
	}
	parse := func(ctx context.Context, cmd *redis.Cmd) (Item, error) {
		reply, err := cmd.Slice()
		if err != nil {
			return Item{}, s.WrapError(ctx, "get", key, err)
		}
		if len(reply) != 3 {
			return Item{}, fmt.Errorf("%s: get %s: %d fields in the read script's reply: %w", s.op, s.name(key), len(reply), tierstore.ErrRefused)
		}
		if reply[0] == nil {
			return Item{}, tierstore.ErrNotFound
		}
		framed, _ := reply[0].(string)
		pttl, _ := reply[1].(int64)
		epoch, _ := reply[2].(string)
		return s.item(key, []byte(framed), pttl, epoch, start)
	}
	cmd := reader.Run(ctx, Call{Script: readScript, Keys: keys}, func(cmd *redis.Cmd) {
		if done != nil {
			// The caller may have left: the outcome is Redis's, not ctx's.
			done(parse(context.Background(), cmd))
		}
	})
	return parse(ctx, cmd)
}

// detachedRead bounds a pooled read that ReadAsync detached from a
// context without a deadline.
const detachedRead = 10 * time.Second

// readDetached is ReadAsync on a pooled connection, with a done.
func (s *Client) readDetached(ctx context.Context, key, epochKey string, done func(Item, error)) (Item, error) {
	type result struct {
		r   Item
		err error
	}
	out := make(chan result, 1)
	go func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachedRead)
		if deadline, ok := ctx.Deadline(); ok {
			cancel()
			rctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), deadline)
		}
		defer cancel()
		r, err := s.readPipelined(rctx, key, epochKey)
		done(r, err)
		out <- result{r, err}
	}()
	select {
	case res := <-out:
		return res.r, res.err
	case <-ctx.Done():
		return Item{}, s.WrapError(ctx, "get", key, ctx.Err())
	}
}

// readPipelined is Read on a pooled connection: GET and PTTL (and GET of
// epochKey) pipelined.
func (s *Client) readPipelined(ctx context.Context, key, epochKey string) (Item, error) {
	start := time.Now()
	var get, epoch *redis.StringCmd
	var ttl *redis.Cmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, s.prefix+key)
		ttl = p.Do(ctx, "pttl", s.prefix+key)
		if epochKey != "" {
			epoch = p.Get(ctx, epochKey)
		}
		return nil
	})
	if err := get.Err(); err != nil {
		return Item{}, s.WrapError(ctx, "get", key, err)
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return Item{}, s.WrapError(ctx, "get", key, err)
	}
	framed, _ := get.Bytes()
	pttl, _ := ttl.Int64()
	var e string
	if epoch != nil {
		e = epoch.Val()
	}
	return s.item(key, framed, pttl, e, start)
}

// item builds what Read returns from the framed value, its PTTL as Redis
// replies it (milliseconds; -1: no expiry, -2: gone) and the epoch, read
// at start.
func (s *Client) item(key string, framed []byte, pttl int64, epoch string, start time.Time) (Item, error) {
	value, version, ok := unframe(framed)
	if !ok {
		return Item{}, fmt.Errorf("%s: get %s: %w", s.op, s.name(key), tierstore.ErrCorrupt)
	}
	var expiry time.Time
	switch {
	case pttl == -1: // no expiry
	case pttl < 0: // expired between GET and PTTL: valid now, cache nothing
		expiry = start
	default:
		// PTTL is whole milliseconds from the server's millisecond clock,
		// so it can exceed the true remainder by up to 1ms.
		expiry = start.Add(time.Duration(pttl-1) * time.Millisecond)
	}
	return Item{Value: value, Version: version, Expiry: expiry, Epoch: epoch}, nil
}
