package rediskv

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/tierstore/tierstore"
)

// Values are stored in Redis framed, so that bytes under our prefix that
// tierstore did not write (another program's key, a truncated restore, a
// flipped bit) are reported as tierstore.ErrCorrupt instead of being served.
// A plain Set writes the unversioned frame:
//
//	byte 0     formatV1 (0xB1)
//	bytes 1-4  CRC-32C of the value, big endian
//	bytes 5-   the value
//
// A conditional write (SetIf) writes the versioned frame, whose version
// the script computes in Redis (see setIfScript):
//
//	byte 0     formatV2 (0xB2)
//	bytes 1-8  the version, big endian
//	bytes 9-12 CRC-32C of the value, big endian
//	bytes 13-  the value
//
// The version of an unversioned frame is 1 + its CRC (ContentVersion):
// below 2^33, and so below every version a script gives (see minVersion).
const (
	formatV1      = 0xB1
	formatV2      = 0xB2
	frameHeader   = 5
	frameHeaderV2 = 13
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends the unversioned frame of value to dst.
func appendFrame(dst, value []byte) []byte {
	dst = append(dst, formatV1, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], crc32.Checksum(value, castagnoli))
	return append(dst, value...)
}

// appendFrameV2 appends the versioned frame of value to dst, with version
// v (0 for a script to fill in).
func appendFrameV2(dst, value []byte, v tierstore.Version) []byte {
	dst = append(dst, formatV2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	h := dst[len(dst)-frameHeaderV2+1:]
	binary.BigEndian.PutUint64(h, uint64(v))
	binary.BigEndian.PutUint32(h[8:], crc32.Checksum(value, castagnoli))
	return append(dst, value...)
}

// unframe returns the value inside a frame, sharing its memory, and its
// version, and reports whether the frame is intact.
func unframe(b []byte) ([]byte, tierstore.Version, bool) {
	if len(b) == 0 {
		return nil, 0, false
	}
	switch {
	case b[0] == formatV1 && len(b) >= frameHeader:
		value, sum := b[frameHeader:], binary.BigEndian.Uint32(b[1:frameHeader])
		return value, 1 + tierstore.Version(sum), sum == crc32.Checksum(value, castagnoli)
	case b[0] == formatV2 && len(b) >= frameHeaderV2:
		value := b[frameHeaderV2:]
		v := tierstore.Version(binary.BigEndian.Uint64(b[1:9]))
		return value, v, v >= minVersion && v < maxVersion && binary.BigEndian.Uint32(b[9:frameHeaderV2]) == crc32.Checksum(value, castagnoli)
	}
	return nil, 0, false
}

// ContentVersion is the version of value written unversioned (by a plain
// Set): 1 + its CRC-32C.
func ContentVersion(value []byte) tierstore.Version {
	return 1 + tierstore.Version(crc32.Checksum(value, castagnoli))
}
