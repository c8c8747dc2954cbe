package codec

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tierstore/tierstore"
)

// Typed keeps values of type T in a Store, encoded with Codec (Default when
// nil). The zero value is not usable: Store must be set.
//
//	users := codec.Typed[User]{Store: store}
//	err := users.Set(ctx, "user:42", u, time.Now().Add(time.Hour))
//	u, err := users.Get(ctx, "user:42")
type Typed[T any] struct {
	Store tierstore.Store
	Codec Codec
}

func (t Typed[T]) codec() Codec {
	if t.Codec == nil {
		return Default
	}
	return t.Codec
}

// Get loads and decodes the value under key. A value that does not decode
// as T yields an error wrapping tierstore.ErrCorrupt.
func (t Typed[T]) Get(ctx context.Context, key string) (T, error) {
	var v T
	var decodeErr error
	decode := func(b []byte) error {
		decodeErr = t.codec().Unmarshal(b, &v)
		return decodeErr
	}
	var err error
	if viewer, ok := t.Store.(tierstore.VersionViewer); ok {
		err = viewer.ViewVersion(ctx, key, tierstore.NoVersion, func(b []byte, _ tierstore.Version, _ time.Time) error { return decode(b) })
	} else {
		var b []byte
		if b, err = t.Store.Get(ctx, key); err == nil {
			err = decode(b)
		}
	}
	if err != nil {
		var zero T
		if decodeErr != nil && errors.Is(err, decodeErr) {
			return zero, fmt.Errorf("%w: %w", tierstore.ErrCorrupt, err)
		}
		return zero, err
	}
	return v, nil
}

// Set encodes v and stores it under key until expiry.
func (t Typed[T]) Set(ctx context.Context, key string, v T, expiry time.Time) error {
	b, err := t.codec().Marshal(v)
	if err != nil {
		return err
	}
	return t.Store.Set(ctx, key, b, expiry)
}

// Delete removes key.
func (t Typed[T]) Delete(ctx context.Context, key string) error {
	return t.Store.Delete(ctx, key)
}
