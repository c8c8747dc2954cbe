package rediskv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newClient returns a Client with the prefix "test:" on a real
// redis-server, and a plain client to look at what it wrote.
func newClient(t *testing.T) (*redis.Client, *rediskv.Client) {
	t.Helper()
	c := redistest.Start(t).Client(nil)
	s, err := rediskv.New(rediskv.Config{Redis: c, KeyPrefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func TestTouchPublishesOnlyWhenExpiryMovesEarlier(t *testing.T) {
	c, s := newClient(t)
	ctx := context.Background()
	sub := c.Subscribe(ctx, "ch")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // subscription confirmed
		t.Fatal(err)
	}
	n := rediskv.Notice{Channel: "ch", Payload: []byte("touched")}
	if err := s.SetAndPublish(ctx, "k", []byte("v"), time.Now().Add(time.Minute), rediskv.Notice{}, nil); err != nil {
		t.Fatal(err)
	}
	later, err := s.TouchAndPublish(ctx, "k", time.Now().Add(time.Hour), n, nil)
	if err != nil || later {
		t.Fatalf("extending: published %v, %v; want no publish", later, err)
	}
	earlier, err := s.TouchAndPublish(ctx, "k", time.Now().Add(time.Second*30), n, nil)
	if err != nil || !earlier {
		t.Fatalf("shortening: published %v, %v; want a publish", earlier, err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Payload != "touched" {
		t.Fatalf("received %v, %v", msg, err)
	}
	if ttl := c.PTTL(ctx, "test:k").Val(); ttl > 30*time.Second {
		t.Fatalf("PTTL after shortening = %v", ttl)
	}
}

// Touch's past expiry is a delete, of a key that exists or not.
func TestTouchToThePastDeletes(t *testing.T) {
	c, s := newClient(t)
	ctx := context.Background()
	if err := s.SetAndPublish(ctx, "k", []byte("v"), time.Time{}, rediskv.Notice{}, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []error{nil, tierstore.ErrNotFound} {
		if _, err := s.TouchAndPublish(ctx, "k", time.Unix(0, 0), rediskv.Notice{}, nil); !errors.Is(err, want) {
			t.Fatalf("TouchAndPublish(1970) = %v, want %v", err, want)
		}
		if n := c.Exists(ctx, "test:k").Val(); n != 0 {
			t.Fatalf("EXISTS after TouchAndPublish(1970) = %d, want 0", n)
		}
	}
}
