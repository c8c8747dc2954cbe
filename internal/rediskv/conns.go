package rediskv

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrAborted is the error of a dial through Conns after Abort.
var ErrAborted = errors.New("rediskv: connections aborted (store closed)")

// DefaultDialTimeout bounds a dial of an owned client whose options give
// none (go-redis's own default).
const DefaultDialTimeout = 5 * time.Second

// Conns owns the connections of the clients a store makes for itself
// (registration, subscription, reads, heartbeats), so that nothing the
// user's dialer does can hold the store up:
//
//   - every dial ends by its context or DialTimeout, whichever comes
//     first, even with a dialer that honours neither (the dial runs on a
//     goroutine of its own, and a connection it returns too late is
//     closed);
//   - Abort closes every connection still open and fails every later
//     dial, which ends any read or write blocked on a black-holed socket
//     at once: Close is bounded by the store, not by the network.
type Conns struct {
	mu      sync.Mutex
	open    map[net.Conn]struct{}
	aborted bool
	stop    chan struct{} // closed by Abort: ends dials in progress
}

// NewConns returns an empty Conns.
func NewConns() *Conns {
	return &Conns{open: map[net.Conn]struct{}{}, stop: make(chan struct{})}
}

// Client returns a new client with opt's settings (which it does not
// modify) whose connections this Conns owns, with the changes the store
// needs made by edit, if not nil. Its contexts' deadlines bound its
// socket reads and writes (ContextTimeoutEnabled). It speaks RESP2, without
// maintenance notifications: a copy of a RESP3 client's options shares
// its push-notification handlers, which go-redis refuses to register
// twice (a log line, or a panic when they are required).
func (c *Conns) Client(opt *redis.Options, edit func(*redis.Options)) *redis.Client {
	o := *opt
	o.ContextTimeoutEnabled = true
	o.Protocol, o.MaintNotificationsConfig = 2, nil
	if edit != nil {
		edit(&o)
	}
	o.Dialer = c.dialer(o.Dialer, o.DialTimeout)
	return redis.NewClient(&o)
}

// Universal returns a client like rdb whose connections this Conns owns,
// for a *redis.Client or a *redis.ClusterClient, and rdb itself for any
// other kind (whose dials then end only by their context).
func (c *Conns) Universal(rdb redis.UniversalClient) redis.UniversalClient {
	switch r := rdb.(type) {
	case *redis.Client:
		return c.Client(r.Options(), nil)
	case *redis.ClusterClient:
		o := *r.Options()
		o.ContextTimeoutEnabled = true
		o.Protocol, o.MaintNotificationsConfig = 2, nil
		o.Dialer = c.dialer(o.Dialer, o.DialTimeout)
		return redis.NewClusterClient(&o)
	}
	return rdb
}

// dialer wraps next (nil: a net.Dialer) so that its dials are bounded and
// owned, as the type describes.
func (c *Conns) dialer(next func(ctx context.Context, network, addr string) (net.Conn, error), timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	if next == nil {
		next = (&net.Dialer{KeepAlive: 5 * time.Minute}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ch := make(chan dialed, 1)
		go func() {
			conn, err := next(ctx, network, addr)
			ch <- dialed{conn, err}
		}()
		var d dialed
		select {
		case d = <-ch:
		case <-ctx.Done():
			go closeLate(ch)
			return nil, ctx.Err()
		case <-c.stop:
			go closeLate(ch)
			return nil, ErrAborted
		}
		if d.err != nil {
			return nil, d.err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.aborted {
			_ = d.conn.Close()
			return nil, ErrAborted
		}
		conn := &ownedConn{Conn: d.conn, owner: c}
		c.open[conn] = struct{}{}
		return conn, nil
	}
}

// dialed is the outcome of one dial.
type dialed struct {
	conn net.Conn
	err  error
}

// closeLate closes the connection of a dial its caller no longer waits for.
func closeLate(ch chan dialed) {
	d := <-ch
	if d.conn != nil {
		_ = d.conn.Close()
	}
}

// Abort closes every owned connection and fails every later dial. It is
// idempotent.
func (c *Conns) Abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted {
		return
	}
	c.aborted = true
	close(c.stop)
	for conn := range c.open {
		_ = conn.(*ownedConn).Conn.Close()
	}
	clear(c.open)
}

// ownedConn leaves its owner's set when closed.
type ownedConn struct {
	net.Conn
	owner *Conns
	once  sync.Once
}

func (o *ownedConn) Close() error {
	o.once.Do(func() {
		o.owner.mu.Lock()
		delete(o.owner.open, o)
		o.owner.mu.Unlock()
	})
	return o.Conn.Close()
}
