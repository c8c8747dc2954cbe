package l1_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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

// A read-modify-write that never overwrites a change it did not see: the
// write is conditional on the version read, and a conflict reads again.
// Every Store in this module implements tierstore.Versioned the same way.
func ExampleStore_SetIf() {
	ctx := context.Background()
	store, _ := l1.New(l1.Config{})
	defer store.Close()
	store.Set(ctx, "counter", []byte("1"), time.Time{})

	increment := func() error {
		for {
			b, version, _, err := store.GetVersion(ctx, "counter", tierstore.NoVersion)
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(string(b))
			_, err = store.SetIf(ctx, "counter", []byte(strconv.Itoa(n+1)), time.Time{}, version)
			if !errors.Is(err, tierstore.ErrConflict) {
				return err // nil, or a failure
			}
			// Someone else wrote since the read: read again.
		}
	}
	increment()
	increment()
	b, _ := store.Get(ctx, "counter")
	fmt.Println(string(b))

	// A key deleted since it was read is a conflict, never re-created.
	_, version, _, _ := store.GetVersion(ctx, "counter", tierstore.NoVersion)
	store.Delete(ctx, "counter")
	_, err := store.SetIf(ctx, "counter", []byte("4"), time.Time{}, version)
	fmt.Println(errors.Is(err, tierstore.ErrConflict))
	// Output:
	// 3
	// true
}
