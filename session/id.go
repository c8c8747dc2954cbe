package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"math/bits"
	"strconv"
	"strings"

	"github.com/tierstore/tierstore"
)

// idBytes is the entropy of a session ID: 256 bits from crypto/rand.
const idBytes = 32

// idLen is the length of an ID in its cookie form (base64url, no padding).
var idLen = base64.RawURLEncoding.EncodedLen(idBytes)

// NewID returns a fresh session ID: 256 bits from crypto/rand, in
// base64url without padding (43 characters). It is the ID the Manager
// issues, exported so that other session layers (the gorilla/sessions
// adapter) issue the same.
func NewID() string {
	b := make([]byte, idBytes)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ValidID reports whether s has the form of an ID from NewID: exactly 43
// characters of the base64url alphabet encoding 32 bytes, with no stray
// bits. It looks at nothing else first, so a cookie of any size is cheap
// to refuse. A valid form says nothing about whether the session exists.
func ValidID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := range len(s) {
		if b64Value[s[i]] < 0 {
			return false
		}
	}
	// 43 characters carry 258 bits: the last one's 2 low bits are not
	// part of the 32 bytes, and a strict decoding wants them zero.
	return b64Value[s[idLen-1]]&3 == 0
}

// b64Value is the value of each base64url character, -1 for any other
// byte: ValidID runs on every request, and a table beats decoding.
var b64Value = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(alphabet) {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

// storeKey is the Store key of a session. By default it is a hash of the
// ID, so that a dump of the store holds no token a client could present.
func (m *Manager) storeKey(id string) string {
	if m.cfg.RawIDKeys {
		return m.cfg.KeyPrefix + id
	}
	// Built in one allocation: this runs on every request.
	var buf [64]byte // IDs this Manager issues fit: no allocation
	sum := sha256.Sum256(append(buf[:0], id...))
	var enc [43]byte // base64.RawURLEncoding.EncodedLen(sha256.Size)
	base64.RawURLEncoding.Encode(enc[:], sum[:])
	var b strings.Builder
	b.Grow(len(m.cfg.KeyPrefix) + len(enc))
	b.WriteString(m.cfg.KeyPrefix)
	b.Write(enc[:])
	return b.String()
}

// A cookie names a session and, after a dot, the Version its last save
// wrote, in base 36: "<ID>.<version>". The version lets an instance whose
// copy is older (its invalidation still in flight) read the Store instead
// of serving it, so that a browser sees its own last change on any
// instance. A cookie without it (issued before versions) is accepted.
const maxVersionDigits = 13 // 36^13 > 2^64

// parseCookie splits a cookie value into a valid ID and its version, and
// reports whether the value has that form.
func parseCookie(s string) (id string, v tierstore.Version, ok bool) {
	id, digits, dotted := strings.Cut(s, ".")
	if !ValidID(id) {
		return "", 0, false
	}
	if !dotted {
		return id, tierstore.NoVersion, true
	}
	if len(digits) == 0 || len(digits) > maxVersionDigits || digits[0] == '0' {
		return "", 0, false // one spelling per version: the one formatCookie writes
	}
	var n uint64
	for i := range len(digits) {
		var d uint64
		switch c := digits[i]; {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case 'a' <= c && c <= 'z':
			d = uint64(c-'a') + 10
		default:
			return "", 0, false
		}
		hi, lo := bits.Mul64(n, 36)
		if hi != 0 || lo+d < lo {
			return "", 0, false // over 64 bits
		}
		n = lo + d
	}
	return id, tierstore.Version(n), true
}

// formatCookie is the cookie value of id at version v.
func formatCookie(id string, v tierstore.Version) string {
	if v == tierstore.NoVersion {
		return id
	}
	return id + "." + strconv.FormatUint(uint64(v), 36)
}
