package tiered

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/nearcache"
	"github.com/tierstore/tierstore/internal/rediskv"
)

// Set stores value under key until expiry (zero: no expiry) in Redis and
// publishes the invalidation in the same atomic step; then caches it. An
// expiry that is not in the future deletes the key.
func (s *Store) Set(ctx context.Context, key string, value []byte, expiry time.Time) error {
	if past(expiry) {
		return s.Delete(ctx, key)
	}
	if err := s.checkWrite(ctx, key, value); err != nil {
		return err
	}
	st := s.l1.BeginWrite(key)
	probe, err := s.admit("set", key, st)
	if err != nil {
		return err
	}
	cached := bytes.Clone(value)
	end := s.trace(ctx, "set")
	// The outcome is applied to L1 when Redis answers, also if ctx ends
	// first: a write that left is not a write whose result is unknown.
	err = s.l2.SetAndPublish(ctx, key, value, expiry, s.src.notice(key), func(err error) {
		s.brk.done(ctx, probe, err)
		if err != nil {
			s.failed(key, st, err)
			return
		}
		s.wrote(key)
		s.endWrite(key, st, cached, nearcache.Meta{Expiry: expiry, Own: true})
	})
	endTrace(end, err)
	return err
}

// Delete removes key from Redis and from every instance's L1.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.checkWrite(ctx, key, nil); err != nil {
		return err
	}
	st := s.l1.BeginWrite(key)
	probe, err := s.admit("delete", key, st)
	if err != nil {
		return err
	}
	end := s.trace(ctx, "delete")
	_, err = s.l2.DeleteAndPublish(ctx, key, s.src.notice(key), func(err error) {
		s.brk.done(ctx, probe, err)
		if err != nil {
			s.failed(key, st, err)
			return
		}
		s.wrote(key)
		s.l1.EndWrite(key, st, nil, nearcache.Meta{})
	})
	endTrace(end, err)
	return err
}

// SetIf stores value under key until expiry, as Set does, only if the
// key's version in Redis is want (tierstore.NoVersion: absent), checked
// and written by one script that Redis runs atomically; it returns the new
// version, or an error wrapping tierstore.ErrConflict. A conflict also
// drops this instance's copy of key, so that the caller's next read, to
// merge or retry, comes from Redis.
func (s *Store) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version) (tierstore.Version, error) {
	if past(expiry) {
		return 0, s.DeleteIf(ctx, key, want)
	}
	if err := s.checkWrite(ctx, key, value); err != nil {
		return 0, err
	}
	st := s.l1.BeginWrite(key)
	probe, err := s.admit("setif", key, st)
	if err != nil {
		return 0, err
	}
	cached := bytes.Clone(value)
	end := s.trace(ctx, "set_if")
	v, err := s.l2.SetIf(ctx, key, value, expiry, want, s.src.notice(key), func(v tierstore.Version, err error) {
		s.brk.done(ctx, probe, err)
		if s.endConditional(key, st, err) {
			s.endWrite(key, st, cached, nearcache.Meta{Expiry: expiry, Version: v, Own: true})
		}
	})
	endTrace(end, err)
	return v, err
}

// DeleteIf removes key from Redis and from every instance's L1 only if
// its version in Redis is want; otherwise it returns an error wrapping
// tierstore.ErrConflict and drops this instance's copy, as SetIf does.
func (s *Store) DeleteIf(ctx context.Context, key string, want tierstore.Version) error {
	if err := s.checkWrite(ctx, key, nil); err != nil {
		return err
	}
	st := s.l1.BeginWrite(key)
	probe, err := s.admit("deleteif", key, st)
	if err != nil {
		return err
	}
	end := s.trace(ctx, "delete_if")
	err = s.l2.DeleteIf(ctx, key, want, s.src.notice(key), func(err error) {
		s.brk.done(ctx, probe, err)
		if s.endConditional(key, st, err) {
			s.l1.EndWrite(key, st, nil, nearcache.Meta{})
		}
	})
	endTrace(end, err)
	return err
}

// Touch changes the expiry of key without rewriting its value. A zero
// expiry removes the expiry; one that is not in the future deletes the
// key. Where Redis reports changes, it reports this one to every
// instance, and this one reads the key again on its next use. With
// invalidation.OwnWrites, moving the expiry later publishes nothing (other
// instances' cached copies just expire at the old time), moving it
// earlier invalidates them, and this instance keeps its copy.
func (s *Store) Touch(ctx context.Context, key string, expiry time.Time) error {
	if err := s.checkWrite(ctx, key, nil); err != nil {
		return err
	}
	probe, err := s.admit("touch", key, s.l1.BeginWrite(key))
	if err != nil {
		return err
	}
	end := s.trace(ctx, "touch")
	err = s.src.touch(ctx, s, key, expiry)
	s.brk.done(ctx, probe, err)
	endTrace(end, err)
	return err
}

