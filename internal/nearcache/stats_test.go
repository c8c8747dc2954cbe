package nearcache_test

import (
	"fmt"
	"testing"

	"github.com/tierstore/tierstore/internal/nearcache"
)

// entryCost is what an entry of a 3-byte key and a 64-byte value (a size
// class of its own) is charged.
const entryCost = 3 + 64 + nearcache.EntryOverhead

func fillN(s *nearcache.Cache, n int) {
	for i := range n {
		k := fmt.Sprintf("k%02d", i)
		s.Fill(k, make([]byte, 64), nearcache.Meta{}, s.Stamp(k))
	}
	s.Wait()
}

// Entries and Bytes follow fills, replacements and deletes exactly, once
// ristretto has applied them; evictions are counted, not hidden in them.
func TestStatsCountEntriesBytesAndEvictions(t *testing.T) {
	s := newStore(t, nearcache.Config{})
	fillN(s, 10)
	if st := s.Stats(); st.Entries != 10 || st.Bytes != 10*entryCost || st.Evictions != 0 {
		t.Fatalf("after 10 fills: %+v, want 10 entries of %d bytes, no eviction", st, entryCost)
	}
	fillN(s, 10) // the same keys again: replacements
	s.Invalidate("k00")
	st := s.BeginWrite("k01")
	s.EndWrite("k01", st, nil, nearcache.Meta{}) // a delete
	s.Invalidate("absent")
	s.Wait()
	if st := s.Stats(); st.Entries != 8 || st.Bytes != 8*entryCost {
		t.Fatalf("after replacing 10 and dropping 2: %+v, want 8 entries", st)
	}

	small := newStore(t, nearcache.Config{MaxBytes: 10 * entryCost})
	fillN(small, 40)
	got := small.Stats()
	if got.Evictions == 0 || got.Entries > 10 || got.Bytes != got.Entries*entryCost {
		t.Fatalf("40 fills into room for 10: %+v, want evictions and at most 10 entries of %d bytes", got, entryCost)
	}
}
