package tiered

import (
	"errors"
	"slices"
	"time"
)

// closeGrace is how long Close lets writes in flight finish before it
// closes the store's connections under them.
const closeGrace = time.Second

// Close stops the subscription and frees the L1 cache. Later calls fail
// with tierstore.ErrClosed; calls in flight complete or fail with it. It
// does not close the Redis client. It returns within about a second
// whatever Redis does: writes still waiting for Redis then are cut off
// (they fail; whether Redis applied them is unknown, as for any write
// that times out).
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.done)
	finished := make(chan error, 1)
	go func() {
		finished <- s.closeParts()
	}()
	var err error
	select {
	case err = <-finished:
	case <-time.After(closeGrace):
		s.conns.Abort()
		err = <-finished
	}
	s.conns.Abort()
	return err
}

// closeParts closes what New made, in reverse: the source before L1,
// which its callbacks use.
func (s *Store) closeParts() error {
	var err error
	for _, c := range slices.Backward(s.parts) {
		err = errors.Join(err, c())
	}
	s.parts = nil
	return err
}
