package rediskv

import (
	"bytes"
	"testing"

	"github.com/tierstore/tierstore"
)

func TestFrameRoundTripAndDamage(t *testing.T) {
	for _, v := range [][]byte{nil, {}, []byte("value"), bytes.Repeat([]byte{0xff}, 1000)} {
		for _, f := range [][]byte{appendFrame(nil, v), appendFrameV2(nil, v, minVersion+7)} {
			got, version, ok := unframe(f)
			if !ok || !bytes.Equal(got, v) {
				t.Fatalf("unframe(%x) = %q, %v", f, got, ok)
			}
			if want := map[byte]tierstore.Version{formatV1: ContentVersion(v), formatV2: minVersion + 7}[f[0]]; version != want {
				t.Fatalf("version of %x = %d, want %d", f, version, want)
			}
			for i := range f { // every single-byte change of the value or its CRC is caught
				damaged := bytes.Clone(f)
				damaged[i] ^= 0x01
				if _, v2, ok := unframe(damaged); ok && (f[0] == formatV1 || i < 1 || i > 8 || v2 == version) {
					t.Fatalf("a flipped bit at byte %d of %d went unnoticed", i, len(f))
				}
			}
			if _, _, ok := unframe(f[:len(f)-1]); ok {
				t.Fatal("a truncated frame went unnoticed")
			}
		}
	}
	if _, _, ok := unframe(appendFrameV2(nil, []byte("v"), 5)); ok {
		t.Fatal("a versioned frame with a version no script gives went unnoticed")
	}
}

func FuzzUnframe(f *testing.F) {
	f.Add(appendFrame(nil, []byte("value")))
	f.Add(appendFrameV2(nil, []byte("value"), minVersion))
	f.Add([]byte{})
	f.Add([]byte{formatV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, version, ok := unframe(b)
		if !ok {
			return
		}
		again := appendFrame(nil, v)
		if b[0] == formatV2 {
			again = appendFrameV2(nil, v, version)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("unframe accepted %x, which is not the frame of what it returned", b)
		}
	})
}
