package nearcache

import "testing"

// A refused enter must leave every cell as it found it: close sums the
// cells one at a time, and an undo in another cell than its increment
// could be read without it, hiding a call still inside.
func TestRefusedEnterUndoesInItsOwnCell(t *testing.T) {
	var g gate
	if !g.enter() { // a call inside
		t.Fatal("an open gate refused a call")
	}
	g.shut.Store(true)
	snapshot := func() (c [cellCount]int64) {
		for i := range c {
			c[i] = g.inside.c[i].n.Load()
		}
		return c
	}
	before := snapshot()
	for range 1000 {
		if g.enter() {
			t.Fatal("a shut gate let a call in")
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("refused calls moved the cells: %v, then %v", before, after)
	}
}
