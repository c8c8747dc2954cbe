package scsstore_test

import (
	"context"
	"encoding/gob"
	"errors"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/scsstore"
	"github.com/tierstore/tierstore/l1"
)

type cart struct{ Items []string }

func init() {
	gob.Register(cart{})
	gob.Register(time.Time{})
	gob.Register(map[string]int{})
}

func memory(t *testing.T) *l1.Store {
	mem, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	return mem
}

// requestCtx is the context of one request: its Done channel pairs the
// adapter's loads and saves.
func requestCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

func encode(t *testing.T, deadline time.Time, values map[string]any) []byte {
	t.Helper()
	b, err := scs.GobCodec{}.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func find(t *testing.T, s *scsstore.Store, ctx context.Context, token string) {
	t.Helper()
	if _, found, err := s.FindCtx(ctx, token); !found || err != nil {
		t.Fatalf("FindCtx = %v, %v", found, err)
	}
}

func commit(t *testing.T, s *scsstore.Store, ctx context.Context, token string, b []byte, expiry time.Time) {
	t.Helper()
	if err := s.CommitCtx(ctx, token, b, expiry); err != nil {
		t.Fatalf("CommitCtx: %v", err)
	}
}

// stored returns token's deadline, values and expiry in store.
func stored(t *testing.T, store tierstore.Store, token string) (time.Time, map[string]any, time.Time) {
	t.Helper()
	b, _, expiry, err := store.(tierstore.Versioned).GetVersion(context.Background(), "scs:"+token, tierstore.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	deadline, values, err := scs.GobCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return deadline, values, expiry
}

func TestMergeAppliesEachRequestsChangesToTheCurrentData(t *testing.T) {
	mem := memory(t)
	a, b := scsstore.New(mem), scsstore.New(mem) // two instances
	deadline := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	at := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	start := map[string]any{
		"keep": "same", "int": 1, "bytes": []byte("abc"), "time": at,
		"cart": cart{Items: []string{"x"}}, "map": map[string]int{"a": 1},
		"gone-in-a": "1", "gone-in-b": "2",
	}
	commit(t, a, requestCtx(t), "tok", encode(t, deadline, start), deadline)

	ra, rb, rc := requestCtx(t), requestCtx(t), requestCtx(t)
	find(t, a, ra, "tok")
	find(t, b, rb, "tok")
	find(t, b, rc, "tok")

	// B saves first: changes int and cart, removes gone-in-b, adds new-b.
	vb := clone(start)
	vb["int"], vb["cart"], vb["new-b"] = 2, cart{Items: []string{"x", "y"}}, "b"
	delete(vb, "gone-in-b")
	commit(t, b, rb, "tok", encode(t, deadline, vb), deadline)

	// A saves on its stale base: changes bytes, time and map, removes
	// gone-in-a, adds new-a; int, cart and gone-in-b it saves as loaded.
	va := clone(start)
	va["bytes"], va["time"], va["map"], va["new-a"] = []byte("abd"), at.Add(time.Second), map[string]int{"a": 2}, "a"
	delete(va, "gone-in-a")
	commit(t, a, ra, "tok", encode(t, deadline, va), deadline)

	// C saves last, every key as loaded but one it adds: it must not
	// take any unchanged value of any type for a change of its own.
	vc := clone(start)
	vc["new-c"] = "c"
	commit(t, b, rc, "tok", encode(t, deadline, vc), deadline)

	want := map[string]any{
		"keep": "same", "int": 2, "bytes": []byte("abd"), "time": at.Add(time.Second),
		"cart": cart{Items: []string{"x", "y"}}, "map": map[string]int{"a": 2},
		"new-a": "a", "new-b": "b", "new-c": "c",
	}
	if _, got, _ := stored(t, mem, "tok"); !reflect.DeepEqual(got, want) {
		t.Fatalf("merged session:\n got %#v\nwant %#v", got, want)
	}
}

func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestMergeSameKeyLastWriterWins(t *testing.T) {
	mem := memory(t)
	s := scsstore.New(mem)
	deadline := time.Now().Add(time.Hour)
	commit(t, s, requestCtx(t), "tok", encode(t, deadline, map[string]any{"k": "0"}), deadline)
	r1, r2 := requestCtx(t), requestCtx(t)
	find(t, s, r1, "tok")
	find(t, s, r2, "tok")
	commit(t, s, r1, "tok", encode(t, deadline, map[string]any{"k": "1"}), deadline)
	commit(t, s, r2, "tok", encode(t, deadline, map[string]any{}), deadline) // removes it, last
	if _, got, _ := stored(t, mem, "tok"); len(got) != 0 {
		t.Fatalf("session = %v, want the last save's removal of k", got)
	}
}

// The deadline is merged like a key; the expiry follows it unless the
// request's was an idle timeout's, shorter.
func TestMergeDeadlineAndExpiry(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	d0, d1, d2 := now.Add(time.Hour), now.Add(2*time.Hour), now.Add(3*time.Hour)
	idle := now.Add(10 * time.Minute)
	for _, c := range []struct {
		name                     string
		other                    time.Time // the deadline the concurrent save wrote
		mine, myExpiry           time.Time
		wantDeadline, wantExpiry time.Time
	}{
		{"only the other changed it", d1, d0, d0, d1, d1},
		{"only mine changed it", d0, d2, d2, d2, d2},
		{"both: mine, saved last", d1, d2, d2, d2, d2},
		{"idle timeout kept", d1, d0, idle, d1, idle},
		{"idle timeout capped by an earlier deadline", now.Add(5 * time.Minute), d0, idle, now.Add(5 * time.Minute), now.Add(5 * time.Minute)},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := memory(t)
			s := scsstore.New(mem)
			v := map[string]any{"k": "v"}
			commit(t, s, requestCtx(t), "tok", encode(t, d0, v), d0)
			mine, other := requestCtx(t), requestCtx(t)
			find(t, s, mine, "tok")
			find(t, s, other, "tok")
			commit(t, s, other, "tok", encode(t, c.other, map[string]any{"k": "v", "o": "1"}), c.other)
			commit(t, s, mine, "tok", encode(t, c.mine, v), c.myExpiry)
			deadline, values, expiry := stored(t, mem, "tok")
			if !deadline.Equal(c.wantDeadline) || !expiry.Equal(c.wantExpiry) || values["o"] != "1" {
				t.Fatalf("deadline %v expiry %v values %v; want deadline %v expiry %v, o=1", deadline, expiry, values, c.wantDeadline, c.wantExpiry)
			}
		})
	}
}

