package tiered

import (
	"context"
	"errors"
	"fmt"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/invalidation"
)

// Live reports whether L1 may currently serve reads: whether the store
// holds proof, renewed within HealthCheckInterval, that changes reach it
// (see docs/consistency.md). While it is false, every read goes to Redis.
// Useful in readiness checks and metrics; Health says why it is false.
func (s *Store) Live() bool { return s.src.live() }

// whyNotLive returns a channel closed when Live or its cause may have
// changed, and why the store is not Live (nil while it is).
func (s *Store) whyNotLive() (<-chan struct{}, error) {
	changed, cause := s.src.state()
	if s.src.live() {
		return changed, nil
	}
	if cause == nil {
		cause = errors.New("no heartbeat heard yet")
	}
	return changed, cause
}

// Health returns nil while the store is Live, and otherwise an error
// wrapping invalidation.ErrNotLive and why it is not: the last failure of its subscription or heartbeats (wrapping
// tierstore.ErrRefused for a permission, a renamed command or
// credentials; tierstore.ErrUnavailable for a Redis that does not
// answer), or the gap that ended its lease.
func (s *Store) Health() error {
	if s.closed.Load() {
		return tierstore.ErrClosed
	}
	if _, cause := s.whyNotLive(); cause != nil {
		return fmt.Errorf("tiered: %w: %w", invalidation.ErrNotLive, cause)
	}
	return nil
}

// WaitLive blocks until L1 may serve reads (Live is true), ctx is done
// or the Store is closed (tierstore.ErrClosed). When ctx ends first, the
// error wraps both ctx's error and the last reason the store was not
// Live (see Health). A new Store is not Live until it has heard its first
// heartbeat; call WaitLive at startup (with a timeout) before reporting
// ready, if reads from memory matter from the first request. The Store
// works without it: reads go to Redis until then.
func (s *Store) WaitLive(ctx context.Context) error {
	for {
		if s.closed.Load() {
			return tierstore.ErrClosed
		}
		changed, cause := s.whyNotLive()
		if cause == nil {
			return nil
		}
		select {
		case <-changed:
		case <-s.done:
			return tierstore.ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("tiered: %w: %w (last: %w)", invalidation.ErrNotLive, ctx.Err(), cause)
		}
	}
}
