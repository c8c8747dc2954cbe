// Package sessionid is the form a session takes outside the process,
// shared by package session and the gorilla/sessions adapter so that both
// issue and accept the same: a random ID, the Store key derived from it,
// and the cookie value that carries the ID with the Version of the
// session's last save.
//
// It depends on nothing but the standard library and the root tierstore
// package, so a session layer in a module of its own can use it without
// pulling in package session's codecs.
package sessionid

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"math/bits"
	"strconv"
	"strings"

	"github.com/tierstore/tierstore"
)

// idBytes is the entropy of an ID: 256 bits from crypto/rand.
const idBytes = 32

// Len is the length of an ID: 32 bytes in base64url without padding.
const Len = 43 // base64.RawURLEncoding.EncodedLen(idBytes)

// MaxVersionDigits is the most base-36 digits a cookie's Version has:
// 36^13 > 2^64.
const MaxVersionDigits = 13

// New returns a fresh ID: 256 bits from crypto/rand, in base64url
// without padding (Len characters).
func New() string {
	b := make([]byte, idBytes)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Valid reports whether s has the form of an ID from New: exactly Len
// characters of the base64url alphabet encoding 32 bytes, with no stray
// bits. It looks at nothing else first, so a cookie of any size is cheap
// to refuse. A valid form says nothing about whether the session exists.
func Valid(s string) bool {
	if len(s) != Len {
		return false
	}
	for i := range len(s) {
		if b64Value[s[i]] < 0 {
			return false
		}
	}
	// 43 characters carry 258 bits: the last one's 2 low bits are not
	// part of the 32 bytes, and a strict decoding wants them zero.
	return b64Value[s[Len-1]]&3 == 0
}

// b64Value is the value of each base64url character, -1 for any other
// byte: Valid runs on every request, and a table beats decoding.
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

// Key is the Store key of the session with this ID: prefix and the
// SHA-256 of the ID in base64url, so that a dump of the store holds no
// token a client could present. It runs on every request and makes one
// allocation, the key itself, for any ID of up to 64 bytes.
func Key(prefix, id string) string {
	var buf [64]byte
	sum := sha256.Sum256(append(buf[:0], id...))
	var enc [43]byte // base64.RawURLEncoding.EncodedLen(sha256.Size)
	base64.RawURLEncoding.Encode(enc[:], sum[:])
	var b strings.Builder
	b.Grow(len(prefix) + len(enc))
	b.WriteString(prefix)
	b.Write(enc[:])
	return b.String()
}

// A cookie names a session and, after a dot, the Version its last save
// wrote, in lower-case base 36: "<ID>.<version>". The version lets an
// instance whose copy is older (its invalidation still in flight) read
// the source of truth instead of serving it, so that a browser sees its
// own last change on any instance. It only chooses where to read from: a
// client that forges it can only make its own reads skip a cache.

// FormatCookie is the cookie value of id at Version v: the ID alone if
// v is NoVersion.
func FormatCookie(id string, v tierstore.Version) string {
	if v == tierstore.NoVersion {
		return id
	}
	return id + "." + strconv.FormatUint(uint64(v), 36)
}

// ParseCookie splits a cookie value into a valid ID and the Version it
// names (NoVersion for an ID alone), and reports whether the value has
// exactly the form FormatCookie writes: one spelling per Version, at most
// MaxVersionDigits digits, no leading zero. Anything else is refused
// before any Store call, whatever its size.
func ParseCookie(s string) (id string, v tierstore.Version, ok bool) {
	if len(s) > Len+1+MaxVersionDigits {
		return "", 0, false
	}
	id, digits, dotted := strings.Cut(s, ".")
	if !Valid(id) {
		return "", 0, false
	}
	if !dotted {
		return id, tierstore.NoVersion, true
	}
	if len(digits) == 0 || digits[0] == '0' {
		return "", 0, false
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
