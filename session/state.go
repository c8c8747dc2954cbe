package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/codec"
	"github.com/tierstore/tierstore/session/versioned"
)

type status uint8 // a byte: it packs with the bools of state

const (
	unmodified status = iota
	modified
	destroyed
)

// state is one request's view of its session.
//
// Besides the values, it keeps what the request changed (changes), so
// that a save that finds the session saved by another
// request since it was loaded (a version conflict) applies just those
// changes to the session as it is now: changes to different keys merge,
// a change to the same key is the last writer's.
type state struct {
	m  *Manager
	mu sync.Mutex

	id       string            // "" until the session is first saved
	version  tierstore.Version // with a Versioned Store
	deadline time.Time
	expiry   time.Time // the Store's expiry when loaded; zero if unknown
	values   map[string][]byte
	// The flags, side by side so that they share one word.
	stored bool // the Store holds this id, at version
	shared bool // values is a decoded session other requests use too: copy before changing
	status status
	// cookieAhead: the request's cookie names a later version than the
	// Store holds, so the response corrects it even if nothing changed.
	cookieAhead bool
	sized       bool // size is known
	// fresh: the session's ID was never stored; its first save reports
	// EventCreated.
	fresh bool

	changes map[changeKey]change // keys and labels put or removed by this request

	// meta is the session's user, creation and labels (nil: none), as
	// loaded or as this request set them; never modified in place, as a
	// decoded session shares it.
	meta *meta

	// size is the encoded size of the session as values stand, if sized:
	// known from the load (record.size) or added up at the request's
	// first Put, moved by each Put, forgotten by any other change (see
	// Manager.putWithinLimit).
	size int

	// w is the request's response writer, allocated with the state:
	// the middleware's two objects per request in one allocation.
	w saveWriter
}

// changeKey names what a change changes: a value's key, or a label's
// name (SetLabel), which a rebase applies to the session's labels. One
// map for both keeps the state of every request, most of which change
// no label, as small as before labels existed.
type changeKey struct {
	name  string
	label bool
}

// change is a key's new value, or its removal.
type change struct {
	value   []byte
	removed bool
}

// own makes st.values this request's own before a change. st.mu must be
// held.
func (st *state) own() {
	if st.shared {
		st.values, st.shared = maps.Clone(st.values), false
	}
}

// note records a change of key. st.mu must be held.
func (st *state) note(key string, c change) {
	st.noteChange(changeKey{name: key}, c)
}

func (st *state) noteChange(k changeKey, c change) {
	if st.changes == nil {
		st.changes = map[changeKey]change{}
	}
	st.changes[k] = c
	st.status = modified
}

// rebase makes st the session as stored now (rec at version), with this
// request's changes applied again. st.mu must be held.
func (st *state) rebase(rec record, version tierstore.Version, expiry time.Time) {
	values := map[string][]byte{}
	for k, v := range rec.Values {
		values[k] = v
	}
	for k, c := range st.changes {
		switch {
		case k.label:
		case c.removed:
			delete(values, k.name)
		default:
			values[k.name] = c.value
		}
	}
	st.values, st.shared, st.version, st.expiry = values, false, version, expiry
	st.deadline, st.sized = time.Unix(0, rec.Deadline), false
	st.meta = rec.Meta
	st.applyLabels()
}

