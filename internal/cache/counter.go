package cache

import (
	"math/rand/v2"
	"sync/atomic"
)

// counter is a hit counter that two cores can increment at once without
// fighting over one cache line: each Add picks one of a few padded cells
// at random (math/rand/v2's global generator is per-thread, so picking
// costs no shared write). One shared atomic makes parallel hits fight
// over its cache line.
type counter struct {
	cells [counterCells]struct {
		n atomic.Uint64
		_ [56]byte // one cell per 64-byte cache line
	}
}

const counterCells = 8

// Add adds one.
func (c *counter) Add() { c.cells[rand.Uint32()%counterCells].n.Add(1) }

// Load returns the sum of the cells: exact once the adds it should count
// have returned.
func (c *counter) Load() uint64 {
	var sum uint64
	for i := range c.cells {
		sum += c.cells[i].n.Load()
	}
	return sum
}
