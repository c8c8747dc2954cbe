package tiered

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/statelog"
)

// breaker fails the store's calls fast while Redis is known to be
// unreachable, instead of letting each wait for a dial or a reply that
// will not come (a circuit breaker):
//
//   - closed: every call goes to Redis. A call whose caller still waited
//     when it failed to reach Redis (see unreachable), or a heartbeat that
//     did, opens it.
//   - open: calls fail at once with an error wrapping
//     tierstore.ErrUnavailable and the failure that opened it. Once the
//     retry delay has passed, the next call is let through as the probe
//     (half-open); the others still fail at once, so that one probe at a
//     time looks for Redis. A probe that cannot reach Redis opens it
//     again for twice the delay (from a quarter of HealthCheckInterval up
//     to HealthCheckInterval).
//   - any answer from Redis (a probe's, a heartbeat's, a call sent before
//     it opened; ErrNotFound, a conflict or a refusal are answers) closes
//     it.
//
// A nil *breaker is always closed: a Cluster, where one master's outage
// must not fail the keys of the others, has none.
type breaker struct {
	min, max time.Duration
	log      *statelog.Logger
	now      func() time.Time
	// piped: the calls run on the store's own connections (rediskv.Pipe),
	// whose failures are their own whoever still waits (a socket timeout
	// there is the connection's ReadTimeout, not a caller's deadline).
	piped bool

	open atomic.Bool // the fast path of a closed breaker: one load

	mu      sync.Mutex // guards the fields below
	cause   error      // what opened it
	probing bool       // a probe is out
	retryAt time.Time  // when the next probe may go
	delay   time.Duration
	since   time.Time // when it opened

	opens, fastFails atomic.Uint64
}

func newBreaker(interval time.Duration, piped bool, log *statelog.Logger) *breaker {
	return &breaker{min: interval / 4, max: interval, piped: piped, log: log, now: time.Now}
}

// allow reports whether a call may go to Redis, and whether it is the
// probe, whose outcome the caller must hand to done. A call that may not
// go gets the error to return.
func (b *breaker) allow() (probe bool, err error) {
	if b == nil || !b.open.Load() {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open.Load():
		return false, nil
	case !b.probing && !b.now().Before(b.retryAt):
		b.probing = true
		return true, nil
	}
	b.fastFails.Add(1)
	return false, fmt.Errorf("failing fast until a probe reaches Redis (%w)", b.cause)
}

// done takes the outcome of a call that went to Redis (probe: the one
// allow let through while open), whose caller has ctx.
func (b *breaker) done(ctx context.Context, probe bool, err error) {
	if b == nil {
		return
	}
	switch {
	case answered(err):
		b.close()
	case unreachable(err) && (probe || !ended(ctx) || b.piped && isNetError(err)):
		b.trip(err)
	case probe:
		// Neither an answer nor a failure to reach Redis (the caller
		// left before it was sent): the next call probes.
		b.mu.Lock()
		b.probing = false
		b.mu.Unlock()
	}
}

// beat takes the outcome of a heartbeat. Its deadline is short (a
// fraction of HealthCheckInterval), so only a dial that failed opens the
// breaker: a slow heartbeat is no proof that Redis is gone.
func (b *breaker) beat(err error) {
	var op *net.OpError
	switch {
	case b == nil:
	case answered(err):
		b.close()
	case errors.As(err, &op) && op.Op == "dial":
		b.trip(err)
	}
}

// trip opens the breaker, or opens it again after a failed probe, for
// twice the last delay.
func (b *breaker) trip(cause error) {
	if !errors.Is(cause, tierstore.ErrUnavailable) {
		cause = fmt.Errorf("%w: %w", tierstore.ErrUnavailable, cause)
	}
	b.mu.Lock()
	opened := !b.open.Load()
	if opened {
		b.delay, b.since = b.min, b.now()
	} else {
		b.delay = min(2*b.delay, b.max)
	}
	b.cause, b.probing, b.retryAt = cause, false, b.now().Add(b.delay)
	b.open.Store(true)
	b.mu.Unlock()
	if opened {
		b.opens.Add(1)
		b.log.Warn("redis unreachable: failing fast", "err", cause)
	}
}

func (b *breaker) close() {
	if !b.open.Load() {
		return
	}
	b.mu.Lock()
	closed := b.open.Swap(false)
	since := b.since
	b.cause, b.probing = nil, false
	b.mu.Unlock()
	if closed {
		b.log.Info("redis reachable again", "after", b.now().Sub(since).Round(time.Millisecond))
	}
}

// answered reports whether err (nil included) is Redis's answer: nothing
// that says it could not be reached.
func answered(err error) bool {
	return err == nil || errors.Is(err, tierstore.ErrNotFound) || errors.Is(err, tierstore.ErrConflict) ||
		errors.Is(err, tierstore.ErrCorrupt) || errors.Is(err, tierstore.ErrRefused)
}

// unreachable reports whether err says that Redis could not be reached:
// the network failed (a dial refused or timed out, a connection reset,
// a socket timeout) or a dial or a reply took longer than the deadline
// of the attempt. It says nothing about whose deadline that was: a call
// counts only if its caller still waited (see done).
func unreachable(err error) bool {
	return err != nil && !answered(err) && (isNetError(err) || errors.Is(err, context.DeadlineExceeded))
}

// isNetError reports whether err is a failure of the network: a dial, a
// read or a write on a socket.
func isNetError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

func (b *breaker) isOpen() bool { return b != nil && b.open.Load() }

func (b *breaker) opensOf() uint64 {
	if b == nil {
		return 0
	}
	return b.opens.Load()
}

func (b *breaker) fastFailsOf() uint64 {
	if b == nil {
		return 0
	}
	return b.fastFails.Load()
}