// applyLabels applies this request's label changes to st.meta. st.mu
// must be held.
func (st *state) applyLabels() {
	labelled := false
	for k := range st.changes {
		labelled = labelled || k.label
	}
	if !labelled {
		return
	}
	var md meta
	if st.meta != nil {
		md = *st.meta
	}
	labels := maps.Clone(md.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	for k, c := range st.changes {
		switch {
		case !k.label:
		case c.removed:
			delete(labels, k.name)
		default:
			labels[k.name] = string(c.value)
		}
	}
	if len(labels) == 0 {
		labels = nil
	}
	md.Labels = labels
	st.meta, st.sized = &md, false
}

// record is the session to store, saved at now. st.mu must be held.
func (st *state) record(now time.Time) record {
	rec := record{Deadline: st.deadline.UnixNano(), Values: st.values}
	if st.meta != nil {
		md := *st.meta
		md.Saved = now.UnixNano()
		rec.Meta = &md
	}
	return rec
}

// drop forgets a session found deleted in the Store: nothing of it, nor
// of this request's changes to it, is saved. st.mu must be held.
func (st *state) drop() {
	st.id, st.stored, st.version = "", false, tierstore.NoVersion
	st.deadline, st.expiry = time.Time{}, time.Time{}
	st.values, st.shared, st.changes, st.sized = map[string][]byte{}, false, nil, false
	st.meta = nil
	st.status = destroyed
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
//
// If the session with val would be larger, encoded, than Config.MaxBytes
// (by default the Store's largest value), Put changes nothing and returns
// an error wrapping tierstore.ErrTooLarge, which names no key, value or
// session ID; the request's other changes are saved as usual.
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
	if err := m.putWithinLimit(st, key, b); err != nil {
		return err
	}
	st.note(key, change{value: b})
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
	b, ok, err := m.encoded(ctx, key)
	if err != nil || !ok {
		return false, err
	}
	return true, m.codec.Unmarshal(b, ptr)
}

// encoded returns the encoded value of key in the request's session, and
// whether it is there.
func (m *Manager) encoded(ctx context.Context, key string) ([]byte, bool, error) {
	st, err := m.state(ctx)
	if err != nil {
		return nil, false, err
	}
	st.mu.Lock()
	b, ok := st.values[key]
	st.mu.Unlock()
	return b, ok, nil
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
	b, ok, err := m.encoded(ctx, key)
	if err != nil || !ok {
		return ""
	}
	if _, mp := m.codec.(codec.MsgpackCodec); mp {
		// The common case, read on most requests, without the decoder's
		// reflection: the bytes of a msgpack string.
		if s, ok := msgpackString(b); ok {
			return s
		}
	}
	var s string
	if m.codec.Unmarshal(b, &s) != nil {
		return ""
	}
	return s
}

// msgpackString returns the string b encodes, if b is exactly one msgpack
// str (the form msgpack gives a Go string); otherwise false, and the
// decoder decides.
func msgpackString(b []byte) (string, bool) {
	if len(b) == 0 {
		return "", false
	}
	var n, h int
	switch c := b[0]; {
	case c >= 0xa0 && c <= 0xbf:
		n, h = int(c&0x1f), 1
	case c == 0xd9 && len(b) >= 2:
		n, h = int(b[1]), 2
	case c == 0xda && len(b) >= 3:
		n, h = int(binary.BigEndian.Uint16(b[1:])), 3
	case c == 0xdb && len(b) >= 5:
		n, h = int(binary.BigEndian.Uint32(b[1:])), 5
	default:
		return "", false
	}
	if len(b)-h != n {
		return "", false
	}
	return string(b[h:]), true
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
		st.own()
		delete(st.values, key)
		st.note(key, change{removed: true})
		st.sized = false
	}
	return nil
}

