package nearcache

import "testing"

// fresh returns the capacity append gives a fresh slice of n bytes: the
// size of the allocation behind it.
func fresh(n int) int { return cap(append([]byte(nil), make([]byte, n)...)) }

// allocSize is what the allocator takes: every size up to 4 KiB, each
// size class and its neighbours, and large sizes around whole pages up to
// the largest value.
func TestAllocSizeIsTheAllocation(t *testing.T) {
	sizes := []int{32767, 32768, 32769, 40000, 40959, 40960, 40961, 65535, 65536, 65537, 100000, 1_000_000, 1<<20 - 1, 1 << 20, 1<<20 + 1}
	for n := range 4097 {
		sizes = append(sizes, n)
	}
	for _, c := range sizeClasses() {
		sizes = append(sizes, c-1, c, c+1)
	}
	for _, n := range sizes {
		if got, want := allocSize(n), fresh(n); got != want {
			t.Errorf("allocSize(%d) = %d, want %d", n, got, want)
		}
	}
	// The sizes of issue 19, independent of how allocSize learns them.
	for n, want := range map[int]int{4097: 4864, 32768: 32768, 32769: 40960, 65537: 73728} {
		if got := allocSize(n); got != want {
			t.Errorf("allocSize(%d) = %d, want %d", n, got, want)
		}
	}
}

// A value read from Redis is a slice of its frame, a header's length
// into a []byte of the reply: its capacity still implies the frame's
// allocation, which is what it keeps alive. (Not for values of a few
// bytes, whose classes are 8 bytes apart: they are charged up to 8 bytes
// less.)
func TestAllocSizeOfAValueInItsFrame(t *testing.T) {
	for _, header := range []int{5, 13} { // the unversioned and the versioned frame
		for _, n := range []int{100, 500, 1019, 1024, 4091, 4096, 32755, 32763, 32768, 40955, 65536, 1 << 20} {
			framed := append([]byte(nil), make([]byte, header+n)...)
			value := framed[header:]
			if got, want := allocSize(cap(value)), cap(framed); got != want {
				t.Errorf("%d-byte value behind a %d-byte header: allocSize = %d, want its frame's %d", n, header, got, want)
			}
		}
	}
}