// failingCodec decodes nothing.
type failingCodec struct{ scs.GobCodec }

var errCodec = errors.New("cannot decode")

func (failingCodec) Decode([]byte) (time.Time, map[string]any, error) {
	return time.Time{}, nil, errCodec
}

func TestMergeThatCannotDecodeFailsAndWritesNothing(t *testing.T) {
	mem := memory(t)
	s := scsstore.New(mem)
	s.Codec = failingCodec{}
	deadline := time.Now().Add(time.Hour)
	commit(t, s, requestCtx(t), "tok", encode(t, deadline, map[string]any{"k": "0"}), deadline)
	r1, r2 := requestCtx(t), requestCtx(t)
	find(t, s, r1, "tok")
	find(t, s, r2, "tok")
	commit(t, s, r1, "tok", encode(t, deadline, map[string]any{"k": "1"}), deadline) // no conflict: no decoding
	err := s.CommitCtx(r2, "tok", encode(t, deadline, map[string]any{"k": "0", "x": "2"}), deadline)
	if !errors.Is(err, errCodec) {
		t.Fatalf("CommitCtx = %v, want the codec's error", err)
	}
	if _, got, _ := stored(t, mem, "tok"); len(got) != 1 || got["k"] != "1" {
		t.Fatalf("session = %v, want the first save's, untouched", got)
	}
}

// alwaysConflicts is a Versioned store where every conditional write
// meets a concurrent one.
type alwaysConflicts struct {
	*l1.Store
	setIfs atomic.Int64
}

func (s *alwaysConflicts) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version) (tierstore.Version, error) {
	s.setIfs.Add(1)
	return 0, tierstore.ErrConflict
}

func TestCommitGivesUpAfterTenConflicts(t *testing.T) {
	mem := memory(t)
	deadline := time.Now().Add(time.Hour)
	b := encode(t, deadline, map[string]any{"k": "0"})
	if err := mem.Set(context.Background(), "scs:tok", b, deadline); err != nil {
		t.Fatal(err)
	}
	store := &alwaysConflicts{Store: mem}
	s := scsstore.New(store)
	ctx := requestCtx(t)
	find(t, s, ctx, "tok")
	err := s.CommitCtx(ctx, "tok", encode(t, deadline, map[string]any{"k": "1"}), deadline)
	if !errors.Is(err, tierstore.ErrConflict) || store.setIfs.Load() != 10 {
		t.Fatalf("CommitCtx = %v after %d SetIfs; want ErrConflict after 10", err, store.setIfs.Load())
	}
}

