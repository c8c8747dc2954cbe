package l1_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/l1"
)

// The memory-only store: fast and bounded, but neither shared between
// instances nor kept across restarts. A full store evicts its least
// recently used entries; it never refuses a write for lack of room.
func Example() {
	store, err := l1.New(l1.Config{MaxBytes: 64 << 20})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	ctx := context.Background()
	if err := store.Set(ctx, "abc123", []byte("user=ada"), time.Now().Add(time.Hour)); err != nil {
		panic(err) // an invalid key, a value over MaxValueBytes, or a closed store
	}
	v, _ := store.Get(ctx, "abc123")
	fmt.Println(string(v))

	_ = store.Delete(ctx, "abc123")
	_, err = store.Get(ctx, "abc123")
	fmt.Println(errors.Is(err, tierstore.ErrNotFound))
	// Output:
	// user=ada
	// true
}
