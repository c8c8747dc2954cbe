package storetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
)

// runVersioned checks tierstore.Versioned: conditional writes that never
// re-create a deleted key and never overwrite a write the caller did not
// read. slack is how much later than the truth a reported expiry may be
// (see FrozenTTLs).
func runVersioned(t *testing.T, newStore func(t *testing.T) tierstore.Store, slack time.Duration) {
	ctx := context.Background()
	hour := func() time.Time { return time.Now().Add(time.Hour) }
	versioned := func(t *testing.T) (tierstore.Store, tierstore.Versioned) {
		s := newStore(t)
		v, ok := s.(tierstore.Versioned)
		if !ok {
			t.Skip("store does not implement tierstore.Versioned")
		}
		return s, v
	}
	setIf := func(t *testing.T, v tierstore.Versioned, key, value string, want tierstore.Version) tierstore.Version {
		t.Helper()
		got, err := v.SetIf(ctx, key, []byte(value), hour(), want)
		if err != nil {
			t.Fatalf("SetIf(%q, want %d): %v", key, want, err)
		}
		if got == tierstore.NoVersion {
			t.Fatalf("SetIf(%q) returned NoVersion", key)
		}
		return got
	}
	getVersion := func(t *testing.T, v tierstore.Versioned, key, want string) tierstore.Version {
		t.Helper()
		b, ver, _, err := v.GetVersion(ctx, key, tierstore.NoVersion)
		if err != nil || string(b) != want {
			t.Fatalf("GetVersion(%q) = %q, %v; want %q", key, b, err, want)
		}
		return ver
	}
	conflict := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, tierstore.ErrConflict) {
			t.Fatalf("%s: error = %v, want ErrConflict", what, err)
		}
	}

	t.Run("SetIfAbsentCreatesOnce", func(t *testing.T) {
		s, v := versioned(t)
		v1 := setIf(t, v, "k", "a", tierstore.NoVersion)
		_, err := v.SetIf(ctx, "k", []byte("b"), hour(), tierstore.NoVersion)
		conflict(t, "second SetIf(absent)", err)
		if got := getVersion(t, v, "k", "a"); got != v1 {
			t.Fatalf("GetVersion = %d, SetIf returned %d", got, v1)
		}
		mustGet(t, s, "k", "a")
	})
	t.Run("SetIfOnReadVersionWinsOnceAndVersionsGrow", func(t *testing.T) {
		s, v := versioned(t)
		v1 := setIf(t, v, "k", "a", tierstore.NoVersion)
		v2 := setIf(t, v, "k", "b", v1)
		if v2 <= v1 {
			t.Fatalf("version after SetIf %d, not greater than %d", v2, v1)
		}
		_, err := v.SetIf(ctx, "k", []byte("c"), hour(), v1) // a stale read
		conflict(t, "SetIf on a replaced version", err)
		mustGet(t, s, "k", "b")
	})
	t.Run("ViewVersionAgreesWithGetVersion", func(t *testing.T) {
		_, v := versioned(t)
		vv, ok := v.(tierstore.VersionViewer)
		if !ok {
			t.Skip("store does not implement tierstore.VersionViewer")
		}
		called := false
		err := vv.ViewVersion(ctx, "absent", tierstore.NoVersion, func([]byte, tierstore.Version, time.Time) error { called = true; return nil })
		if !errors.Is(err, tierstore.ErrNotFound) || called {
			t.Fatalf("ViewVersion(absent) = %v, fn called %v; want ErrNotFound and no call", err, called)
		}
		v1 := setIf(t, v, "k", "a", tierstore.NoVersion)
		v2 := setIf(t, v, "k", "b", v1)
		for range 2 { // a miss, then (for cached tiers) a hit
			var got []byte
			var ver tierstore.Version
			var expiry time.Time
			err := vv.ViewVersion(ctx, "k", v2, func(b []byte, v tierstore.Version, e time.Time) error {
				got, ver, expiry = bytes.Clone(b), v, e
				return nil
			})
			if err != nil || string(got) != "b" || ver != v2 {
				t.Fatalf("ViewVersion = %q, version %d, %v; want %q, version %d", got, ver, err, "b", v2)
			}
			if !expiry.IsZero() && (expiry.Before(time.Now().Add(59*time.Minute)) || expiry.After(hour().Add(slack))) {
				t.Fatalf("ViewVersion expiry %v, want about an hour from now", expiry)
			}
		}
		boom := errors.New("boom")
		if err := vv.ViewVersion(ctx, "k", tierstore.NoVersion, func([]byte, tierstore.Version, time.Time) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("ViewVersion error = %v, want fn's error", err)
		}
	})
	t.Run("DeletedKeyIsNeverReCreatedBySetIf", func(t *testing.T) {
		s, v := versioned(t)
		v1 := setIf(t, v, "k", "a", tierstore.NoVersion)
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		_, err := v.SetIf(ctx, "k", []byte("b"), hour(), v1)
		conflict(t, "SetIf after Delete", err)
		mustMiss(t, s, "k")
		// Written afresh, the key gets a Version it never had.
		if v2 := setIf(t, v, "k", "c", tierstore.NoVersion); v2 <= v1 {
			t.Fatalf("version after re-create %d, not greater than %d", v2, v1)
		}
	})
	t.Run("DeleteIfNeedsTheVersion", func(t *testing.T) {
		s, v := versioned(t)
		v1 := setIf(t, v, "k", "a", tierstore.NoVersion)
		v2 := setIf(t, v, "k", "b", v1)
		conflict(t, "DeleteIf(old version)", v.DeleteIf(ctx, "k", v1))
		conflict(t, "DeleteIf(absent) of a present key", v.DeleteIf(ctx, "k", tierstore.NoVersion))
		mustGet(t, s, "k", "b")
		if err := v.DeleteIf(ctx, "k", v2); err != nil {
			t.Fatalf("DeleteIf(current): %v", err)
		}
		mustMiss(t, s, "k")
		if err := v.DeleteIf(ctx, "k", tierstore.NoVersion); err != nil {
			t.Fatalf("DeleteIf(absent) of an absent key: %v", err)
		}
		conflict(t, "DeleteIf(a version) of an absent key", v.DeleteIf(ctx, "k", v2))
	})
	t.Run("PlainSetChangesTheVersion", func(t *testing.T) {
		s, v := versioned(t)
		mustSet(t, s, "k", []byte("a"), hour())
		va := getVersion(t, v, "k", "a")
		if va == tierstore.NoVersion {
			t.Fatal("a value written by Set has NoVersion")
		}
		vb := setIf(t, v, "k", "b", va)
		mustSet(t, s, "k", []byte("c"), hour())
		_, err := v.SetIf(ctx, "k", []byte("d"), hour(), vb)
		conflict(t, "SetIf over a plain Set", err)
		mustGet(t, s, "k", "c")
	})
	t.Run("SetIfPastExpiryDeletesUnderTheCondition", func(t *testing.T) {
		s, v := versioned(t)
		v1 := setIf(t, v, "k", "a", tierstore.NoVersion)
		past := time.Now().Add(-time.Second)
		_, err := v.SetIf(ctx, "k", []byte("b"), past, tierstore.NoVersion)
		conflict(t, "SetIf(past expiry, absent) of a present key", err)
		mustGet(t, s, "k", "a")
		if got, err := v.SetIf(ctx, "k", []byte("b"), past, v1); err != nil || got != tierstore.NoVersion {
			t.Fatalf("SetIf(past expiry, current) = %d, %v; want NoVersion, nil", got, err)
		}
		mustMiss(t, s, "k")
	})
	t.Run("GetVersionReportsExpiry", func(t *testing.T) {
		_, v := versioned(t)
		exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
		if _, err := v.SetIf(ctx, "k", []byte("a"), exp, tierstore.NoVersion); err != nil {
			t.Fatal(err)
		}
		_, _, got, err := v.GetVersion(ctx, "k", tierstore.NoVersion)
		if err != nil || got.After(exp.Add(slack)) || exp.Sub(got) > 2*time.Second {
			t.Fatalf("GetVersion expiry = %v, %v; want at or shortly before %v", got, err, exp)
		}
		if _, _, _, err := v.GetVersion(ctx, "absent", tierstore.NoVersion); !errors.Is(err, tierstore.ErrNotFound) {
			t.Fatalf("GetVersion(absent) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("ConcurrentSetIfOnOneVersionHasOneWinner", func(t *testing.T) {
		s, v := versioned(t)
		v1 := setIf(t, v, "k", "start", tierstore.NoVersion)
		const n = 8
		var wg sync.WaitGroup
		wins := make(chan string, n)
		for i := range n {
			value := string(rune('a' + i))
			wg.Go(func() {
				if _, err := v.SetIf(ctx, "k", []byte(value), hour(), v1); err == nil {
					wins <- value
				} else if !errors.Is(err, tierstore.ErrConflict) {
					t.Errorf("SetIf: %v", err)
				}
			})
		}
		wg.Wait()
		close(wins)
		var won []string
		for w := range wins {
			won = append(won, w)
		}
		if len(won) != 1 {
			t.Fatalf("%d writers won on one version, want 1: %q", len(won), won)
		}
		mustGet(t, s, "k", won[0])
	})
	t.Run("NoWantedVersionIsUnconditional", func(t *testing.T) {
		s, v := versioned(t)
		for _, want := range []tierstore.Version{^tierstore.Version(0), 1, 1 << 40} {
			_, err := v.SetIf(ctx, "k", []byte("x"), hour(), want)
			conflict(t, "SetIf(absent key, a version)", err)
			conflict(t, "DeleteIf(absent key, a version)", v.DeleteIf(ctx, "k", want))
		}
		mustMiss(t, s, "k")
		setIf(t, v, "k", "a", tierstore.NoVersion)
		for _, want := range []tierstore.Version{^tierstore.Version(0), 1} {
			_, err := v.SetIf(ctx, "k", []byte("x"), hour(), want)
			conflict(t, "SetIf(another version)", err)
			conflict(t, "DeleteIf(another version)", v.DeleteIf(ctx, "k", want))
		}
		mustGet(t, s, "k", "a")
	})
	t.Run("InvalidInputIsRefused", func(t *testing.T) {
		_, v := versioned(t)
		if _, err := v.SetIf(ctx, "", []byte("a"), hour(), tierstore.NoVersion); !errors.Is(err, tierstore.ErrInvalidKey) {
			t.Fatalf("SetIf(empty key) error = %v, want ErrInvalidKey", err)
		}
		big := make([]byte, tierstore.DefaultMaxValueBytes+1)
		if _, err := v.SetIf(ctx, "k", big, hour(), tierstore.NoVersion); !errors.Is(err, tierstore.ErrTooLarge) {
			t.Fatalf("SetIf(too large) error = %v, want ErrTooLarge", err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := v.SetIf(cancelled, "k", []byte("a"), hour(), tierstore.NoVersion); !errors.Is(err, context.Canceled) {
			t.Fatalf("SetIf(cancelled) error = %v, want context.Canceled", err)
		}
		if err := v.DeleteIf(ctx, "", tierstore.NoVersion); !errors.Is(err, tierstore.ErrInvalidKey) {
			t.Fatalf("DeleteIf(empty key) error = %v, want ErrInvalidKey", err)
		}
		if err := v.DeleteIf(cancelled, "k", tierstore.NoVersion); !errors.Is(err, context.Canceled) {
			t.Fatalf("DeleteIf(cancelled) error = %v, want context.Canceled", err)
		}
		if _, _, _, err := v.GetVersion(cancelled, "k", tierstore.NoVersion); !errors.Is(err, context.Canceled) {
			t.Fatalf("GetVersion(cancelled) error = %v, want context.Canceled", err)
		}
		if _, _, _, err := v.GetVersion(ctx, "k", tierstore.NoVersion); !errors.Is(err, tierstore.ErrNotFound) {
			t.Fatalf("after refused writes GetVersion error = %v, want ErrNotFound", err)
		}
	})
}
