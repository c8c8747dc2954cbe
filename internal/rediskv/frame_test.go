package rediskv

import (
	"bytes"
	"testing"
)

func TestFrameRoundTripAndDamage(t *testing.T) {
	for _, v := range [][]byte{nil, {}, []byte("value"), bytes.Repeat([]byte{0xff}, 1000)} {
		f := appendFrame(nil, v)
		got, ok := unframe(f)
		if !ok || !bytes.Equal(got, v) {
			t.Fatalf("unframe(appendFrame(%q)) = %q, %v", v, got, ok)
		}
		for i := range f { // every single-byte change is caught
			damaged := bytes.Clone(f)
			damaged[i] ^= 0x01
			if _, ok := unframe(damaged); ok {
				t.Fatalf("a flipped bit at byte %d of %d went unnoticed", i, len(f))
			}
		}
		if len(f) > frameHeader {
			if _, ok := unframe(f[:len(f)-1]); ok {
				t.Fatal("a truncated frame went unnoticed")
			}
		}
	}
}

func FuzzUnframe(f *testing.F) {
	f.Add(appendFrame(nil, []byte("value")))
	f.Add([]byte{})
	f.Add([]byte{formatV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := unframe(b)
		if ok && !bytes.Equal(appendFrame(nil, v), b) {
			t.Fatalf("unframe accepted %x, which is not the frame of what it returned", b)
		}
	})
}
