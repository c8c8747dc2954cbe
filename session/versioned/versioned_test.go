package versioned_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/session/versioned"
)

const key = "k"

var ctx = context.Background()

// source is a memory store holding key at a first version, as a save's
// base; it returns the store and that version.
func source(t *testing.T, value string) (*l1.Store, tierstore.Version) {
	t.Helper()
	mem, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	v, err := mem.SetIf(ctx, key, []byte(value), time.Time{}, tierstore.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	return mem, v
}

// write writes key as another request would, and returns its version.
func write(t *testing.T, s tierstore.Versioned, value string, want tierstore.Version) tierstore.Version {
	t.Helper()
	v, err := s.SetIf(ctx, key, []byte(value), time.Time{}, want)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// stored is key's value and version in s, or "" and NoVersion if absent.
func stored(t *testing.T, s tierstore.Versioned) (string, tierstore.Version) {
	t.Helper()
	b, v, _, err := s.GetVersion(ctx, key, tierstore.NoVersion)
	if errors.Is(err, tierstore.ErrNotFound) {
		return "", tierstore.NoVersion
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), v
}

// merges records each call of a Merge and answers with fn.
type merges struct {
	seen []string // the current values merged, in order
	fn   func(current string) (next string, write bool, err error)
}

func (m *merges) merge(current []byte, _ tierstore.Version, _ time.Time) ([]byte, time.Time, bool, error) {
	m.seen = append(m.seen, string(current))
	next, write, err := m.fn(string(current))
	return []byte(next), time.Time{}, write, err
}

// appendMine is the merge of a request that appends "+mine".
func appendMine(current string) (string, bool, error) { return current + "+mine", true, nil }

func TestSaveWithoutConflictWritesOnTheBase(t *testing.T) {
	mem, base := source(t, "a")
	m := &merges{fn: appendMine}
	v, err := versioned.Save(ctx, mem, key, base, []byte("a+mine"), time.Time{}, m.merge)
	if err != nil {
		t.Fatal(err)
	}
	if got, at := stored(t, mem); got != "a+mine" || at != v || v == base {
		t.Fatalf("stored %q at %d, Save returned %d (base %d)", got, at, v, base)
	}
	if len(m.seen) != 0 {
		t.Fatalf("merged %q without a conflict", m.seen)
	}
}

func TestSaveMergesWithTheVersionThatWonAndWritesOnIt(t *testing.T) {
	mem, base := source(t, "a")
	write(t, mem, "b", base) // another request saved since the base
	m := &merges{fn: appendMine}
	v, err := versioned.Save(ctx, mem, key, base, []byte("a+mine"), time.Time{}, m.merge)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.seen) != 1 || m.seen[0] != "b" {
		t.Fatalf("merged %q, want once with the other request's b", m.seen)
	}
	if got, at := stored(t, mem); got != "b+mine" || at != v {
		t.Fatalf("stored %q at %d, Save returned %d; want b+mine at the returned version", got, at, v)
	}
}

func TestSaveWithoutAWriteLeavesTheCurrentValue(t *testing.T) {
	mem, base := source(t, "a")
	other := write(t, mem, "b", base)
	m := &merges{fn: func(string) (string, bool, error) { return "", false, nil }}
	v, err := versioned.Save(ctx, mem, key, base, []byte("a"), time.Time{}, m.merge)
	if err != nil {
		t.Fatal(err)
	}
	if got, at := stored(t, mem); got != "b" || at != other || v != other {
		t.Fatalf("stored %q at %d, Save returned %d; want b untouched at %d", got, at, v, other)
	}
}

// hooked is a Versioned store that runs before and after each
// conditional write (numbered from 1), if set: another request's moves.
type hooked struct {
	*l1.Store
	setIfs        int
	before, after func(n int)
}

func (h *hooked) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version) (tierstore.Version, error) {
	h.setIfs++
	if h.before != nil {
		h.before(h.setIfs)
	}
	v, err := h.Store.SetIf(ctx, key, value, expiry, want)
	if h.after != nil {
		h.after(h.setIfs)
	}
	return v, err
}

