package tiered_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/tiered"
)

func Example() {
	srv, _ := miniredis.Run() // any Redis 7: redis.NewClient or NewFailoverClient
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer rdb.Close()

	store, err := tiered.New(tiered.Config{
		Redis:     rdb,
		KeyPrefix: "sessions:",
		L1TTL:     time.Minute,
		// miniredis has no CLIENT TRACKING: only tiered's own writes
		// invalidate. Against a real Redis, leave this false.
		Invalidation: invalidation.OwnWrites,
	})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	ctx := context.Background()
	// The write goes to Redis, with its invalidation, before Set returns.
	if err := store.Set(ctx, "abc123", []byte("user=ada"), time.Now().Add(24*time.Hour)); err != nil {
		panic(err)
	}
	// Reads are served from memory while no other instance has written.
	v, err := store.Get(ctx, "abc123")
	fmt.Println(string(v), err)
	// Output: user=ada <nil>
}
