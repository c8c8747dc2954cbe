package session

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tierstore/tierstore/codec"
	"github.com/tierstore/tierstore/l1"
)

// The size Put computes for a session is the length of what the save will
// encode, to the byte, with each codec whose sizes it computes: across
// every boundary where msgpack's headers grow (strings of 32, 256 and
// 65536 bytes, binaries of 256 and 65536, maps of 16 entries), for nil
// and empty values, and for keys JSON escapes.
func TestComputedSessionSizeIsTheEncodedSize(t *testing.T) {
	lengths := []int{0, 1, 31, 32, 255, 256, 65535, 65536}
	keys := []string{"", "k", "<a&b>", "\x00\n\t\"\\", "\xff\xfe", "\u2028\u2029", "é"}
	for _, n := range lengths {
		keys = append(keys, strings.Repeat("k", n))
	}
	values := [][]byte{nil, {}}
	for _, n := range lengths {
		values = append(values, make([]byte, n))
	}
	for name, c := range map[string]codec.Codec{"msgpack": codec.Msgpack, "json": codec.JSON} {
		t.Run(name, func(t *testing.T) {
			m := newSizeManager(t, c)
			check := func(st *state, what string) {
				t.Helper()
				if want := m.encodedSize(t, st.values); st.size != want {
					t.Fatalf("%s (%d values): computed %d bytes, encoded %d", what, len(st.values), st.size, want)
				}
			}
			// Each key with each value: new, then replacing another value.
			for _, key := range keys {
				for _, v := range values {
					st := &state{m: m, values: map[string][]byte{"other": []byte("x")}}
					for _, v := range [][]byte{v, []byte("before")} {
						if err := m.putWithinLimit(st, key, v); err != nil {
							t.Fatal(err)
						}
						check(st, "after a Put")
					}
				}
			}
			// Sessions growing past 16 values and shrinking, through
			// the Manager's methods and a rebase (a save's merge, or
			// Renew's), with the size checked after each Put.
			rng := rand.New(rand.NewPCG(1, 2))
			st := &state{m: m, values: map[string][]byte{}}
			ctx := context.WithValue(context.Background(), contextKey{m}, st)
			for range 400 {
				key := string(rune('a' + rng.IntN(24)))
				var err error
				switch op := rng.IntN(20); {
				case op < 4:
					err = m.Remove(ctx, key)
				case op == 4:
					err = m.Clear(ctx)
				case op == 5:
					values := map[string][]byte{key: []byte("stored"), "z": nil}
					st.rebase(record{Deadline: st.deadline.UnixNano(), Values: values}, 1, time.Time{})
				default:
					if err = m.Put(ctx, key, values[rng.IntN(len(values)-2)]); err == nil {
						check(st, "after a Put")
					}
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// The map header of 65536 values (msgpack's map 32) too: a session of
// 65535 values, and one more.
func TestComputedSessionSizeOfAHugeMap(t *testing.T) {
	for name, c := range map[string]codec.Codec{"msgpack": codec.Msgpack, "json": codec.JSON} {
		t.Run(name, func(t *testing.T) {
			m := newSizeManager(t, c)
			st := &state{m: m, values: make(map[string][]byte, 1<<16)}
			for i := range 0xffff {
				st.values[string(rune(0x100+i))] = nil
			}
			for _, key := range []string{"a", "b"} { // the 65536th value, then another
				if err := m.putWithinLimit(st, key, []byte{1}); err != nil {
					t.Fatal(err)
				}
				if want := m.encodedSize(t, st.values); st.size != want {
					t.Fatalf("%d values: computed %d bytes, encoded %d", len(st.values), st.size, want)
				}
			}
		})
	}
}

func newSizeManager(t *testing.T, c codec.Codec) *Manager {
	t.Helper()
	store, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	m, err := New(Config{Store: store, Codec: c, MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if m.sizing == sizeByEncoding {
		t.Fatalf("%T: sizes encoded, not computed", c)
	}
	return m
}

// encodedSize is the length of the record a save of values encodes.
func (m *Manager) encodedSize(t *testing.T, values map[string][]byte) int {
	t.Helper()
	b, err := m.codec.Marshal(record{Deadline: time.Now().Add(m.cfg.Lifetime).UnixNano(), Values: values})
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}