// racing is a store where another request writes key just before each
// of the first n conditional writes: each of them conflicts.
func racing(t *testing.T, mem *l1.Store, n int) *hooked {
	return &hooked{Store: mem, before: func(i int) {
		if i <= n {
			_, v := stored(t, mem)
			write(t, mem, fmt.Sprint("other", i), v)
		}
	}}
}

func TestSaveGivesUpAfterMaxAttemptsConflicts(t *testing.T) {
	for _, n := range []int{versioned.MaxAttempts - 1, versioned.MaxAttempts} {
		t.Run(fmt.Sprint(n, " conflicts"), func(t *testing.T) {
			mem, base := source(t, "a")
			s := racing(t, mem, n)
			m := &merges{fn: appendMine}
			_, err := versioned.Save(ctx, s, key, base, []byte("a+mine"), time.Time{}, m.merge)
			got, _ := stored(t, mem)
			if n < versioned.MaxAttempts {
				if err != nil || got != fmt.Sprint("other", n, "+mine") {
					t.Fatalf("after %d conflicts: Save = %v, stored %q; want the last merge written", n, err, got)
				}
				return
			}
			if !errors.Is(err, tierstore.ErrConflict) {
				t.Fatalf("Save after %d conflicts = %v, want an error wrapping ErrConflict", n, err)
			}
			if s.setIfs != versioned.MaxAttempts || len(m.seen) != versioned.MaxAttempts-1 {
				t.Fatalf("%d conditional writes and %d merges, want %d and %d", s.setIfs, len(m.seen), versioned.MaxAttempts, versioned.MaxAttempts-1)
			}
			if got != fmt.Sprint("other", n) {
				t.Fatalf("stored %q, want the other request's last write", got)
			}
		})
	}
}

// A session deleted since the base (logout, renewal, an operator's
// delete, expiry) is never written again, whatever the merge would make
// of it; and a merge that finds the current value no session of its own
// ends the same.
func TestSaveOfAKeyDeletedSinceTheBaseWritesNothing(t *testing.T) {
	for _, how := range []string{"deleted", "created by another, then deleted", "unreadable to the merge"} {
		t.Run(how, func(t *testing.T) {
			mem, base := source(t, "a")
			var s tierstore.Versioned = mem
			m := &merges{fn: appendMine}
			switch how {
			case "deleted":
				if err := mem.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
			case "created by another, then deleted":
				// A save of a new key (base NoVersion) finds it taken,
				// and deleted by the time it reads it.
				base = tierstore.NoVersion
				s = &hooked{Store: mem, after: func(n int) {
					if n == 1 {
						if err := mem.Delete(ctx, key); err != nil {
							t.Fatal(err)
						}
					}
				}}
			case "unreadable to the merge":
				write(t, mem, "not a session", base)
				m.fn = func(string) (string, bool, error) { return "", false, versioned.ErrGone }
			}
			before, beforeV := stored(t, mem)
			v, err := versioned.Save(ctx, s, key, base, []byte("a+mine"), time.Time{}, m.merge)
			if !errors.Is(err, versioned.ErrGone) || v != tierstore.NoVersion {
				t.Fatalf("Save = %d, %v; want ErrGone", v, err)
			}
			if how == "created by another, then deleted" {
				before, beforeV = "", tierstore.NoVersion
			}
			if got, at := stored(t, mem); got != before || at != beforeV {
				t.Fatalf("stored %q at %d after Save, want %q at %d untouched", got, at, before, beforeV)
			}
			if how != "unreadable to the merge" && len(m.seen) != 0 {
				t.Fatalf("merged %q: a deleted key has nothing to merge", m.seen)
			}
		})
	}
}

// staleCache is a caching Versioned store at its laziest: it keeps the
// first copy it read of each key and serves it to every read whose
// atLeast it meets (as a tiered store's copy whose invalidation is in
// flight would), else reads through, honouring atLeast as GetVersion's
// contract says.
type staleCache struct {
	*l1.Store
	copies map[string]staleCopy
	reads  []tierstore.Version // the atLeast of each read
}

type staleCopy struct {
	value   []byte
	version tierstore.Version
}

