package nearcache

import (
	"testing"
)

// An invalidation that lands between a fill's stamp check and its cache
// write must not let the filled value be served.
func TestInvalidationDuringFillIsHonouredOnRead(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testHookBeforeCacheSet = func(key string) { s.Invalidate(key) }
	s.Fill("k", []byte("old"), Meta{}, s.Stamp("k"))
	testHookBeforeCacheSet = nil
	s.Wait()
	if _, ok := s.get("k"); !ok {
		t.Fatal("the test needs the late fill to reach the cache")
	}
	if hit, _, _ := s.Lookup("k", func([]byte) error { return nil }); hit {
		t.Fatal("a value filled across an invalidation was served")
	}
}

func TestStripesScaleWithMaxBytes(t *testing.T) {
	for _, c := range []struct {
		maxBytes int64
		want     int
	}{{1 << 20, minStripes}, {64 << 20, 64 << 20 / bytesPerStripe}, {1 << 40, maxStripes}} {
		if got := stripesFor(c.maxBytes); got != c.want {
			t.Errorf("stripesFor(%d) = %d, want %d", c.maxBytes, got, c.want)
		}
	}
	s, err := New(Config{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.stripes) != int(s.mask)+1 || len(s.stripes)&(len(s.stripes)-1) != 0 {
		t.Fatalf("%d stripes, mask %#x: not a power of two with its mask", len(s.stripes), s.mask)
	}
}
