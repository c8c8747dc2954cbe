package codec_test

import (
	"context"
	"errors"
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