// Clear removes every key of the session, as Remove of each would,
// keeping the session itself (its ID and deadline): unlike Destroy, the
// user stays in a session. Keys another request adds concurrently are
// not removed, since this request never saw them. Clearing an empty
// session changes nothing and saves nothing.
func (m *Manager) Clear(ctx context.Context) error {
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for k := range st.values {
		st.note(k, change{removed: true})
	}
	st.values, st.shared, st.sized = map[string][]byte{}, false, false
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
// rejects it (within the Store's invalidation bound) and no save of the
// old session, on any instance, makes it valid again. Call it on login
// and on any change of privilege: it defeats session fixation. The new ID
// is saved, and sent in the cookie, with the response.
//
// With a tierstore.Versioned Store, changes that other requests saved to
// the old ID before it was deleted carry over to the new one. If the old
// session was deleted meanwhile (a logout elsewhere), nothing of it
// carries over: the new session starts empty.
//
// A session bound to a user (SetUser) is written under its new ID at
// once, and its new handle replaces the old one in the user's index; if
// it was revoked meanwhile, the request ends logged out instead.
func (m *Manager) Renew(ctx context.Context) error {
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	var ev events
	defer m.emit(&ev)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stored && st.meta != nil && st.meta.User != "" {
		// A bound session: its new ID replaces the old in its user's index.
		vs, err := m.versioned()
		if err != nil {
			return err
		}
		return m.bind(ctx, vs, st, st.meta.User, false, &ev)
	}
	prev := ""
	if st.stored {
		prev = handleOf(m.storeKey(st.id))
	}
	if err := m.deleteStored(ctx, st); err != nil {
		return err
	}
	st.id, st.version = NewID(), tierstore.NoVersion
	if prev != "" && st.status != destroyed {
		m.add(&ev, EventRenewed, "", handleOf(m.storeKey(st.id)), prev)
	} else {
		st.fresh = true // its first save creates it
	}
	if st.deadline.IsZero() {
		st.deadline = m.cfg.Now().Add(m.cfg.Lifetime)
	}
	st.status = modified
	m.counters.renewed.Add(1)
	return nil
}

// Destroy ends the session (logout): it is deleted from the Store at once,
// its data is cleared, and the response deletes the cookie. No save of the
// old session, on any instance, in flight or later, makes it valid again.
// Values put afterwards start a new session with a new ID.
func (m *Manager) Destroy(ctx context.Context) error {
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	var ev events
	defer m.emit(&ev)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stored {
		key := m.storeKey(st.id)
		ended := true
		if vs, ok := m.cfg.Store.(tierstore.Versioned); ok {
			// Conditional, so that the one request that ended it reports
			// it; a conflict re-reads and deletes again, so the logout
			// still wins over every concurrent save.
			ended, err = m.endStored(ctx, vs, key, st.version)
			if errors.Is(err, tierstore.ErrConflict) {
				// As many saves as versioned.MaxAttempts in between: the
				// logout still wins, unconditionally.
				ended, err = true, m.cfg.Store.Delete(ctx, key)
			}
		} else {
			err = m.cfg.Store.Delete(ctx, key)
		}
		if err != nil {
			return fmt.Errorf("session: destroy: stored session not deleted: %w", err)
		}
		if ended && m.cfg.OnEvent != nil {
			user := ""
			if st.meta != nil {
				user = st.meta.User
			}
			m.add(&ev, EventDestroyed, user, handleOf(key), "")
		}
	}
	st.drop()
	m.counters.destroyed.Add(1)
	return nil
}

// deleteStored deletes the session's stored copy, if any, at once, so that
// every instance rejects its ID. With a Versioned Store the delete is
// conditional on the version this request holds, merging what others
// saved meanwhile into st; if the session is gone already, st becomes
// empty. st.mu must be held.
func (m *Manager) deleteStored(ctx context.Context, st *state) error {
	if !st.stored {
		return nil
	}
	key := m.storeKey(st.id)
	var err error
	if vs, ok := m.cfg.Store.(tierstore.Versioned); ok {
		err = versioned.Delete(ctx, vs, key, st.version, func(current []byte, v tierstore.Version, expiry time.Time) error {
			_, end := m.trace(ctx, "merge")
			rec, err := m.decode(key, current, nil, expiry)
			if err == nil {
				st.rebase(rec, v, expiry)
				m.counters.merges.Add(1)
			}
			endTrace(end, err)
			return err
		})
		if errors.Is(err, errGone) {
			st.drop() // logged out elsewhere: start empty
			return nil
		}
	} else {
		err = m.cfg.Store.Delete(ctx, key)
	}
	if err != nil {
		return fmt.Errorf("session: renew: stored session not deleted: %w", err)
	}
	st.stored = false
	return nil
}
