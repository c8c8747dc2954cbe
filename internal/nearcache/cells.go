package nearcache

import (
	"math/rand/v2"
	"sync/atomic"
)

// cells is a sum that two cores can change at once without fighting over
// one cache line: each add picks one of a few padded cells at random
// (math/rand/v2's global generator is per-thread, so picking costs no
// shared write), and sum adds them up. The hit counter and the close
// gate are each one.
type cells struct {
	c [cellCount]struct {
		n atomic.Int64
		_ [56]byte // one cell per 64-byte cache line
	}
}

const cellCount = 8

// add adds d to one cell: only the sum has a meaning.
func (s *cells) add(d int64) { s.addAt(s.pick(), d) }

// pick returns a cell at random, for a caller that must undo in the
// same cell what it added (see gate.enter).
func (s *cells) pick() uint32 { return rand.Uint32() % cellCount }

// addAt adds d to cell i.
func (s *cells) addAt(i uint32, d int64) { s.c[i].n.Add(d) }

// sum returns the sum of the cells: exact once the adds it should count
// have returned.
func (s *cells) sum() int64 {
	var n int64
	for i := range s.c {
		n += s.c[i].n.Load()
	}
	return n
}
