package codec_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/codec"
	"github.com/tierstore/tierstore/l1"
)

type profile struct {
	Name   string
	Age    int
	Tags   []string
	Seen   time.Time
	Scores map[string]float64
}

func sample() profile {
	return profile{
		Name: "Ada", Age: 36, Tags: []string{"a", "b"},
		Seen:   time.Date(2026, 11, 24, 8, 0, 0, 123, time.UTC),
		Scores: map[string]float64{"x": 1.5},
	}
}

func TestCodecsRoundTrip(t *testing.T) {
	for name, c := range map[string]codec.Codec{"msgpack": codec.Msgpack, "json": codec.JSON} {
		b, err := c.Marshal(sample())
		if err != nil {
			t.Fatal(err)
		}
		var got profile
		if err := c.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := sample()
		if got.Name != want.Name || got.Age != want.Age || len(got.Tags) != 2 || !got.Seen.Equal(want.Seen) || got.Scores["x"] != 1.5 {
			t.Fatalf("%s: round trip gave %+v", name, got)
		}
	}
}

func TestCodecsRefuseCorruptInput(t *testing.T) {
	for name, c := range map[string]codec.Codec{"msgpack": codec.Msgpack, "json": codec.JSON} {
		good, _ := c.Marshal(sample())
		for _, bad := range [][]byte{nil, good[:len(good)/2], append(append([]byte{}, good...), 0x01), {0xc1}} {
			var p profile
			if err := c.Unmarshal(bad, &p); err == nil {
				t.Errorf("%s: Unmarshal(%x) accepted corrupt input", name, bad)
			}
		}
	}
}

// A closing bracket after a complete JSON value is trailing data too
// (json.Decoder's More does not see it).
func TestJSONRefusesTrailingBrackets(t *testing.T) {
	good, _ := codec.JSON.Marshal(sample())
	for _, bad := range []string{string(good) + "}", string(good) + "]", string(good) + " x"} {
		var p profile
		if err := codec.JSON.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("Unmarshal(%q) accepted trailing data", bad)
		}
	}
	var n int
	if err := codec.JSON.Unmarshal([]byte("1]]]"), &n); err == nil {
		t.Error(`Unmarshal("1]]]") accepted trailing data`)
	}
}

func TestTypedKeepsStructsInAnyStore(t *testing.T) {
	store, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	profiles := codec.Typed[profile]{Store: store}
	if err := profiles.Set(ctx, "p", sample(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := profiles.Get(ctx, "p")
	if err != nil || got.Name != "Ada" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := (codec.Typed[profile]{Store: store}).Get(ctx, "absent"); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatalf("Get(absent) = %v, want ErrNotFound", err)
	}
	if err := store.Set(ctx, "junk", []byte{0xc1}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := profiles.Get(ctx, "junk"); !errors.Is(err, tierstore.ErrCorrupt) {
		t.Fatalf("Get(junk) = %v, want ErrCorrupt", err)
	}
}

func FuzzMsgpackDecode(f *testing.F) {
	good, _ := codec.Msgpack.Marshal(sample())
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff}) // a map claiming 4G entries
	f.Fuzz(func(t *testing.T, b []byte) {
		var p profile
		_ = codec.Msgpack.Unmarshal(b, &p) // must not panic or hang
	})
}

// The msgpack decoder allocates what a header declares before it reads
// the data: unchecked, 83 a0 c6 c6 a0 c6 a0 (a map whose value claims
// 3.3 GB of bin) would grow the pooled decoder's buffer on every decode.
// Memory per decode must be bounded by the input's size.
func TestHostileMsgpackAllocatesNoMoreThanItsSize(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      []byte
		decodes int // the pooled buffer grew over many decodes
	}{
		{"bin32 claims 3.3 GB", []byte{0x83, 0xa0, 0xc6, 0xc6, 0xa0, 0xc6, 0xa0}, 400},
		{"array32 claims 1M items", []byte{0xdd, 0x00, 0x0f, 0x42, 0x40, 0xc0}, 20},
		{"map32 claims 1M pairs", []byte{0xdf, 0x00, 0x0f, 0x42, 0x40, 0xc0, 0xc0}, 20},
		{"str32 claims 4 GB", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, 20},
		{"nested 100k arrays deep", bytes.Repeat([]byte{0x91}, 100_000), 20},
		{"ext32 claims 16 MB", []byte{0xc9, 0x01, 0x00, 0x00, 0x00, 0x01, 'x'}, 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, decodes := c.in, c.decodes
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range decodes {
				var v any
				if err := codec.Msgpack.Unmarshal(in, &v); err == nil {
					t.Fatal("hostile input decoded without error")
				}
			}
			runtime.ReadMemStats(&after)
			perDecode := (after.TotalAlloc - before.TotalAlloc) / uint64(decodes)
			if limit := uint64(4096 + 16*len(in)); perDecode > limit {
				t.Fatalf("%d bytes allocated per decode of %d input bytes, want at most %d", perDecode, len(in), limit)
			}
		})
	}
}
