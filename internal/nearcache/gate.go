package cache

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
)

// gate lets Close wait for the calls that are inside ristretto, without a
// lock on the hit path: each call counts itself in one of a few padded
// cells picked at random (as counter does), so two cores rarely write the
// same cache line.
//
// Invariant: a call that entered (its increment happened before its load
// of shut saw false) is counted until it leaves; every increment made
// after shut was set is undone before touching ristretto. So once shut is
// set and the cells sum to zero, no call is inside and none will enter.
type gate struct {
	shut  atomic.Bool
	cells [gateCells]struct {
		n atomic.Int64
		_ [56]byte
	}
}

const gateCells = 8

// enter reports whether the caller may use ristretto; if it returns true
// the caller must call leave when done.
func (g *gate) enter() bool {
	c := &g.cells[rand.Uint32()%gateCells].n
	c.Add(1)
	if g.shut.Load() {
		c.Add(-1)
		return false
	}
	return true
}

// leave ends a call that entered. Any cell may be decremented: only the
// sum matters.
func (g *gate) leave() { g.cells[rand.Uint32()%gateCells].n.Add(-1) }

// close shuts the gate and waits for the calls inside to leave. It
// reports whether this call shut it (false: already shut).
func (g *gate) close() bool {
	if !g.shut.CompareAndSwap(false, true) {
		return false
	}
	for g.inside() != 0 {
		runtime.Gosched()
	}
	return true
}

func (g *gate) inside() int64 {
	var sum int64
	for i := range g.cells {
		sum += g.cells[i].n.Load()
	}
	return sum
}