// admit asks the breaker whether a write of key, begun with st, may go to
// Redis. One that may not fails at once, and drops the key's copy here as
// a failed write does: a tombstone, which the fail-safe never serves
// past (a delete or a session's Destroy that fails must not leave the
// session readable here).
func (s *Store) admit(op, key string, st nearcache.Stamp) (probe bool, err error) {
	probe, err = s.brk.allow()
	if err != nil {
		err = fmt.Errorf("%s: %w", s.l2.Named(op, key), err)
		s.countError(err)
		s.l1.EndWrite(key, st, nil, nearcache.Meta{})
		return false, err
	}
	return probe, nil
}

// checkWrite is the one validation of a write's input: a live context, an
// open store, a valid key, a value within MaxValueBytes. Redis's client
// trusts what passes it. A Set or SetIf with a past expiry is a delete
// first (its value is never stored, whatever its size), as in l2.
func (s *Store) checkWrite(ctx context.Context, key string, value []byte) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := tierstore.CheckKey(key); err != nil {
		return err
	}
	if len(value) > s.l2.MaxValueBytes() {
		return fmt.Errorf("tiered: set: %d bytes, limit %d: %w", len(value), s.l2.MaxValueBytes(), tierstore.ErrTooLarge)
	}
	return nil
}

// past reports whether expiry is set and not in the future: a write with
// it is a delete.
func past(expiry time.Time) bool {
	return !expiry.IsZero() && !time.Now().Before(expiry)
}

// wrote counts a write Redis applied.
func (s *Store) wrote(key string) {
	s.sent.Add(1)
	if h := hooksOf(s); h != nil && h.afterL2Write != nil {
		h.afterL2Write(key)
	}
}

// endWrite caches value, which this instance just wrote to key, if no
// report of key (or of its stripe) came since st; if one came, it may be
// the report of this very write, and the key is read again (see refresh).
func (s *Store) endWrite(key string, st nearcache.Stamp, value []byte, m nearcache.Meta) {
	if !s.l1.EndWrite(key, st, value, m) {
		s.refresh(key)
	}
}

// refresh reads key again, off the caller's path, when this instance's
// copy of what it wrote was dropped (or never cached) because of a report
// that may be the report of that very write: Redis reports a write to
// every connection that read the key since its last change, this
// instance's reads' connection included, and in broadcast mode Redis 7.0
// reports a script's write to its writer too. A report does not say
// whose change it is, and counting reports is unsound (Redis reports the
// changes of one event-loop cycle as one), so the key is read again under
// a stamp taken after the report, and lands only if no report came since:
// as any miss, but before the next request asks. The read goes to
// source.refreshes, so that in per-key mode the reads' connection does
// not follow the key again (which would have the next write reported back
// too), and it runs on a goroutine of its own, since reports and write
// outcomes are handled on connections' goroutines that must not wait.
func (s *Store) refresh(key string) {
	r := s.src.refreshes()
	if r == nil || s.closed.Load() || s.brk.isOpen() {
		return
	}
	s.refreshes.Add(1)
	f := s.l1.Begin(key)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), maxSharedRead)
		defer cancel()
		_, _ = s.l2.ReadOn(ctx, r, key, s.src.epochKey(), func(it rediskv.Item, err error) {
			s.land(ctx, f, it, err)
			if h := hooksOf(s); h != nil && h.afterRefresh != nil {
				h.afterRefresh(key)
			}
		})
	}()
}

// endConditional applies to L1 the outcome of a conditional write that
// did not succeed, and reports whether it succeeded (the caller then
// caches what it wrote): a conflict drops the key's copy, which was
// older than Redis's; any other error is a failed write.
func (s *Store) endConditional(key string, st nearcache.Stamp, err error) bool {
	switch {
	case errors.Is(err, tierstore.ErrConflict):
		s.l1.EndWrite(key, st, nil, nearcache.Meta{})
	case err != nil:
		s.failed(key, st, err)
	default:
		s.wrote(key)
		return true
	}
	return false
}

// failed cleans up after a write that returned an error. Redis may still
// have applied it (a timeout after sending), so nothing of the key stays
// cached here, and for a while this instance's own message, should it come,
// invalidates here too.
func (s *Store) failed(key string, st nearcache.Stamp, err error) {
	s.countError(err)
	s.l1.EndWrite(key, st, nil, nearcache.Meta{})
	s.ownEchoesUntil.Store(time.Now().Add(ambiguousWriteWindow).UnixNano())
}
