package tracking

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/bus"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

func newTracker(t *testing.T, c *redis.Client, cfg Config) *Tracker {
	t.Helper()
	cfg.Redis, cfg.Prefix, cfg.Conns = c, "p:", rediskv.NewConns()
	cfg.BeatPrefix = BeatPrefix(cfg.Prefix, "me")
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func set(key, value string) rediskv.Call { return rediskv.Call{Args: []any{"set", key, value}} }

// doneCounter returns a done callback and the number of times it ran so
// far: once for every call, whatever happens to it.
func doneCounter() (func(*redis.Cmd), func() int) {
	n := 0
	ch := make(chan struct{}, 16)
	return func(*redis.Cmd) { ch <- struct{}{} }, func() int {
		for {
			select {
			case <-ch:
				n++
			default:
				return n
			}
		}
	}
}

func TestRunWritesAndReportsOnce(t *testing.T) {
	srv := redistest.Start(t)
	tr := newTracker(t, srv.Client(nil), Config{})
	done, count := doneCounter()
	if err := tr.Run(context.Background(), set("p:k", "v"), done).Err(); err != nil {
		t.Fatal(err)
	}
	if got := srv.Do("GET", "p:k"); got != "v" {
		t.Fatalf("Redis holds %v", got)
	}
	if n := count(); n != 1 {
		t.Fatalf("done ran %d times", n)
	}
	// A call whose context is already done is never sent, and says so.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tr.Run(ctx, set("p:k", "w"), done).Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context: %v", err)
	}
	if got := srv.Do("GET", "p:k"); got != "v" {
		t.Fatalf("a call never sent was applied: %v", got)
	}
	// After Close: ErrClosed, done still told.
	_ = tr.Close()
	if err := tr.Run(context.Background(), set("p:k", "x"), done).Err(); !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	if n := count(); n != 3 {
		t.Fatalf("done ran %d times for three calls, two never sent", n)
	}
}

// Beat registers once a subscriber is connected (reporting the new
// registration as a flush), and each beat's key change then reaches the
// subscriber under its own name; a new epoch key is a flush too.
func TestBeatRegistersThenBeats(t *testing.T) {
	srv := redistest.Start(t)
	tr := newTracker(t, srv.Client(nil), Config{EpochKey: "p:\x00epoch"})
	ctx := context.Background()
	if _, err := tr.Beat(ctx, 1); err == nil {
		t.Fatal("Beat succeeded without a subscriber connection")
	}
	ps := tr.Subscriber().Subscribe(ctx, bus.TrackingChannel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	flush, err := tr.Beat(ctx, 2)
	if err != nil || flush == (bus.Flush{}) {
		t.Fatalf("first Beat: %+v, %v; want a registration reported as a flush", flush, err)
	}
	if tr.Epoch() == "" {
		t.Fatal("no epoch after the first beat")
	}
	heard := func(seq string) {
		t.Helper()
		for {
			msg, err := ps.ReceiveMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range msg.PayloadSlice {
				if k == BeatPrefix("p:", "me")+":"+seq {
					return
				}
			}
		}
	}
	heard("2")
	if flush, err := tr.Beat(ctx, 3); err != nil || flush != (bus.Flush{}) {
		t.Fatalf("second Beat: %+v, %v; want nothing to flush", flush, err)
	}
	heard("3")
	if n := srv.Do("KEYS", BeatPrefix("p:", "me")+"*").([]any); len(n) != 1 {
		t.Fatalf("%d heartbeat keys, want the one of the last beat", len(n))
	}
	srv.Do("DEL", "p:\x00epoch")
	if flush, err := tr.Beat(ctx, 4); err != nil || flush == (bus.Flush{}) {
		t.Fatalf("Beat after the epoch key went: %+v, %v; want a flush", flush, err)
	}
}

func TestProbeNamesTheRefusedCommand(t *testing.T) {
	srv := redistest.Start(t)
	srv.Do("ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-client|id")
	err := Probe(context.Background(), srv.Client(&redis.Options{Username: "app", Password: "pw"}))
	if !errors.Is(err, tierstore.ErrRefused) {
		t.Fatalf("Probe: %v", err)
	}
	if err := Probe(context.Background(), srv.Client(nil)); err != nil {
		t.Fatalf("Probe of a default server: %v", err)
	}
}
