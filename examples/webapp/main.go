// Command webapp is two instances of one web service sharing sessions
// through tierstore, with an account page: log in on one instance from
// two devices, list the user's sessions on the other, log one device out
// (or every device) there, and the first instance rejects the ended
// session at once.
//
//	go run ./examples/webapp                  # embedded miniredis, :8081 and :8082
//	go run ./examples/webapp -redis host:port # a real Redis
//
// It walks through that story with an HTTP client per device, printing
// each step, then keeps serving for a browser until interrupted
// (-serve=false to stop after the walk-through).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

func main() {
	redisAddr := flag.String("redis", "", "Redis address; empty: embedded miniredis")
	addrA := flag.String("a", "127.0.0.1:8081", "listen address of instance A")
	addrB := flag.String("b", "127.0.0.1:8082", "listen address of instance B")
	serve := flag.Bool("serve", true, "keep serving after the walk-through")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *redisAddr, *addrA, *addrB, *serve, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

// Instance is one process of the service: its own tiered store (L1 and
// Redis connections) and session manager.
type Instance struct {
	Name     string
	Store    *tiered.Store
	Sessions *session.Manager
	Handler  http.Handler

	mu      sync.Mutex
	waiters map[string]chan struct{} // CaughtUp's marker keys
}

// NewInstance builds an instance on its own Redis client. embedded says
// the server is miniredis, which has no CLIENT TRACKING: then only the
// store's own writes invalidate (tiered.Config.Invalidation = invalidation.OwnWrites).
func NewInstance(name, redisAddr string, embedded bool) (*Instance, error) {
	in := &Instance{Name: name, waiters: map[string]chan struct{}{}}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	store, err := tiered.New(tiered.Config{Redis: rdb, KeyPrefix: "webapp:", Invalidation: invalidation.ModeIf(embedded), OnInvalidate: in.invalidated})
	if err != nil {
		return nil, err
	}
	sessions, err := session.New(session.Config{
		Store:       store,
		IdleTimeout: 30 * time.Minute,
		// Plain HTTP on loopback for the demo. Behind TLS, leave it false.
		// The cookie stays SameSite=Lax (the default).
		Cookie: session.Cookie{AllowInsecure: true},
	})
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	in.Store, in.Sessions = store, sessions
	in.Handler = in.routes()
	return in, nil
}

// Close stops the instance's store.
func (in *Instance) Close() error { return in.Store.Close() }

// invalidated is the store's OnInvalidate: it wakes CaughtUp.
func (in *Instance) invalidated(key string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if ch, ok := in.waiters[key]; ok {
		close(ch)
		delete(in.waiters, key)
	}
}

// CaughtUp returns once this instance has applied to its memory (L1)
// every change that writer made before the call. This instance reads a
// fresh marker key, so that Redis tracks it for this instance, and writer
// writes it: Redis reports the changes an instance must hear in the order
// they were made, one subscription per instance, so the marker's report
// comes after every earlier one.
//
// A service never needs this: an ended session stops being served
// everywhere within the invalidation delay (well under a millisecond on
// loopback). The walk-through and the tests use it so that the next step
// shows the result for certain, with no sleep.
func (in *Instance) CaughtUp(ctx context.Context, writer *Instance) error {
	marker := "caught-up:" + in.Name + ":" + rand.Text()
	if _, err := in.Store.Get(ctx, marker); !errors.Is(err, tierstore.ErrNotFound) {
		return fmt.Errorf("instance %s: reading a fresh marker: got %v, want ErrNotFound", in.Name, err)
	}
	done := make(chan struct{})
	in.mu.Lock()
	in.waiters[marker] = done
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		delete(in.waiters, marker)
		in.mu.Unlock()
	}()
	if err := writer.Store.Set(ctx, marker, []byte("1"), time.Now().Add(time.Minute)); err != nil {
		return fmt.Errorf("instance %s: writing the marker: %w", writer.Name, err)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("instance %s: no report of instance %s's write: %w", in.Name, writer.Name, ctx.Err())
	}
}

func run(ctx context.Context, redisAddr, addrA, addrB string, serve bool, out io.Writer) error {
	embedded := redisAddr == ""
	if embedded {
		m, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer m.Close()
		redisAddr = m.Addr()
		fmt.Fprintf(out, "Redis: embedded miniredis at %s\n", redisAddr)
	}
	a, b, err := newPair(redisAddr, embedded)
	if err != nil {
		return err
	}
	defer a.Close()
	defer b.Close()

	urlA, stopA, err := listen(a.Handler, addrA)
	if err != nil {
		return err
	}
	defer stopA()
	urlB, stopB, err := listen(b.Handler, addrB)
	if err != nil {
		return err
	}
	defer stopB()
	fmt.Fprintf(out, "instance A: %s\ninstance B: %s\n\n", urlA, urlB)
	if err := Walkthrough(out, a, b, urlA, urlB); err != nil {
		return err
	}
	if !serve {
		return nil
	}
	fmt.Fprintf(out, "\nServing: open %s/login in one browser and %s/login in another\n(or a private window): two devices (Ctrl-C to stop).\n", urlA, urlB)
	<-ctx.Done()
	return nil
}

// newPair builds instances A and B on one Redis.
func newPair(redisAddr string, embedded bool) (a, b *Instance, err error) {
	if a, err = NewInstance("A", redisAddr, embedded); err != nil {
		return nil, nil, err
	}
	if b, err = NewInstance("B", redisAddr, embedded); err != nil {
		_ = a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

func listen(h http.Handler, addr string) (string, func(), error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}
