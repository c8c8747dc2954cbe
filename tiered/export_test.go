package tiered

import (
	"sync"
	"testing"
)

// testHooks holds the hooks of the test Stores, by Store.
var testHooks sync.Map // *Store → *hooks

func init() {
	hooksOf = func(s *Store) *hooks {
		if h, ok := testHooks.Load(s); ok {
			return h.(*hooks)
		}
		return nil
	}
}

// withHooks gives s an empty set of hooks, before it is used, so that
// setting one later (before the call it should see) races with nothing.
// newStore gives every test Store one; they go when the test ends.
func withHooks(t testing.TB, s *Store) *Store {
	testHooks.Store(s, &hooks{})
	t.Cleanup(func() { testHooks.Delete(s) })
	return s
}

// hooks returns the hooks of s, which withHooks made.
func (s *Store) hooks() *hooks {
	h, _ := testHooks.Load(s)
	return h.(*hooks)
}
