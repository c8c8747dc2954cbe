package nearcache

import (
	"runtime"
	"sync/atomic"
)

// gate lets Close wait for the calls that are inside ristretto, without a
// lock on the hit path: each call counts itself in cells.
//
// Invariant: a call that entered (its increment happened before its load
// of shut saw false) is counted until it leaves; every increment made
// after shut was set is undone, in the same cell, before touching
// ristretto. So once shut is set and the cells sum to zero, no call is
// inside and none will enter. The undo must use the increment's cell:
// close reads the cells one at a time, and an undo in another cell could
// be read without its increment, a -1 that hides a call still inside.
// A leave may use any cell, since its call's increment is visible to
// close once it has entered.
type gate struct {
	shut   atomic.Bool
	inside cells
}

// enter reports whether the caller may use ristretto; if it returns true
// the caller must call leave when done.
func (g *gate) enter() bool {
	cell := g.inside.pick()
	g.inside.addAt(cell, 1)
	if g.shut.Load() {
		g.inside.addAt(cell, -1)
		return false
	}
	return true
}

// leave ends a call that entered.
func (g *gate) leave() { g.inside.add(-1) }

// close shuts the gate and waits for the calls inside to leave. It
// reports whether this call shut it (false: already shut).
func (g *gate) close() bool {
	if !g.shut.CompareAndSwap(false, true) {
		return false
	}
	for g.inside.sum() != 0 {
		runtime.Gosched()
	}
	return true
}
