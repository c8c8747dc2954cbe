package nearcache_test

import (
	"errors"
	"testing"

	"github.com/tierstore/tierstore/internal/nearcache"
)

func TestMissesUnderOneStampShareOneFlight(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	f, start := s.Flight("k", true)
	g, joined := s.Flight("k", true)
	if !start || joined || f != g {
		t.Fatalf("second miss: start %v, same flight %v; want to join the first", joined, f == g)
	}
	s.Update(f, []byte("v"), nearcache.Meta{}, true)
	<-g.Done()
	if o := g.Outcome(); string(o.Value) != "v" || o.Err != nil || o.Cached {
		t.Fatalf("joined flight ended with %+v", o)
	}
	waitHit(t, s, "k", "v")
}

func TestFlightAfterAnInvalidationDoesNotJoinTheOneBefore(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	before, _ := s.Flight("k", true)
	s.Invalidate("k") // a write elsewhere, reported while the read is out
	after, start := s.Flight("k", true)
	if !start || after == before {
		t.Fatal("a miss after an invalidation joined the read begun before it")
	}
	s.Update(before, []byte("old"), nearcache.Meta{}, true) // lands late
	s.Wait()
	if hit, _, _ := s.Lookup("k", func([]byte) error { return nil }); hit {
		t.Fatal("a flight stamped before an invalidation filled the cache")
	}
	s.Update(after, []byte("new"), nearcache.Meta{}, true)
	waitHit(t, s, "k", "new")
}

func TestFlightServesWhatAnEarlierFlightFilled(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	f, _ := s.Flight("k", true)
	s.Update(f, []byte("v"), nearcache.Meta{}, true)
	waitHit(t, s, "k", "v")
	misses := s.Stats().Misses
	g, start := s.Flight("k", true)
	if start {
		t.Fatal("a flight was started although the key is cached")
	}
	<-g.Done()
	if o := g.Outcome(); !o.Cached || string(o.Value) != "v" {
		t.Fatalf("outcome %+v, want the cached value", o)
	}
	if s.Stats().Misses != misses {
		t.Fatal("the recheck counted a second miss")
	}
	if _, start := s.Flight("k", false); !start {
		t.Fatal("with serve false, Flight served from the cache")
	}
}

func TestBegunFlightIsNotJoinedAndCancelCachesNothing(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	solo := s.Begin("k")
	if _, start := s.Flight("k", true); !start {
		t.Fatal("a miss joined a flight begun with Begin")
	}
	boom := errors.New("boom")
	s.Cancel(solo, boom, true)
	<-solo.Done()
	if o := solo.Outcome(); !errors.Is(o.Err, boom) || !o.StarterLeft {
		t.Fatalf("cancelled flight ended with %+v", o)
	}
	s.Update(s.Begin("k"), []byte("v"), nearcache.Meta{}, false) // fill false: not cached
	s.Wait()
	if hit, _, _ := s.Lookup("k", func([]byte) error { return nil }); hit {
		t.Fatal("Update with fill false cached the value")
	}
}
