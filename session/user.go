package session

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/session/versioned"
)

// A user's sessions are one thing: SetUser binds a session to a user and
// records it in the user's index, one Store record per user (under
// KeyPrefix + "user:" + a hash of the user), which maps each session's
// handle to its Store key, creation and absolute deadline. Every change
// of an index is a conditional write (versioned.Update), so concurrent
// logins, renewals and revocations of one user on any number of
// instances each see the others' changes.
//
// The invariants:
//   - A session is written before its index entry, so an entry whose
//     session is absent names a session that ended for good (destroyed,
//     revoked or expired): reading the index prunes it, with no scan of
//     the keyspace. Entries past their deadline are pruned on every write
//     of the index.
//   - Revoking a session deletes it conditionally (versioned.Delete), as
//     Destroy does: no in-flight save of it, on any instance, brings it
//     back, and every instance's L1 drops it by the Store's invalidation.
//   - A revoked handle stays in the index (Revoked) until its deadline,
//     so that a Renew of it in flight, which writes its new ID before it
//     replaces the old one in the index, finds it revoked and ends the new
//     session instead of indexing it.
//   - Sessions ended by a revocation or an eviction are ended before the
//     index write that drops them: a failure leaves them indexed, never
//     alive and unlisted.

// SessionInfo is one of a user's live sessions, as UserSessions lists it.
type SessionInfo struct {
	// Handle names the session for RevokeSession. It is derived from the
	// session's Store key by a one-way hash: it is not the ID, and
	// presented as a cookie it names no session.
	Handle string
	// Created is when the session was bound to the user (SetUser).
	Created time.Time
	// LastSeen is the last save of the session or, with IdleTimeout, the
	// last extension of its idle deadline, whichever is later: so within
	// TouchInterval of the last request.
	LastSeen time.Time
	// Expires is when the session ends unless a request extends it.
	Expires time.Time
	// Labels are what the application recorded with SetLabel (a device,
	// an address), or nil.
	Labels map[string]string
	// Current reports whether this is the session of the request whose
	// context UserSessions was given.
	Current bool
}

// errNotVersioned: the per-user index needs conditional writes.
var errNotVersioned = errors.New("session: the per-user index needs a Store that implements tierstore.Versioned (l1, l2 and tiered do)")

// userIndex is a user's index as stored.
type userIndex struct {
	// Sessions maps each handle to its session.
	Sessions map[string]indexEntry `msgpack:"s" json:"s"`
	// Revoked maps each handle revoked, evicted or renewed away while
	// revoked to its deadline (Unix nanoseconds).
	Revoked map[string]int64 `msgpack:"r,omitempty" json:"r,omitempty"`
}

type indexEntry struct {
	Key      string `msgpack:"k" json:"k"` // the session's Store key
	Created  int64  `msgpack:"c" json:"c"` // Unix nanoseconds
	Deadline int64  `msgpack:"d" json:"d"` // the session's absolute end, Unix nanoseconds
}

