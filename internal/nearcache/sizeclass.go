package nearcache

import (
	"slices"
	"sync"
)

// The Go allocator rounds every allocation up: small objects (up to
// 32 KiB) to a size class, larger ones to whole 8 KiB pages. A value's
// memory is its allocation, not its length — 4097 bytes take 4864, 32769
// take 40960 — so an entry is charged allocSize of its value's capacity,
// or MaxBytes would not bound the heap for values just past a class.
const (
	maxSmallAlloc = 32 << 10 // the runtime's largest size class
	allocPage     = 8 << 10  // the runtime's page
)

// sizeClasses returns the allocator's size classes for pointer-free
// objects, ascending, up to maxSmallAlloc. They are learned from append,
// which gives a fresh slice the whole of its allocation as capacity, so
// that they are those of the runtime the binary is built with rather
// than a copy of its table. Learning them takes about 70 allocations,
// 0.4 MB in all, once, in the first New.
var sizeClasses = sync.OnceValue(func() []int {
	var classes []int
	for n := 1; n <= maxSmallAlloc; {
		c := cap(append([]byte(nil), make([]byte, n)...))
		classes = append(classes, c)
		n = c + 1
	}
	return classes
})

// allocSize returns the bytes the allocator takes for a []byte of
// capacity n. Of a slice whose capacity runs to the end of its
// allocation it is that allocation, even a few bytes in (a value behind
// its frame header in a []byte read from Redis); a slice whose capacity
// stops short of the end is charged less than it keeps alive.
func allocSize(n int) int {
	switch {
	case n <= 0:
		return 0 // a zero-size allocation takes no memory
	case n > maxSmallAlloc:
		if r := (n + allocPage - 1) &^ (allocPage - 1); r >= n {
			return r
		}
		return n // overflow: no such allocation exists anyway
	}
	classes := sizeClasses()
	i, _ := slices.BinarySearch(classes, n)
	return classes[i]
}
