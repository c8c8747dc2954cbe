package rediskv_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// A dialer that honours neither its context nor a timeout of its own
// cannot hold an owned client's call past its context, nor Abort.
func TestOwnedDialsEndWhateverTheDialer(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	stuck := func(context.Context, string, string) (net.Conn, error) {
		<-release
		return nil, errors.New("released")
	}
	conns := rediskv.NewConns()
	c := conns.Client(&redis.Options{Addr: "127.0.0.1:1", Dialer: stuck, DialTimeout: time.Hour, MaxRetries: -1}, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Ping(ctx).Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping through a stuck dialer: %v, want the context's deadline", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Ping(context.Background()).Err() }()
	conns.Abort()
	if err := <-done; !errors.Is(err, rediskv.ErrAborted) {
		t.Fatalf("Ping through a stuck dialer after Abort: %v, want ErrAborted", err)
	}
}

// Abort ends a read blocked on a connection that never answers: what
// bounds Close against a black-holed Redis.
func TestAbortEndsABlockedRead(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewProxy(t, srv.Addr())
	conns := rediskv.NewConns()
	c := conns.Client(&redis.Options{Addr: proxy.Addr(), ReadTimeout: -1, MaxRetries: -1}, nil)
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	proxy.BlackHole()
	done := make(chan error, 1)
	go func() { done <- c.Get(context.Background(), "k").Err() }()
	redistest.Eventually(t, "the GET is sent and dropped", func() bool { return proxy.Dropped() > 0 })
	conns.Abort()
	if err := <-done; err == nil || errors.Is(err, redis.Nil) {
		t.Fatalf("Get on a black-holed connection after Abort: %v, want an error", err)
	}
}
