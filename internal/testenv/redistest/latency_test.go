package redistest_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

func TestLatencyDelaysEachDirection(t *testing.T) {
	srv := redistest.Start(t)
	const d = 5 * time.Millisecond
	addr := redistest.Latency(t, srv.Addr(), d)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil { // dial outside the timing
		t.Fatal(err)
	}

	start := time.Now()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 2*d {
		t.Errorf("round trip took %v, want at least %v", rtt, 2*d)
	}

	// Commands sent one after another, without waiting for replies, are
	// each delayed from when they were sent, not queued behind the delays
	// of those before them: latency, not a bandwidth limit.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 20
	start = time.Now()
	for range n {
		if _, err := conn.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // separate chunks for the proxy
	}
	want := strings.Repeat("+PONG\r\n", n)
	got := make([]byte, len(want))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != want {
		t.Fatalf("read %q, %v", got, err)
	}
	if took := time.Since(start); took > n*d {
		t.Errorf("%d commands sent 1 ms apart took %v: the proxy queues them behind each other's delay", n, took)
	}
}
