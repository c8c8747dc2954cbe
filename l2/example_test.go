package l2_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/l2"
)

// The Redis-only store: shared and durable, one round trip per call.
func Example() {
	srv, _ := miniredis.Run()
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer rdb.Close()

	store, err := l2.New(l2.Config{Redis: rdb, KeyPrefix: "sessions:"})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := store.Set(ctx, "abc123", []byte("user=ada"), time.Now().Add(time.Hour)); err != nil {
		panic(err)
	}
	v, _ := store.Get(ctx, "abc123")
	fmt.Println(string(v))
	// Output: user=ada
}
