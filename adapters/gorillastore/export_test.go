package gorillastore

// KeyOf is the Store key of the session with this ID, for tests that read
// the source of truth.
func (s *Store) KeyOf(id string) string { return s.key(id) }

// TrackedSessions counts the sessions whose state the side table holds.
func TrackedSessions() int {
	n := 0
	states.Range(func(any, any) bool { n++; return true })
	return n
}

// Decode decodes a stored session.
var Decode = decode
