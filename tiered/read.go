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

// maxSharedRead bounds how long a caller without a deadline keeps reading
// again after shared reads that failed because their starters left (see
// fetch): as long as its own read could take.
const maxSharedRead = 10 * time.Second

// Get returns a copy of the value under key, or tierstore.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	_, err := s.read(ctx, key, tierstore.NoVersion, func(b []byte) error {
		out = bytes.Clone(b)
		return nil
	})
	return out, err
}

// GetVersion returns a copy of the value under key, its version and its
// expiry (zero: none; on an L1 hit, the expiry read when the entry was
// filled: another instance may have extended it since). It serves the L1
// copy only if its version is at least atLeast; an older copy, which an
// invalidation in flight is about to drop, is read again from Redis.
func (s *Store) GetVersion(ctx context.Context, key string, atLeast tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	var out []byte
	m, err := s.read(ctx, key, atLeast, func(b []byte) error {
		out = bytes.Clone(b)
		return nil
	})
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	return out, versionOf(m, out), m.Expiry, nil
}

// ViewVersion calls fn with the value under key, its version and its
// expiry, as GetVersion returns them; on an L1 hit fn sees the cached bytes
// themselves, which it must neither modify nor retain.
func (s *Store) ViewVersion(ctx context.Context, key string, atLeast tierstore.Version, fn func([]byte, tierstore.Version, time.Time) error) error {
	var value []byte
	m, err := s.read(ctx, key, atLeast, func(b []byte) error { value = b; return nil })
	if err != nil {
		return err
	}
	return fn(value, versionOf(m, value), m.Expiry)
}

// View calls fn with the value under key. On an L1 hit fn sees the cached
// bytes themselves, which it must neither modify nor retain: no copy, no
// allocation.
func (s *Store) View(ctx context.Context, key string, fn func([]byte) error) error {
	_, err := s.read(ctx, key, tierstore.NoVersion, fn)
	return err
}

// read lends the value of key to fn, from L1 when it may serve and its copy
// is at least atLeast, else from Redis (filling L1), and returns the
// value's expiry and version.
func (s *Store) read(ctx context.Context, key string, atLeast tierstore.Version, fn func([]byte) error) (nearcache.Meta, error) {
	if err := s.check(ctx); err != nil {
		return nearcache.Meta{}, err
	}
	if !s.src.live() {
		s.bypassed.Add(1)
	} else if atLeast == tierstore.NoVersion {
		if hit, m, err := s.l1.Lookup(key, fn); hit {
			return m, err
		}
	} else {
		var value []byte
		if hit, m, _ := s.l1.Lookup(key, func(b []byte) error { value = b; return nil }); hit && versionOf(m, value) >= atLeast {
			return m, fn(value)
		}
	}
	if err := tierstore.CheckKey(key); err != nil {
		return nearcache.Meta{}, err
	}
	o, fresh, err := s.fetch(ctx, key)
	if err == nil && atLeast != tierstore.NoVersion && !fresh && versionOf(o.Meta, o.Value) < atLeast {
		// Older than a version the caller saw written: L1's copy, or a
		// shared read that began before that write. Read Redis itself,
		// in a flight no one joins. A read this caller started is what
		// Redis holds (older than atLeast if the caller's version was
		// never written, as a forged cookie's): reading it again would
		// cost a second round trip.
		o, _, err = s.await(ctx, s.l1.Begin(key), true)
	}
	if err != nil {
		if m, kept, err := s.serveKept(ctx, key, atLeast, err, fn); kept {
			return m, err
		}
		return nearcache.Meta{}, err
	}
	return o.Meta, fn(o.Value)
}

// versionOf is the version of value, read with m: as recorded, or, for a
// value this instance wrote with Set, derived from its bytes.
func versionOf(m nearcache.Meta, value []byte) tierstore.Version {
	if m.Version == tierstore.NoVersion {
		return rediskv.ContentVersion(value)
	}
	return m.Version
}

