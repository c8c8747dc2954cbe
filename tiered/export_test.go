package tiered

// Tests reach the Store's hooks as s.hooks; newStore gives every test
// Store an empty set before it is used, so that setting one later (before
// the call it should see) races with nothing.
func withHooks(s *Store) *Store {
	s.hooks = &hooks{}
	return s
}
