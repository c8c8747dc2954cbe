package tiered

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/nearcache"
	"github.com/tierstore/tierstore/internal/statelog"
	"github.com/tierstore/tierstore/invalidation"
)

// FailSafeStats counts what the store does while Redis is unreachable:
// the fail-safe (Config.FailSafe) and failing fast.
type FailSafeStats struct {
	Serves      uint64 // reads served from memory by the fail-safe
	Activations uint64 // windows opened: times proof was lost with FailSafe set
	Active      bool   // a window is open now (proof lost less than FailSafe ago)
	// Since is when the last window opened: the moment the store lost
	// its proof (zero: never).
	Since     time.Time
	FastFails uint64 // calls failed at once because Redis was known to be unreachable
	Opens     uint64 // times the store learnt that Redis was unreachable
	Open      bool   // calls fail fast now
}

// # The fail-safe rule
//
// A window opens when the store loses its proof (Live to not Live) with
// FailSafe set: the gap that ends Live ends the L1 epoch in which the
// store was Live, and that epoch's entries were coherent at that moment
// (every change made before the last heartbeat applied to them, as for
// any L1 hit). The window keeps that epoch's entries readable (see
// nearcache.LookupKept) until the first of:
//
//   - FailSafe after the loss;
//   - Live again (reads are served as usual);
//   - a gap that says the data itself changed (a flush reported, another
//     dataset, a message of an unknown version, a Cluster's topology).
//
// Within it, a read whose Redis read failed with tierstore.ErrUnavailable
// (never tierstore.ErrRefused), while its caller still waits, is served
// from a kept entry of the key if there is one: one whose key nothing
// of this instance has invalidated since (a report that still arrived, a
// write or delete of the key, failed or refused, which leaves a
// tombstone). Gaps within the outage (redials, lease checks) end epochs
// in which the store was never Live: they open nothing and keep the
// window.
type failSafe struct {
	max time.Duration // Config.FailSafe; 0: off
	log *statelog.Logger

	window atomic.Pointer[window] // nil: none open

	mu        sync.Mutex // orders the changes below
	liveEpoch uint64     // the L1 epoch in which the store was last seen Live
	everLive  bool

	serves, activations atomic.Uint64
	since               atomic.Int64 // unix ns: FailSafeStats.Since
}

// window is one activation: the epoch whose entries it keeps, and when it
// ends.
type window struct {
	epoch uint64
	until time.Time
}

// live records that the store is Live in the current epoch of l1 (checked
// by live between two reads of it, so that the epoch recorded is one in
// which the store was Live), and closes the window.
func (f *failSafe) live(l1 *nearcache.Cache, live func() bool) {
	e := l1.Epoch()
	if !live() || l1.Epoch() != e {
		return
	}
	f.mu.Lock()
	f.liveEpoch, f.everLive = e, true
	f.window.Store(nil)
	f.mu.Unlock()
}

// gap takes a gap that ended epoch ended, for cause and reason.
func (f *failSafe) gap(ended uint64, cause invalidation.GapCause, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case dataChanged(cause):
		if f.window.Swap(nil) != nil {
			f.log.Warn("fail-safe ended: the data changed", "reason", reason)
		}
	case f.max > 0 && f.everLive && ended == f.liveEpoch && f.window.Load() == nil:
		f.everLive = false // this epoch opens one window, once
		now := time.Now()
		f.since.Store(now.UnixNano()) // first: a serve in the window sees it
		f.window.Store(&window{epoch: ended, until: now.Add(f.max)})
		f.activations.Add(1)
		f.log.Warn("fail-safe active", "for", f.max, "reason", reason)
	}
}

// open returns the window open now, or nil.
func (f *failSafe) open() *window {
	w := f.window.Load()
	if w == nil || !time.Now().Before(w.until) {
		return nil
	}
	return w
}

// dataChanged reports whether a gap's cause says that the data itself
// changed (a flush, another dataset, a message this version cannot read,
// a Cluster's masters), not only that reports may have been lost.
func dataChanged(cause invalidation.GapCause) bool {
	switch cause {
	case invalidation.GapFlushed, invalidation.GapMalformed, invalidation.GapTopology:
		return true
	}
	return false
}

// serveKept serves key from the fail-safe if err, the failure of its read
// from Redis, allows it (see the rule above), and reports whether it did.
func (s *Store) serveKept(ctx context.Context, key string, atLeast tierstore.Version, err error, fn func([]byte) error) (nearcache.Meta, bool, error) {
	if !errors.Is(err, tierstore.ErrUnavailable) || errors.Is(err, tierstore.ErrRefused) || ctx.Err() != nil {
		return nearcache.Meta{}, false, nil
	}
	w := s.fs.open()
	if w == nil {
		return nearcache.Meta{}, false, nil
	}
	var value []byte
	hit, m, _ := s.l1.LookupKept(key, w.epoch, func(b []byte) error { value = b; return nil })

	if !hit || (atLeast != tierstore.NoVersion && versionOf(m, value) < atLeast) {
		return nearcache.Meta{}, false, nil
	}
	s.fs.serves.Add(1)
	return m, true, fn(value)
}

func (s *Store) failSafeStats() FailSafeStats {
	var since time.Time
	if ns := s.fs.since.Load(); ns != 0 {
		since = time.Unix(0, ns)
	}
	return FailSafeStats{
		Serves: s.fs.serves.Load(), Activations: s.fs.activations.Load(), Active: s.fs.open() != nil, Since: since,
		FastFails: s.brk.fastFailsOf(), Opens: s.brk.opensOf(), Open: s.brk.isOpen(),
	}
}