// The direct form of the logout races: a save whose session was deleted
// since its load writes nothing and returns nil, and so does any later
// save of that token by the same request.
func TestSaveOfADeletedSessionWritesNothing(t *testing.T) {
	mem := memory(t)
	a, b := scsstore.New(mem), scsstore.New(mem)
	deadline := time.Now().Add(time.Hour)
	commit(t, a, requestCtx(t), "tok", encode(t, deadline, map[string]any{"user": "ada"}), deadline)
	ctx := requestCtx(t)
	find(t, b, ctx, "tok")
	if err := a.DeleteCtx(requestCtx(t), "tok"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		commit(t, b, ctx, "tok", encode(t, deadline, map[string]any{"user": "ada", "x": "1"}), deadline)
		if _, err := mem.Get(context.Background(), "scs:tok"); !errors.Is(err, tierstore.ErrNotFound) {
			t.Fatalf("the deleted session was written again (%v)", err)
		}
	}
}

// counting counts a Versioned store's writes.
type counting struct {
	tierstore.Store
	tierstore.Versioned
	writes atomic.Int64
}

func (c *counting) Set(ctx context.Context, key string, value []byte, expiry time.Time) error {
	c.writes.Add(1)
	return c.Store.Set(ctx, key, value, expiry)
}

func (c *counting) Delete(ctx context.Context, key string) error {
	c.writes.Add(1)
	return c.Store.Delete(ctx, key)
}

func (c *counting) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version) (tierstore.Version, error) {
	c.writes.Add(1)
	return c.Versioned.SetIf(ctx, key, value, expiry, want)
}

func (c *counting) DeleteIf(ctx context.Context, key string, want tierstore.Version) error {
	c.writes.Add(1)
	return c.Versioned.DeleteIf(ctx, key, want)
}

func TestUnmodifiedRequestWritesNothing(t *testing.T) {
	for name, store := range stores(t) {
		v, ok := store.(tierstore.Versioned)
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			c := &counting{Store: store, Versioned: v}
			in := newInstance(t, c, &gates{})
			token := in.do(t, "/put?user=ada", "").token
			_, version, _, err := v.GetVersion(context.Background(), "scs:"+token, tierstore.NoVersion)
			if err != nil {
				t.Fatal(err)
			}
			c.writes.Store(0)
			for range 3 {
				if got := in.do(t, "/get", token).body; got != "user=ada" {
					t.Fatalf("get = %q", got)
				}
			}
			if n := c.writes.Load(); n != 0 {
				t.Fatalf("%d writes by requests that changed nothing", n)
			}
			if _, now, _, err := v.GetVersion(context.Background(), "scs:"+token, version); err != nil || now != version {
				t.Fatalf("version %d, %v; was %d", now, err, version)
			}
		})
	}
}

// A save the adapter cannot pair with its load (a context whose Done is
// nil) writes as before: the whole session, last writer wins.
func TestUnpairedSaveOverwrites(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			in := newInstance(t, store, &gates{})
			token := in.do(t, "/put?user=ada", "").token
			ctx, err := in.sm.Load(context.Background(), token)
			if err != nil {
				t.Fatal(err)
			}
			in.do(t, "/put?x=1", token) // a concurrent change, overwritten
			in.sm.Put(ctx, "y", "2")
			if _, _, err := in.sm.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if got := in.do(t, "/get", token).body; got != "user=ada y=2" {
				t.Fatalf("session = %q, want the unpaired save's whole", got)
			}

			// httptest.NewRequest's context is Background too.
			req := httptest.NewRequest("GET", "/put?z=3", nil)
			req.AddCookie(cookie(token))
			rec := httptest.NewRecorder()
			in.server.Config.Handler.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("unpaired request: %d %s", rec.Code, rec.Body)
			}
			if got := in.do(t, "/get", token).body; got != "user=ada y=2 z=3" {
				t.Fatalf("session = %q", got)
			}
		})
	}
}
