package tiered

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// A read that fails on a dial timeout (a black-holed Redis: the error is
// net's "i/o timeout", which errors.Is context.DeadlineExceeded) is not
// someone else's deadline: the caller must get ErrUnavailable, not read
// again and again until its own deadline (or for maxSharedRead without
// one). A retry test of errors.Is(err, context.DeadlineExceeded) cannot
// tell the two apart (it made thousands of reads in 3 s).
func TestNetworkTimeoutIsNotReadAgain(t *testing.T) {
	srv := redistest.Start(t)
	var blackhole atomic.Bool
	opts := &redis.Options{
		DialTimeout: 100 * time.Millisecond, DialerRetries: 1, MaxRetries: -1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if blackhole.Load() {
				<-ctx.Done() // no SYN-ACK ever comes
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	s := newStore(t, srv.Client(opts), Config{})
	t.Cleanup(func() { blackhole.Store(false) })
	var reads atomic.Int64
	s.hooks().beforeL2Read = func(context.Context, string) { reads.Add(1) }

	blackhole.Store(true)
	srv.Do("CLIENT", "KILL", "TYPE", "normal") // the store's connection must be dialled again
	// The first read may meet the killed connection; the next ones dial.
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		before, start := reads.Load(), time.Now()
		_, err := s.Get(ctx, "absent")
		cancel()
		n, d := reads.Load()-before, time.Since(start)
		t.Logf("Get %d: %v after %v and %d reads", i, err, d, n)
		if !errors.Is(err, tierstore.ErrUnavailable) {
			t.Fatalf("Get with Redis black-holed = %v, want ErrUnavailable", err)
		}
		if n > 2 {
			t.Fatalf("Get %d with Redis black-holed made %d Redis reads in %v: it reads again after a network timeout", i, n, d)
		}
	}
}

// A caller that goes away is not a Redis failure: a miss whose caller
// cancelled before its read was sent must return plain context.Canceled
// (not ErrUnavailable) and must not count in Stats.Errors. The read is
// held before it is sent until its caller has cancelled.
func TestCancelledMissIsNotARedisError(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(nil), Config{})
	set(t, s, "k", "v")
	for i := range 10 {
		s.l1.InvalidateAll()
		reading := make(chan struct{})
		s.hooks().beforeL2Read = func(ctx context.Context, _ string) { close(reading); <-ctx.Done() }
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		before := s.Stats().Redis.Errors
		go func() { _, err := s.Get(ctx, "k"); errc <- err }()
		<-reading
		cancel()
		err := <-errc
		s.hooks().beforeL2Read = nil
		if !errors.Is(err, context.Canceled) || errors.Is(err, tierstore.ErrUnavailable) {
			t.Fatalf("round %d: cancelled Get = %v, want context.Canceled and not ErrUnavailable", i, err)
		}
		if n := s.Stats().Redis.Errors - before; n != 0 {
			t.Fatalf("round %d: a Get its caller cancelled counted %d Redis errors (%v)", i, n, err)
		}
	}
}