// fetch reads key from Redis and fills L1, in the flight of the key's
// current stamp (see nearcache.Flight): concurrent misses share one read,
// and a read that follows a write never joins one that began before it.
// fresh reports that this caller's own flight read Redis.
func (s *Store) fetch(ctx context.Context, key string) (o nearcache.Outcome, fresh bool, err error) {
	start := time.Now()
	for {
		f, started := s.l1.Flight(key, s.src.live())
		if h := hooksOf(s); h != nil && h.afterFlightJoin != nil {
			h.afterFlightJoin(key)
		}
		o, starterLeft, err := s.await(ctx, f, started)
		// A shared read ends at the deadline of the caller that started
		// it, or, if it was never sent, with that caller's cancellation.
		// A waiter whose own context is still alive reads again
		// (joining a later flight or starting its own) instead of
		// failing with someone else's; one without a deadline gives up
		// after maxSharedRead. A read that failed while its starter
		// still waited (a network timeout is no one's deadline) is the
		// waiters' failure too.
		if err != nil && starterLeft && ctx.Err() == nil && mayReadAgain(ctx, start) {
			continue
		}
		return o, started && !o.Cached, err
	}
}

// mayReadAgain reports whether a waiter that started at start still has
// time for another shared read: before its own deadline, or within
// maxSharedRead if it has none.
func mayReadAgain(ctx context.Context, start time.Time) bool {
	if deadline, ok := ctx.Deadline(); ok {
		return time.Now().Before(deadline)
	}
	return time.Since(start) < maxSharedRead
}

// await sends f's read if this caller started it, and waits for f or for
// ctx, whichever ends first. It reports whether f failed after its
// starter left.
func (s *Store) await(ctx context.Context, f *nearcache.Flight, start bool) (nearcache.Outcome, bool, error) {
	if start {
		s.fly(ctx, f)
	}
	select {
	case <-f.Done():
		o := f.Outcome()
		switch {
		case o.Err == nil:
			return o, false, nil
		case ctx.Err() != nil:
			// Both were ready: this caller left, whatever the read says.
			return nearcache.Outcome{}, false, s.ctxError(ctx, f.Key())
		}
		return nearcache.Outcome{}, o.StarterLeft, o.Err
	case <-ctx.Done():
		return nearcache.Outcome{}, false, s.ctxError(ctx, f.Key())
	}
}

// fly sends the read of flight f, started by a caller with ctx. The read
// joins the next batch on the store's read connection, which answers it
// whether or not this caller still waits, and lands it for every waiter.
func (s *Store) fly(ctx context.Context, f *nearcache.Flight) {
	key := f.Key()
	probe, err := s.brk.allow()
	if err != nil {
		err = fmt.Errorf("%s: %w", s.l2.Named("get", key), err)
		s.countError(err)
		s.l1.Cancel(f, err, false)
		return
	}
	if h := hooksOf(s); h != nil && h.beforeL2Read != nil {
		h.beforeL2Read(ctx, key)
	}
	end := s.trace(ctx, "get")
	_, _ = s.l2.ReadAsync(ctx, key, s.src.epochKey(), func(r rediskv.Item, err error) {
		s.brk.done(ctx, probe, err)
		s.land(ctx, f, r, err)
		endTrace(end, err)
	})
}

// land counts a Redis read of f's key and ends f with it: L1 is filled
// under the stamp f took before the read, if the source lets the value's
// dataset fill it. ctx is the starter's.
func (s *Store) land(ctx context.Context, f *nearcache.Flight, r rediskv.Item, err error) {
	if h := hooksOf(s); h != nil && h.afterL2Read != nil {
		h.afterL2Read(f.Key())
	}
	switch {
	case err == nil:
		s.l2Hits.Add(1)
		s.l1.Update(f, r.Value, nearcache.Meta{Expiry: r.Expiry, Version: r.Version}, s.src.current(r.Epoch))
		return
	case errors.Is(err, tierstore.ErrNotFound):
		s.l2Misses.Add(1)
	case errors.Is(err, context.Canceled):
		// Never sent, or not waited for: the caller left, Redis did not fail.
	default:
		s.countError(err)
	}
	s.l1.Cancel(f, err, ended(ctx))
}

// ended reports whether ctx has ended, or its deadline has passed (its
// timer may not have fired yet).
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}

// ctxError is the error of a read of key whose caller's context ended:
// a passed deadline is ErrUnavailable (Redis did not answer in time).
func (s *Store) ctxError(ctx context.Context, key string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return s.l2.WrapError(ctx, "get", key, ctx.Err())
	}
	return ctx.Err()
}
