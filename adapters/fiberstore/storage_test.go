package fiberstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	fiber2 "github.com/gofiber/fiber/v2"
	fiber3 "github.com/gofiber/fiber/v3"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/fiberstore"
	"github.com/tierstore/tierstore/internal/testenv/tieredpair"
	"github.com/tierstore/tierstore/session/sessionid"
)

// One Storage is both versions' Storage.
var (
	_ fiber2.Storage = (*fiberstore.Storage)(nil)
	_ fiber3.Storage = (*fiberstore.Storage)(nil)
)

func TestStorage(t *testing.T) {
	p := tieredpair.Start(t, "storage:")
	s := fiberstore.New(p.A)
	ctx := context.Background()
	if b, err := s.Get("missing"); b != nil || err != nil {
		t.Fatalf("Get of a missing key: %q, %v; want nil, nil", b, err)
	}
	if err := s.Set("k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if b, err := s.GetWithContext(ctx, "k"); string(b) != "v" || err != nil {
		t.Fatalf("Get after Set: %q, %v", b, err)
	}
	// The key is stored hashed, under the prefix.
	if _, err := p.Truth.Get(ctx, "k"); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatalf("the raw key is in Redis: %v", err)
	}
	if b, err := p.Truth.Get(ctx, sessionid.Key(fiberstore.DefaultKeyPrefix, "k")); string(b) != "v" {
		t.Fatalf("under the prefix and the key's hash Redis holds %q, %v", b, err)
	}
	// Seen on B at once (B never read it).
	if b, err := fiberstore.New(p.B).Get("k"); string(b) != "v" || err != nil {
		t.Fatalf("B reads %q, %v", b, err)
	}
	if err := s.Delete("k"); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Get("k"); b != nil || err != nil {
		t.Fatalf("Get after Delete: %q, %v", b, err)
	}
	if err := s.Delete("k"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	// An expiry: the key is gone once it passed (Redis's own expiry).
	if err := s.SetWithContext(ctx, "short", []byte("v"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	_, _, expiry, err := p.Truth.GetVersion(ctx, sessionid.Key(fiberstore.DefaultKeyPrefix, "short"), tierstore.NoVersion)
	if err != nil || expiry.IsZero() || time.Until(expiry) > 50*time.Millisecond {
		t.Fatalf("stored with expiry %v (%v), want within 50ms", expiry, err)
	}
	if err := s.Set("k", []byte("v"), -time.Second); err == nil {
		t.Fatal("Set with a negative expiration: no error")
	}
	// Fiber's contract: an empty key or value is ignored without an error.
	if err := s.Set("", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("empty", nil, 0); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Get("empty"); b != nil || err != nil {
		t.Fatalf("an empty value was stored: %q, %v", b, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("missing"); err != nil {
		t.Fatalf("after Close the store is still the application's: %v", err)
	}
}

// A Store failure is an error, not a missing key.
func TestStoreFailureIsAnError(t *testing.T) {
	p := tieredpair.Start(t, "fail:")
	s := fiberstore.New(p.A)
	p.A.Close()
	if b, err := s.Get("k"); !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("Get on a closed store: %q, %v", b, err)
	}
	if err := s.Set("k", []byte("v"), 0); !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("Set on a closed store: %v", err)
	}
}

// Reset deletes the Storage's keys, and nothing else in the store.
func TestResetDeletesOnlyItsOwnKeys(t *testing.T) {
	p := tieredpair.Start(t, "reset:")
	ctx := context.Background()
	sessions, csrf := fiberstore.New(p.A), fiberstore.New(p.A)
	csrf.KeyPrefix = "csrf:"
	for _, s := range []*fiberstore.Storage{sessions, csrf} {
		for _, k := range []string{"a", "b", "c"} {
			if err := s.Set(k, []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.A.Set(ctx, "other", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := sessions.ResetWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if b, _ := sessions.Get(k); b != nil {
			t.Fatalf("%s survived Reset", k)
		}
		if b, _ := csrf.Get(k); string(b) != "v" {
			t.Fatalf("another prefix's %s was reset", k)
		}
	}
	if b, err := p.Truth.Get(ctx, "other"); string(b) != "v" {
		t.Fatalf("a key outside the Storage was reset: %q, %v", b, err)
	}
	// A store that cannot list its keys: a clear error, nothing deleted.
	unlisted := fiberstore.New(struct{ tierstore.Store }{p.A})
	unlisted.KeyPrefix = "csrf:"
	if err := unlisted.Reset(); !errors.Is(err, fiberstore.ErrResetUnsupported) {
		t.Fatalf("Reset on a store without Lister: %v", err)
	}
	if b, _ := csrf.Get("a"); string(b) != "v" {
		t.Fatal("the refused Reset deleted a key")
	}
}
