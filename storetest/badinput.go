package storetest

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
)

// Raw writes bytes that tierstore did not write under a key of the store:
// kind is "corrupt" (foreign bytes), "truncated" (a valid value cut
// short) or "list" (a Redis list where a string belongs). Nil for stores
// without a Redis side.
type Raw func(t *testing.T, key, kind string)

// entryPoint is one public method of a Store, called with a key.
type entryPoint struct {
	name string
	call func(ctx context.Context, s tierstore.Store, key string) error
}

// entryPoints returns the methods s has: those of Store, and those of
// the optional capabilities it implements.
func entryPoints(s tierstore.Store) []entryPoint {
	hour := time.Now().Add(time.Hour)
	eps := []entryPoint{
		{"Get", func(ctx context.Context, s tierstore.Store, k string) error { _, err := s.Get(ctx, k); return err }},
		{"Set", func(ctx context.Context, s tierstore.Store, k string) error { return s.Set(ctx, k, []byte("v"), hour) }},
		{"Delete", func(ctx context.Context, s tierstore.Store, k string) error { return s.Delete(ctx, k) }},
	}
	if _, ok := s.(tierstore.VersionViewer); ok {
		eps = append(eps, entryPoint{"ViewVersion", func(ctx context.Context, s tierstore.Store, k string) error {
			return s.(tierstore.VersionViewer).ViewVersion(ctx, k, tierstore.NoVersion, func([]byte, tierstore.Version, time.Time) error { return nil })
		}})
	}
	if _, ok := s.(tierstore.Toucher); ok {
		eps = append(eps, entryPoint{"Touch", func(ctx context.Context, s tierstore.Store, k string) error {
			return s.(tierstore.Toucher).Touch(ctx, k, hour)
		}})
	}
	return eps
}

// RunBadInput calls every entry point of a store with bad input and checks
// that each yields its documented error and nothing panics. Goroutine
// leaks are caught by the calling package's goleak TestMain.
func RunBadInput(t *testing.T, newStore func(t *testing.T) tierstore.Store, raw Raw) {
	ctx := context.Background()
	badKeys := map[string]string{
		"empty": "", "huge": strings.Repeat("k", 1<<20), "binary": "\x00\x01\xfe\xff",
		"control": "a\tb", "invalid UTF-8": "\xc3\x28",
	}
	for name, key := range badKeys {
		t.Run("key "+name, func(t *testing.T) {
			s := newStore(t)
			for _, ep := range entryPoints(s) {
				if err := ep.call(ctx, s, key); !errors.Is(err, tierstore.ErrInvalidKey) {
					t.Errorf("%s: %v, want ErrInvalidKey", ep.name, err)
				}
			}
		})
	}
	t.Run("oversized value", func(t *testing.T) {
		s := newStore(t)
		err := s.Set(ctx, "k", make([]byte, tierstore.DefaultMaxValueBytes+1), time.Now().Add(time.Hour))
		if !errors.Is(err, tierstore.ErrTooLarge) {
			t.Fatalf("Set: %v, want ErrTooLarge", err)
		}
	})
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	for name, c := range map[string]struct {
		ctx  context.Context
		want error
	}{
		"cancelled context": {cancelled, context.Canceled},
		"expired context":   {expired, context.DeadlineExceeded},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			for _, ep := range entryPoints(s) {
				if err := ep.call(c.ctx, s, "k"); !errors.Is(err, c.want) {
					t.Errorf("%s: %v, want %v", ep.name, err, c.want)
				}
			}
			if l, ok := s.(tierstore.Lister); ok {
				if err := l.Keys(c.ctx, func(string) bool { return true }); !errors.Is(err, c.want) {
					t.Errorf("Keys: %v, want %v", err, c.want)
				}
			}
		})
	}
	t.Run("closed store", func(t *testing.T) {
		s := newStore(t)
		closer, ok := s.(io.Closer)
		if !ok {
			return // the store owns nothing to close (l2: the caller owns the client)
		}
		if err := closer.Close(); err != nil {
			t.Fatal(err)
		}
		for _, ep := range entryPoints(s) {
			if err := ep.call(ctx, s, "k"); !errors.Is(err, tierstore.ErrClosed) {
				t.Errorf("%s: %v, want ErrClosed", ep.name, err)
			}
		}
		if err := closer.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
	if raw == nil {
		return
	}
	for _, kind := range []string{"corrupt", "truncated", "list"} {
		t.Run("Redis holds "+kind+" bytes", func(t *testing.T) {
			s := newStore(t)
			raw(t, "k", kind)
			for _, ep := range entryPoints(s) {
				err := ep.call(ctx, s, "k")
				switch ep.name {
				case "Get", "ViewVersion", "GetVersion":
					if !errors.Is(err, tierstore.ErrCorrupt) {
						t.Errorf("%s: %v, want ErrCorrupt", ep.name, err)
					}
				default: // writes replace or remove whatever is there
					if err != nil {
						t.Errorf("%s: %v, want nil", ep.name, err)
					}
					raw(t, "k", kind)
				}
			}
		})
	}
}