// handleOf is the handle of the session under a Store key: a one-way
// hash of the key (itself a hash of the ID, unless RawIDKeys), so that
// neither the handle nor the index it is kept in holds a usable token.
func handleOf(key string) string {
	sum := sha256.Sum256([]byte("tierstore session handle\x00" + key))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// indexKey is the Store key of user's index. It holds a hash of the user,
// not the user; it never equals a session key (those have no ':' after
// the prefix).
func (m *Manager) indexKey(user string) string {
	sum := sha256.Sum256([]byte(user))
	return m.cfg.KeyPrefix + "user:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func (m *Manager) versioned() (tierstore.Versioned, error) {
	vs, ok := m.cfg.Store.(tierstore.Versioned)
	if !ok {
		return nil, errNotVersioned
	}
	return vs, nil
}

// decodeIndex decodes an index read under key (nil: an absent index).
func (m *Manager) decodeIndex(key string, data []byte) (userIndex, error) {
	var ix userIndex
	if data != nil {
		if err := m.unmarshal(key, data, &ix); err != nil {
			return userIndex{}, fmt.Errorf("session: a user's index under prefix %q is unreadable: %w: %w", m.cfg.KeyPrefix, tierstore.ErrCorrupt, err)
		}
	}
	if ix.Sessions == nil {
		ix.Sessions = map[string]indexEntry{}
	}
	if ix.Revoked == nil {
		ix.Revoked = map[string]int64{}
	}
	return ix, nil
}

// readIndex reads user's index (empty if absent) and its Version.
func (m *Manager) readIndex(ctx context.Context, vs tierstore.Versioned, user string) (userIndex, tierstore.Version, error) {
	key := m.indexKey(user)
	data, v, _, err := vs.GetVersion(ctx, key, tierstore.NoVersion)
	if errors.Is(err, tierstore.ErrNotFound) {
		data, v, err = nil, tierstore.NoVersion, nil
	}
	if err != nil {
		return userIndex{}, 0, err
	}
	ix, err := m.decodeIndex(key, data)
	return ix, v, err
}

// lists reports whether ix lists the session under Store key.
func (ix userIndex) lists(key string) bool {
	for _, e := range ix.Sessions {
		if e.Key == key {
			return true
		}
	}
	return false
}

// errRenewRevoked: a renewal found its old handle revoked.
var errRenewRevoked = errors.New("session: renewed session revoked meanwhile")

// updateIndex applies change to user's index, as read at v, and writes
// it conditionally, applying change again to the index as it is after
// each conflict. change may run more than once: what it does besides
// changing ix must be harmless to repeat. Entries past their deadline
// are pruned; an index left empty is deleted.
func (m *Manager) updateIndex(ctx context.Context, vs tierstore.Versioned, user string, ix userIndex, v tierstore.Version, change func(ix *userIndex) error) error {
	key := m.indexKey(user)
	build := func(ix userIndex) ([]byte, time.Time, error) {
		if err := change(&ix); err != nil {
			return nil, time.Time{}, err
		}
		now := m.cfg.Now().UnixNano()
		var last int64
		for h, e := range ix.Sessions {
			if e.Deadline <= now {
				delete(ix.Sessions, h)
			}
			last = max(last, e.Deadline)
		}
		for h, d := range ix.Revoked {
			if d <= now {
				delete(ix.Revoked, h)
			}
			last = max(last, d)
		}
		if len(ix.Sessions) == 0 && len(ix.Revoked) == 0 {
			return nil, time.Unix(1, 0), nil // past: the write deletes the index
		}
		data, err := m.encode(key, ix)
		return data, time.Unix(0, last), err
	}
	data, expiry, err := build(ix)
	if err != nil {
		return err
	}
	_, err = versioned.Update(ctx, vs, key, v, data, expiry, func(current []byte, _ tierstore.Version, _ time.Time) ([]byte, time.Time, bool, error) {
		ix, err := m.decodeIndex(key, current)
		if err != nil {
			return nil, time.Time{}, false, err
		}
		data, expiry, err := build(ix)
		return data, expiry, true, err
	})
	return err
}

// revokeKey ends the session under key, if it is live, by a conditional
// delete, and reports whether this call ended it (and not a Destroy,
// revocation or expiry before it).
func (m *Manager) revokeKey(ctx context.Context, vs tierstore.Versioned, key string) (bool, error) {
	_, v, _, err := m.read(ctx, key, tierstore.NoVersion)
	switch {
	case errors.Is(err, errGone):
		return false, nil // absent, unreadable or past its deadline: no session
	case err != nil:
		return false, err
	}
	return m.endStored(ctx, vs, key, v)
}

// endStored deletes the session under key conditionally on Version v,
// re-reading it after a conflict, and reports whether this call ended
// it: false if it was gone (deleted or expired) since.
func (m *Manager) endStored(ctx context.Context, vs tierstore.Versioned, key string, v tierstore.Version) (bool, error) {
	err := versioned.Delete(ctx, vs, key, v, func(current []byte, _ tierstore.Version, expiry time.Time) error {
		_, err := m.decode(key, current, nil, expiry)
		return err
	})
	if errors.Is(err, errGone) {
		return false, nil
	}
	return err == nil, err
}

// revokeEntry ends the session of handle h in ix (if live), marks h
// revoked and reports whether this call ended it.
func (m *Manager) revokeEntry(ctx context.Context, vs tierstore.Versioned, ix *userIndex, h string) (bool, error) {
	e, ok := ix.Sessions[h]
	if !ok {
		return false, nil
	}
	ended, err := m.revokeKey(ctx, vs, e.Key)
	if err != nil {
		return false, err
	}
	delete(ix.Sessions, h)
	ix.Revoked[h] = e.Deadline
	return ended, nil
}

// SetUser binds the request's session to user (the login step) and gives
// it a new ID, as Renew does (the fixation defence), in one operation:
// the old ID is deleted, the session is written under its new ID at once
// and recorded in the user's index, so UserSessions lists it and
// RevokeUser ends it from now on. Changes other requests saved to the old
// ID carry over; a session logged out meanwhile starts empty. A session
// bound to another user is rebound. The new ID is sent in the cookie with
// the response; values put afterwards are saved with it as usual.
//
// With Config.MaxSessionsPerUser, a login beyond the limit ends the
// user's oldest sessions (EventEvicted). It needs a tierstore.Versioned
// Store. On an error the request's session is ended: nothing of it is
// saved or sent.
func (m *Manager) SetUser(ctx context.Context, user string) error {
	if user == "" {
		return errors.New("session: SetUser: empty user")
	}
	vs, err := m.versioned()
	if err != nil {
		return err
	}
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	var ev events
	defer m.emit(&ev)
	st.mu.Lock()
	defer st.mu.Unlock()
	return m.bind(ctx, vs, st, user, true, &ev)
}

// bind gives st a new ID bound to user, written now, and replaces its old
// handle with the new one in user's index. For a login (SetUser) a
// session gone meanwhile becomes a new session of user; for a renewal
// (Renew of a bound session) it ends logged out, as does a renewal whose
// old handle was revoked meanwhile. st.mu must be held.
func (m *Manager) bind(ctx context.Context, vs tierstore.Versioned, st *state, user string, login bool, ev *events) error {
	var prev string // the handle renewed away from, if any
	if st.stored {
		prev = handleOf(m.storeKey(st.id))
		changes := st.changes
		if err := m.deleteStored(ctx, st); err != nil {
			return err
		}
		if st.status == destroyed { // gone meanwhile
			if !login {
				return nil
			}
			prev = ""
			for k, c := range changes { // this request's labels, for its login
				if k.label {
					st.noteChange(k, c)
				}
			}
			st.applyLabels()
		}
	}
	now := m.cfg.Now()
	md := &meta{User: user, Created: now.UnixNano()}
	if st.meta != nil {
		if st.meta.User == user && !login {
			md.Created = st.meta.Created // a renewal: the same login
		}
		md.Labels = st.meta.Labels
	}
	if st.deadline.IsZero() {
		st.deadline = now.Add(m.cfg.Lifetime)
	}
	st.id, st.version, st.meta, st.sized = NewID(), tierstore.NoVersion, md, false
	key := m.storeKey(st.id)
	rec := st.record(now)
	data, err := m.encode(key, rec)
	if err == nil {
		st.version, err = vs.SetIf(ctx, key, data, m.idleExpiry(st.deadline), tierstore.NoVersion)
		if errors.Is(err, tierstore.ErrConflict) {
			err = errIDTaken
		}
	}
	if err != nil {
		st.drop()
		return fmt.Errorf("session: set user: %w", err)
	}
	handle := handleOf(key)
	ix, v, err := m.readIndex(ctx, vs, user)
	if err == nil {
		gone := map[string]bool{} // handles found gone, across attempts
		err = m.updateIndex(ctx, vs, user, ix, v, func(ix *userIndex) error {
			if prev != "" {
				if _, revoked := ix.Revoked[prev]; revoked && !login {
					return errRenewRevoked
				}
				delete(ix.Sessions, prev)
			}
			ix.Sessions[handle] = indexEntry{Key: key, Created: md.Created, Deadline: st.deadline.UnixNano()}
			return m.limit(ctx, ix, handle, gone, user, ev)
		})
	}
	if err != nil {
		// Not indexed: the new session must not live (RevokeUser would not
		// see it); its ID was never sent.
		_, _ = m.endStored(ctx, vs, key, st.version)
		st.drop()
		if errors.Is(err, errRenewRevoked) {
			return nil
		}
		return fmt.Errorf("session: set user: the user's index not written (the session is ended): %w", err)
	}
	st.stored, st.status, st.changes = true, unmodified, nil
	st.expiry = m.idleExpiry(st.deadline) // as written: the response need not touch it
	st.cookieAhead = true                 // the response sends the new ID
	rec.size = len(data)
	m.decoded.put(key, data, rec)
	st.shared = m.decoded != nil
	m.counters.saves.Add(1)
	if prev != "" {
		m.counters.renewed.Add(1)
		m.add(ev, EventRenewed, user, handle, prev)
	} else {
		m.counters.created.Add(1)
		m.add(ev, EventCreated, user, handle, "")
	}
	return nil
}

// limit ends the oldest sessions of ix beyond MaxSessionsPerUser, keeping
// the new one (handle): those found gone first do not count. gone
// remembers the sessions found gone or ended, which stay so, as a retry
// of the index write calls it again; a session found live is read again
// at each attempt (another login may have ended it since). A session
// ended is marked revoked, so that no renewal of it in flight comes back.
func (m *Manager) limit(ctx context.Context, ix *userIndex, handle string, gone map[string]bool, user string, ev *events) error {
	vs, err := m.versioned()
	if err != nil {
		return err
	}
	limit := m.cfg.MaxSessionsPerUser
	if limit <= 0 || len(ix.Sessions) <= limit {
		return nil
	}
	for h, e := range ix.Sessions {
		if h == handle {
			continue
		}
		if !gone[h] {
			live, err := m.live(ctx, e.Key)
			if err != nil {
				return err
			}
			gone[h] = !live
		}
		if gone[h] {
			// Marked revoked too: it may be one this login ended in an
			// attempt whose write lost, and a renewal of it in flight must
			// not come back (for one found gone, it changes nothing).
			delete(ix.Sessions, h)
			ix.Revoked[h] = e.Deadline
		}
	}
	for len(ix.Sessions) > limit {
		oldest := ""
		for h, e := range ix.Sessions {
			if h == handle {
				continue
			}
			if o, ok := ix.Sessions[oldest]; !ok || e.Created < o.Created || e.Created == o.Created && h < oldest {
				oldest = h
			}
		}
		ended, err := m.revokeEntry(ctx, vs, ix, oldest)
		if err != nil {
			return err
		}
		gone[oldest] = true
		if ended {
			m.add(ev, EventEvicted, user, oldest, "")
		}
	}
	return nil
}

// live reports whether key holds a live session (possibly one a copy
// shows that is newer than the source of truth's: a caching Store's copy
// may be stale, never ahead).
func (m *Manager) live(ctx context.Context, key string) (bool, error) {
	_, _, _, err := m.read(ctx, key, tierstore.NoVersion)
	if errors.Is(err, errGone) {
		return false, nil
	}
	return err == nil, err
}

// UserSessions lists user's live sessions, newest first, with what an
// account page shows. Entries of sessions that ended (destroyed, revoked,
// expired) are pruned from the index as it is read: the cost is one read
// of the index and one of each listed session, never a scan of the
// keyspace. If ctx is a request's behind LoadAndSave, its session is
// marked Current. A caching Store may list a session ended elsewhere
// within its staleness bound.
func (m *Manager) UserSessions(ctx context.Context, user string) ([]SessionInfo, error) {
	vs, err := m.versioned()
	if err != nil {
		return nil, err
	}
	current := ""
	if st, err := m.state(ctx); err == nil {
		st.mu.Lock()
		if st.stored && st.meta != nil && st.meta.User == user {
			current = m.storeKey(st.id)
		}
		st.mu.Unlock()
	}
	ix, v, err := m.readIndex(ctx, vs, user)
	if err != nil {
		return nil, err
	}
	if current != "" && !ix.lists(current) && v != tierstore.NoVersion {
		// The request's own session, logged in on another instance just
		// before, is missing from a copy of the index that may be older
		// than its login: read-your-writes, past the copy.
		key := m.indexKey(user)
		data, newer, _, err := versioned.Current(ctx, vs, key, v)
		switch {
		case errors.Is(err, errGone):
			ix, v = userIndex{Sessions: map[string]indexEntry{}, Revoked: map[string]int64{}}, tierstore.NoVersion
		case err != nil:
			return nil, err
		default:
			if ix, err = m.decodeIndex(key, data); err != nil {
				return nil, err
			}
			v = newer
		}
	}
	var list []SessionInfo
	var gone []string
	for h, e := range ix.Sessions {
		info, ok, err := m.info(ctx, user, e)
		if err != nil {
			return nil, err
		}
		if !ok {
			gone = append(gone, h)
			continue
		}
		info.Handle, info.Current = h, e.Key == current
		list = append(list, info)
	}
	slices.SortFunc(list, func(a, b SessionInfo) int {
		return cmp.Or(b.Created.Compare(a.Created), cmp.Compare(a.Handle, b.Handle))
	})
	if len(gone) > 0 {
		err := m.updateIndex(ctx, vs, user, ix, v, func(ix *userIndex) error {
			for _, h := range gone {
				delete(ix.Sessions, h)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("session: user sessions: pruning the index: %w", err)
		}
	}
	return list, nil
}

// info reads the session of an index entry, and reports whether it is a
// live session of user.
func (m *Manager) info(ctx context.Context, user string, e indexEntry) (SessionInfo, bool, error) {
	if e.Deadline <= m.cfg.Now().UnixNano() {
		return SessionInfo{}, false, nil
	}
	rec, _, expiry, err := m.read(ctx, e.Key, tierstore.NoVersion)
	switch {
	case errors.Is(err, errGone):
		return SessionInfo{}, false, nil
	case err != nil:
		return SessionInfo{}, false, err
	}
	if rec.Meta == nil || rec.Meta.User != user {
		return SessionInfo{}, false, nil
	}
	info := SessionInfo{
		Created:  time.Unix(0, rec.Meta.Created),
		LastSeen: time.Unix(0, rec.Meta.Saved),
		Expires:  time.Unix(0, rec.Deadline),
		Labels:   maps.Clone(rec.Meta.Labels),
	}
	if !expiry.IsZero() {
		info.Expires = expiry
		if m.cfg.IdleTimeout > 0 {
			if seen := expiry.Add(-m.cfg.IdleTimeout); seen.After(info.LastSeen) {
				info.LastSeen = seen
			}
		}
	}
	return info, true, nil
}

// RevokeSession ends the session of user named by handle (from
// UserSessions), as finally as Destroy: no request in flight, no later
// save, on any instance, brings it back. It reports whether this call
// ended a live session (false for a handle that is not user's, or a
// session that ended already). A renewal of it in flight ends logged
// out.
func (m *Manager) RevokeSession(ctx context.Context, user, handle string) (bool, error) {
	vs, err := m.versioned()
	if err != nil {
		return false, err
	}
	ix, v, err := m.readIndex(ctx, vs, user)
	if err != nil {
		return false, err
	}
	var ended bool
	err = m.updateIndex(ctx, vs, user, ix, v, func(ix *userIndex) error {
		e, err := m.revokeEntry(ctx, vs, ix, handle)
		ended = ended || e
		return err
	})
	if err != nil {
		return ended, fmt.Errorf("session: revoke session: %w", err)
	}
	if ended {
		var ev events
		m.add(&ev, EventRevoked, user, handle, "")
		m.emit(&ev)
	}
	return ended, nil
}

// RevokeUser ends every session of user ("log out everywhere", after a
// password change, say), each as finally as Destroy: no request in
// flight, no later save, on any instance, brings one back, and every
// instance stops serving them within the Store's invalidation bound. A
// login that writes the user's index after RevokeUser did (SetUser
// returning after RevokeUser) is a later session, and lives. It returns
// how many live sessions this call ended.
func (m *Manager) RevokeUser(ctx context.Context, user string) (int, error) {
	vs, err := m.versioned()
	if err != nil {
		return 0, err
	}
	ix, v, err := m.readIndex(ctx, vs, user)
	if err != nil {
		return 0, err
	}
	var ev events
	defer m.emit(&ev)
	n := 0
	err = m.updateIndex(ctx, vs, user, ix, v, func(ix *userIndex) error {
		for h := range ix.Sessions {
			ended, err := m.revokeEntry(ctx, vs, ix, h)
			if err != nil {
				return err
			}
			if ended {
				n++
				m.add(&ev, EventRevoked, user, h, "")
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("session: revoke user: %w", err)
	}
	return n, nil
}

// SetLabel records a label of the request's session (name "device",
// value a description of the browser, say), shown by UserSessions; an
// empty value removes it. It is saved with the response, merged with
// concurrent requests' changes as values are; set it before SetUser to
// have it written with the login.
func (m *Manager) SetLabel(ctx context.Context, name, value string) error {
	st, err := m.state(ctx)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.noteChange(changeKey{name: name, label: true}, change{value: []byte(value), removed: value == ""})
	st.applyLabels()
	return nil
}

// Label returns the label name of the request's session, or "".
func (m *Manager) Label(ctx context.Context, name string) string {
	return m.meta(ctx).Labels[name]
}

// User returns the user the request's session is bound to (SetUser), or
// "".
func (m *Manager) User(ctx context.Context) string { return m.meta(ctx).User }

// meta returns the request's session's meta, or a zero one.
func (m *Manager) meta(ctx context.Context) meta {
	st, err := m.state(ctx)
	if err != nil {
		return meta{}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.meta == nil {
		return meta{}
	}
	return *st.meta
}
