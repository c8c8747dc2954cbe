package bus

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// ID identifies one instance (one Bus) on the channel, so that it can tell
// its own messages from its peers'.
type ID [16]byte

// NewID returns a random ID.
func NewID() ID {
	var id ID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	return id
}

// String returns the ID in hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Message is one decoded bus.
type Message struct {
	// Sender is the ID of the instance that wrote the key.
	Sender ID
	// Key is the invalidated key, without the store's key prefix.
	Key string
	// Own reports whether the receiving bus sent it (Sender is its ID).
	Own bool
}

// Wire format, version 1 (all messages are at least headerLen bytes):
//
//	byte 0      version (1)
//	byte 1      kind: 1 = one key
//	bytes 2-17  sender ID
//	bytes 18-   the key
const (
	version1  = 1
	kindKey   = 1
	headerLen = 2 + len(ID{})
)

// Errors from Decode.
var (
	// ErrMalformed: the payload is not an invalidation message.
	ErrMalformed = errors.New("bus: malformed message")
	// ErrUnknownVersion: the payload is a message of a newer format (a
	// peer running a later release). Its key cannot be read, so the
	// receiver must treat it as a gap.
	ErrUnknownVersion = errors.New("bus: unknown message version")
)

// AppendMessage appends the encoding of an invalidation of key by sender.
func AppendMessage(dst []byte, sender ID, key string) []byte {
	dst = append(dst, version1, kindKey)
	dst = append(dst, sender[:]...)
	return append(dst, key...)
}

// Decode parses a payload. It never panics, whatever the input.
func Decode(payload string) (Message, error) {
	if len(payload) < 1 {
		return Message{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if payload[0] != version1 {
		return Message{}, fmt.Errorf("%w: %d", ErrUnknownVersion, payload[0])
	}
	if len(payload) <= headerLen {
		return Message{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(payload))
	}
	if payload[1] != kindKey {
		return Message{}, fmt.Errorf("%w: kind %d", ErrMalformed, payload[1])
	}
	var m Message
	copy(m.Sender[:], payload[2:headerLen])
	m.Key = payload[headerLen:]
	return m, nil
}
