package session

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

type status int

const (
	unmodified status = iota
	modified
	destroyed
)

// state is one request's view of its session.
type state struct {
	m  *Manager
	mu sync.Mutex

	id       string // "" until the session is first saved
	stored   bool   // the Store holds this id
	deadline time.Time
	expiry   time.Time // the Store's expiry when loaded; zero if unknown
	values   map[string][]byte
	status   status
}

type contextKey struct{ m *Manager }

func (m *Manager) state(ctx context.Context) (*state, error) {
	st, ok := ctx.Value(contextKey{m}).(*state)
	if !ok {
		return nil, ErrNoSession
	}
	return st, nil
}

// Put sets key to val, to be saved when the response is written. val is
// encoded now, with the Manager's codec: an error means it cannot be.
func (m *Manager) Put(ctx context.Context, key string, val any) error {
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	b, err := m.codec.Marshal(val)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.values[key] = b
	st.status = modified
	return nil
}

// Get returns the value of key decoded without its Go type (msgpack:
// integers as int64, floats as float64, strings, bools, []byte, time.Time,
// []any, map[string]any), or nil if absent. Use Decode or the typed
// getters to get the type that was put.
func (m *Manager) Get(ctx context.Context, key string) any {
	var v any
	if _, err := m.Decode(ctx, key, &v); err != nil {
		return nil
	}
	return v
}

// Decode decodes the value of key into ptr, which must point to a variable
// of the type that was put (or one the codec converts it to). It reports
// whether the key was present.
func (m *Manager) Decode(ctx context.Context, key string, ptr any) (bool, error) {
	st, err := m.state(ctx)
	if err != nil {
		return false, err
	}
	st.mu.Lock()
	b, ok := st.values[key]
	st.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, m.codec.Unmarshal(b, ptr)
}

// getAs decodes key into a T, or returns T's zero value.
func getAs[T any](m *Manager, ctx context.Context, key string) T {
	var v T
	if ok, err := m.Decode(ctx, key, &v); !ok || err != nil {
		var zero T
		return zero
	}
	return v
}

// GetString returns the string under key, or "" if absent or not a string.
func (m *Manager) GetString(ctx context.Context, key string) string {
	return getAs[string](m, ctx, key)
}

// GetInt returns the integer under key, or 0.
func (m *Manager) GetInt(ctx context.Context, key string) int { return getAs[int](m, ctx, key) }

// GetInt64 returns the integer under key, or 0.
func (m *Manager) GetInt64(ctx context.Context, key string) int64 {
	return getAs[int64](m, ctx, key)
}

// GetFloat64 returns the number under key, or 0.
func (m *Manager) GetFloat64(ctx context.Context, key string) float64 {
	return getAs[float64](m, ctx, key)
}

// GetBool returns the bool under key, or false.
func (m *Manager) GetBool(ctx context.Context, key string) bool { return getAs[bool](m, ctx, key) }

// GetBytes returns the []byte under key, or nil.
func (m *Manager) GetBytes(ctx context.Context, key string) []byte {
	return getAs[[]byte](m, ctx, key)
}

// GetTime returns the time.Time under key, or the zero time.
func (m *Manager) GetTime(ctx context.Context, key string) time.Time {
	return getAs[time.Time](m, ctx, key)
}

// Pop returns the value of key like Get and removes it: for one-time
// messages ("flash").
func (m *Manager) Pop(ctx context.Context, key string) any {
	v := m.Get(ctx, key)
	if v != nil {
		_ = m.Remove(ctx, key)
	}
	return v
}

// PopString returns the string under key like GetString and removes it.
func (m *Manager) PopString(ctx context.Context, key string) string {
	v := m.GetString(ctx, key)
	if m.Exists(ctx, key) {
		_ = m.Remove(ctx, key)
	}
	return v
}

// Remove deletes key from the session. Removing an absent key changes
// nothing and saves nothing.
func (m *Manager) Remove(ctx context.Context, key string) error {
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.values[key]; ok {
		delete(st.values, key)
		st.status = modified
	}
	return nil
}

// Exists reports whether key is in the session.
func (m *Manager) Exists(ctx context.Context, key string) bool {
	st, err := m.state(ctx)
	if err != nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.values[key]
	return ok
}

// Keys returns the session's keys, sorted.
func (m *Manager) Keys(ctx context.Context) []string {
	st, err := m.state(ctx)
	if err != nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	keys := make([]string, 0, len(st.values))
	for k := range st.values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Deadline returns when the session ends at the latest (its absolute
// lifetime), or the zero time for a session not saved yet.
func (m *Manager) Deadline(ctx context.Context) time.Time {
	st, err := m.state(ctx)
	if err != nil {
		return time.Time{}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.deadline
}

// Renew gives the session a new ID, keeping its data and deadline, and
// deletes the old ID from the Store at once, so that every instance
// rejects it (within the Store's invalidation bound). Call it on login and
// on any change of privilege: it defeats session fixation. The new ID is
// saved, and sent in the cookie, with the response.
func (m *Manager) Renew(ctx context.Context) error {
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := m.deleteStored(ctx, st, "renew"); err != nil {
		return err
	}
	st.id = NewID()
	if st.deadline.IsZero() {
		st.deadline = m.cfg.Now().Add(m.cfg.Lifetime)
	}
	st.status = modified
	return nil
}

// Destroy ends the session (logout): it is deleted from the Store at once,
// its data is cleared, and the response deletes the cookie. Values put
// afterwards start a new session with a new ID.
func (m *Manager) Destroy(ctx context.Context) error {
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := m.deleteStored(ctx, st, "destroy"); err != nil {
		return err
	}
	st.id, st.deadline, st.expiry = "", time.Time{}, time.Time{}
	st.values = map[string][]byte{}
	st.status = destroyed
	return nil
}

// deleteStored deletes the session's stored copy, if any, at once, so that
// every instance rejects its ID. st.mu must be held.
func (m *Manager) deleteStored(ctx context.Context, st *state, op string) error {
	if !st.stored {
		return nil
	}
	if err := m.cfg.Store.Delete(ctx, m.storeKey(st.id)); err != nil {
		return fmt.Errorf("session: %s: stored session not deleted: %w", op, err)
	}
	st.stored = false
	return nil
}