func (c *staleCache) GetVersion(ctx context.Context, key string, atLeast tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	c.reads = append(c.reads, atLeast)
	if cp, ok := c.copies[key]; ok && cp.version >= atLeast {
		return bytes.Clone(cp.value), cp.version, time.Time{}, nil
	}
	b, v, exp, err := c.Store.GetVersion(ctx, key, atLeast)
	if _, ok := c.copies[key]; !ok && err == nil {
		c.copies[key] = staleCopy{bytes.Clone(b), v}
	}
	return b, v, exp, err
}

func TestSaveRereadsPastAStaleCachedCopy(t *testing.T) {
	mem, base := source(t, "a")
	cache := &staleCache{Store: mem, copies: map[string]staleCopy{}}
	if got, _ := stored(t, cache); got != "a" { // the cache keeps the base
		t.Fatalf("read %q", got)
	}
	write(t, mem, "b", base) // past the cache
	m := &merges{fn: appendMine}
	if _, err := versioned.Save(ctx, cache, key, base, []byte("a+mine"), time.Time{}, m.merge); err != nil {
		t.Fatalf("Save through a stale cache = %v", err)
	}
	if len(m.seen) != 1 || m.seen[0] != "b" {
		t.Fatalf("merged %q, want once with b, past the cached copy of the base", m.seen)
	}
	if last := cache.reads[len(cache.reads)-1]; last != base+1 {
		t.Fatalf("the read after the conflict asked for at least %d, want %d (the version that lost, plus one)", last, base+1)
	}
	if got, _ := stored(t, mem); got != "b+mine" {
		t.Fatalf("stored %q, want b+mine", got)
	}
}

func TestSaveReturnsTheStoresAndTheMergesErrors(t *testing.T) {
	mem, base := source(t, "a")
	write(t, mem, "b", base)
	bad := errors.New("cannot decode")
	m := &merges{fn: func(string) (string, bool, error) { return "", false, bad }}
	if _, err := versioned.Save(ctx, mem, key, base, []byte("a+mine"), time.Time{}, m.merge); !errors.Is(err, bad) {
		t.Fatalf("Save = %v, want the merge's error", err)
	}
	if got, _ := stored(t, mem); got != "b" {
		t.Fatalf("stored %q after a failed merge, want b untouched", got)
	}
	mem.Close()
	if _, err := versioned.Save(ctx, mem, key, base, []byte("a+mine"), time.Time{}, m.merge); !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("Save on a closed store = %v, want ErrClosed", err)
	}
}

func TestDeleteMergesWhatOthersSavedThenDeletes(t *testing.T) {
	mem, base := source(t, "a")
	write(t, mem, "b", base)
	var seen []string
	err := versioned.Delete(ctx, mem, key, base, func(current []byte, _ tierstore.Version, _ time.Time) error {
		seen = append(seen, string(current))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != "b" {
		t.Fatalf("merged %q, want once with b", seen)
	}
	if got, _ := stored(t, mem); got != "" {
		t.Fatalf("stored %q after Delete", got)
	}
}

func TestDeleteOfAKeyDeletedSinceTheBaseIsGone(t *testing.T) {
	mem, base := source(t, "a")
	if err := mem.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	err := versioned.Delete(ctx, mem, key, base, func([]byte, tierstore.Version, time.Time) error {
		t.Fatal("merged a deleted key")
		return nil
	})
	if !errors.Is(err, versioned.ErrGone) {
		t.Fatalf("Delete = %v, want ErrGone", err)
	}
}

func TestDeleteGivesUpAfterMaxAttemptsConflicts(t *testing.T) {
	mem, base := source(t, "a")
	write(t, mem, "b", base)
	merges := 0
	err := versioned.Delete(ctx, mem, key, base, func(_ []byte, v tierstore.Version, _ time.Time) error {
		merges++
		write(t, mem, fmt.Sprint("other", merges), v) // another save after each read
		return nil
	})
	if !errors.Is(err, tierstore.ErrConflict) || merges != versioned.MaxAttempts-1 {
		t.Fatalf("Delete = %v after %d merges, want ErrConflict after %d", err, merges, versioned.MaxAttempts-1)
	}
	if got, _ := stored(t, mem); got != fmt.Sprint("other", merges) {
		t.Fatalf("stored %q, want the other request's last save", got)
	}
}
