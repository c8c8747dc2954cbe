package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxMsgpackDepth bounds the nesting of arrays and maps a decode accepts:
// the decoder recurses once per level, so a short input of nested headers
// would otherwise grow the goroutine's stack without bound.
const maxMsgpackDepth = 1000

var errMsgpackShape = errors.New("malformed msgpack")

// checkMsgpack walks one msgpack value in b without decoding it, and
// fails if any length or element count it declares exceeds the bytes
// that follow, or if it nests deeper than maxMsgpackDepth. The decoder
// allocates what headers declare (up to 1 MiB a string, a million
// elements a slice) before it reads the data, so a few hostile bytes could
// make it allocate megabytes; after this check, what it allocates grows
// linearly with the input's size: every element it makes is at least one
// input byte, though decoding into interface values can cost on the order
// of a hundred bytes of memory per input byte (a slice of empty maps).
// Callers bound the input (MaxValueBytes). It returns the length of the
// value.
func checkMsgpack(b []byte) (int, error) {
	return checkValue(b, 0, 0)
}

func checkValue(b []byte, pos, depth int) (int, error) {
	if pos >= len(b) {
		return 0, fmt.Errorf("%w: truncated at byte %d", errMsgpackShape, pos)
	}
	if depth > maxMsgpackDepth {
		return 0, fmt.Errorf("%w: nested deeper than %d", errMsgpackShape, maxMsgpackDepth)
	}
	c := b[pos]
	pos++
	// length reads an n-byte big-endian length at pos.
	length := func(n int) (int, error) {
		if len(b)-pos < n {
			return 0, fmt.Errorf("%w: truncated header at byte %d", errMsgpackShape, pos)
		}
		var v uint64
		switch n {
		case 1:
			v = uint64(b[pos])
		case 2:
			v = uint64(binary.BigEndian.Uint16(b[pos:]))
		case 4:
			v = uint64(binary.BigEndian.Uint32(b[pos:]))
		}
		pos += n
		if v > uint64(len(b)-pos) {
			return 0, fmt.Errorf("%w: declares %d bytes or elements, %d bytes follow", errMsgpackShape, v, len(b)-pos)
		}
		return int(v), nil
	}
	skip := func(n int) (int, error) {
		if len(b)-pos < n {
			return 0, fmt.Errorf("%w: truncated at byte %d", errMsgpackShape, pos)
		}
		return pos + n, nil
	}
	elements := func(n, per int) (int, error) {
		var err error
		for range n * per {
			if pos, err = checkValue(b, pos, depth+1); err != nil {
				return 0, err
			}
		}
		return pos, nil
	}
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		return pos, nil
	case c <= 0x8f: // fixmap
		if int(c&0x0f)*2 > len(b)-pos {
			return 0, fmt.Errorf("%w: map larger than its input", errMsgpackShape)
		}
		return elements(int(c&0x0f), 2)
	case c <= 0x9f: // fixarray
		if int(c&0x0f) > len(b)-pos {
			return 0, fmt.Errorf("%w: array larger than its input", errMsgpackShape)
		}
		return elements(int(c&0x0f), 1)
	case c <= 0xbf: // fixstr
		return skip(int(c & 0x1f))
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		n, err := length(1)
		if err != nil {
			return 0, err
		}
		return skip(n)
	case 0xc5, 0xda: // bin16, str16
		n, err := length(2)
		if err != nil {
			return 0, err
		}
		return skip(n)
	case 0xc6, 0xdb: // bin32, str32
		n, err := length(4)
		if err != nil {
			return 0, err
		}
		return skip(n)
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, type byte, data
		n, err := length(map[byte]int{0xc7: 1, 0xc8: 2, 0xc9: 4}[c])
		if err != nil {
			return 0, err
		}
		return skip(1 + n)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return skip(4)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return skip(8)
	case 0xcc, 0xd0: // uint8, int8
		return skip(1)
	case 0xcd, 0xd1: // uint16, int16
		return skip(2)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 plus the type byte
		return skip(1 + 1<<(c-0xd4))
	case 0xdc, 0xdd: // array16, array32
		n, err := length(map[byte]int{0xdc: 2, 0xdd: 4}[c])
		if err != nil {
			return 0, err
		}
		return elements(n, 1)
	case 0xde, 0xdf: // map16, map32
		n, err := length(map[byte]int{0xde: 2, 0xdf: 4}[c])
		if err != nil {
			return 0, err
		}
		if 2*n > len(b)-pos {
			return 0, fmt.Errorf("%w: map larger than its input", errMsgpackShape)
		}
		return elements(n, 2)
	}
	return 0, fmt.Errorf("%w: byte %#x at %d is not a msgpack type", errMsgpackShape, c, pos-1)
}
