// Package seal encrypts session records at rest: AES-GCM under a key set
// that rotates (values are sealed with the newest key and opened with any
// key of the set, named by the key ID in each sealed frame), with the
// Store key as additional data, so that a sealed value moved to another
// key does not open.
//
// A sealed frame is
//
//	version (1 byte, 1) | key ID (4 bytes, big-endian) | nonce (12 bytes) | ciphertext and tag (16 bytes)
//
// Nonces are random: NIST SP 800-38D bounds a key with random 96-bit
// nonces at 2^32 seals, so rotate a key well before it has sealed that
// many values (with sessions saved a thousand times a second, that is
// about 50 days).
//
// Only the standard library's crypto/aes and crypto/cipher are used. A
// Key or KeySet never prints or logs its secret: String, GoString and
// LogValue show the key IDs only.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/tierstore/tierstore"
)

const (
	frameVersion = 1
	headerLen    = 1 + 4 // version, key ID
	nonceLen     = 12
	tagLen       = 16
	// Overhead is how many bytes sealing adds to a value.
	Overhead = headerLen + nonceLen + tagLen
)

// Key is one AES key with its ID. Make it with NewKey.
type Key struct {
	id   uint32
	aead cipher.AEAD
}

// NewKey returns the key of id with secret, which must be 16, 24 or 32
// random bytes (AES-128, -192, -256; 32 recommended). The secret is not
// kept: only the cipher made from it. IDs name keys in sealed frames, so
// never reuse an ID for another secret.
func NewKey(id uint32, secret []byte) (*Key, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, fmt.Errorf("seal: key %d: the secret must be 16, 24 or 32 bytes, not %d", id, len(secret))
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: key %d: %w", id, err)
	}
	return &Key{id: id, aead: aead}, nil
}

// ID returns the key's ID.
func (k *Key) ID() uint32 { return k.id }

// String shows the key's ID, never its secret.
func (k *Key) String() string { return "seal.Key(" + strconv.FormatUint(uint64(k.id), 10) + ")" }

// GoString is String, for %#v.
func (k *Key) GoString() string { return k.String() }

// LogValue is String, for log/slog.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// KeySet is the keys a Manager seals and opens with: it seals with the
// current key and opens with any of them. It is safe for concurrent use.
type KeySet struct {
	current *Key
	byID    map[uint32]*Key
}

// NewKeySet returns the set that seals with current and opens with
// current and every key of older. To rotate: deploy a set with the new
// key listed among older everywhere (every instance can then open what
// it seals), then make it current everywhere, and drop an old key once
// no session sealed with it can be live (after Lifetime).
func NewKeySet(current *Key, older ...*Key) (*KeySet, error) {
	if current == nil {
		return nil, errors.New("seal: no current key")
	}
	ks := &KeySet{current: current, byID: map[uint32]*Key{current.id: current}}
	for _, k := range older {
		if k == nil {
			return nil, errors.New("seal: a nil key")
		}
		if _, dup := ks.byID[k.id]; dup {
			return nil, fmt.Errorf("seal: key ID %d listed twice", k.id)
		}
		ks.byID[k.id] = k
	}
	return ks, nil
}

// String shows the set's key IDs, current first, never a secret.
func (ks *KeySet) String() string {
	var b strings.Builder
	b.WriteString("seal.KeySet(current ")
	b.WriteString(strconv.FormatUint(uint64(ks.current.id), 10))
	if len(ks.byID) > 1 {
		b.WriteString(", ")
		b.WriteString(strconv.Itoa(len(ks.byID) - 1))
		b.WriteString(" older")
	}
	b.WriteString(")")
	return b.String()
}

// GoString is String, for %#v.
func (ks *KeySet) GoString() string { return ks.String() }

// LogValue is String, for log/slog.
func (ks *KeySet) LogValue() slog.Value { return slog.StringValue(ks.String()) }

// Seal returns plaintext sealed with the current key, bound to ad (the
// Store key it is written under).
func (ks *KeySet) Seal(plaintext, ad []byte) []byte {
	k := ks.current
	out := make([]byte, headerLen+nonceLen, Overhead+len(plaintext))
	out[0] = frameVersion
	binary.BigEndian.PutUint32(out[1:headerLen], k.id)
	_, _ = rand.Read(out[headerLen:]) // never fails (Go 1.24+)
	return k.aead.Seal(out, out[headerLen:headerLen+nonceLen], plaintext, ad)
}

// Open returns the plaintext of a frame that Seal made with ad and a key
// of the set. Anything else (a short or damaged frame, another version,
// a key not in the set, a frame sealed for another ad) is an error
// wrapping tierstore.ErrCorrupt that says which, never a panic.
func (ks *KeySet) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("seal: a frame of %d bytes, shorter than the %d of an empty value: %w", len(sealed), Overhead, tierstore.ErrCorrupt)
	}
	if sealed[0] != frameVersion {
		return nil, fmt.Errorf("seal: frame version %d, not %d (not a sealed value?): %w", sealed[0], frameVersion, tierstore.ErrCorrupt)
	}
	id := binary.BigEndian.Uint32(sealed[1:headerLen])
	k, ok := ks.byID[id]
	if !ok {
		return nil, fmt.Errorf("seal: sealed with key %d, which the key set does not hold (rotated out?): %w", id, tierstore.ErrCorrupt)
	}
	nonce := sealed[headerLen : headerLen+nonceLen]
	plain, err := k.aead.Open(nil, nonce, sealed[headerLen+nonceLen:], ad)
	if err != nil {
		return nil, fmt.Errorf("seal: key %d: authentication failed (damaged, forged, or moved from another Store key): %w", id, tierstore.ErrCorrupt)
	}
	return plain, nil
}
