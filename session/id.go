package session

import "github.com/tierstore/tierstore/session/sessionid"

// NewID returns a fresh session ID: 256 bits from crypto/rand, in
// base64url without padding (43 characters). It is the ID the Manager
// issues, and sessionid.New, which the gorilla/sessions adapter issues.
func NewID() string { return sessionid.New() }

// ValidID reports whether s has the form of an ID from NewID: exactly 43
// characters of the base64url alphabet encoding 32 bytes, with no stray
// bits (sessionid.Valid). A valid form says nothing about whether the
// session exists.
func ValidID(s string) bool { return sessionid.Valid(s) }

// storeKey is the Store key of a session. By default it is a hash of the
// ID, so that a dump of the store holds no token a client could present.
func (m *Manager) storeKey(id string) string {
	if m.cfg.RawIDKeys {
		return m.cfg.KeyPrefix + id
	}
	return sessionid.Key(m.cfg.KeyPrefix, id)
}
