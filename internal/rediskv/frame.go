package rediskv

import (
	"encoding/binary"
	"hash/crc32"
)

// Values are stored in Redis framed, so that bytes under our prefix that
// tierstore did not write (another program's key, a truncated restore, a
// flipped bit) are reported as tierstore.ErrCorrupt instead of being served:
//
//	byte 0     formatV1 (0xB1)
//	bytes 1-4  CRC-32C of the value, big endian
//	bytes 5-   the value
const (
	formatV1    = 0xB1
	frameHeader = 5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends the framed value to dst.
func appendFrame(dst, value []byte) []byte {
	dst = append(dst, formatV1, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], crc32.Checksum(value, castagnoli))
	return append(dst, value...)
}

// unframe returns the value inside a frame, sharing its memory, and
// reports whether the frame is intact.
func unframe(b []byte) ([]byte, bool) {
	if len(b) < frameHeader || b[0] != formatV1 {
		return nil, false
	}
	value := b[frameHeader:]
	return value, binary.BigEndian.Uint32(b[1:frameHeader]) == crc32.Checksum(value, castagnoli)
}
