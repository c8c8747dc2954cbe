package l1

import (
	"testing"
	"time"
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
	s.Fill("k", []byte("old"), time.Time{}, s.Stamp("k"))
	testHookBeforeCacheSet = nil
	s.Wait()
	if _, ok := s.get("k"); !ok {
		t.Fatal("the test needs the late fill to reach the cache")
	}
	if hit, _, _ := s.Lookup("k", func([]byte) error { return nil }); hit {
		t.Fatal("a value filled across an invalidation was served")
	}
}
