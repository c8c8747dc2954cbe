// Package gorillastore lets github.com/gorilla/sessions keep its sessions
// in any tierstore.Store (memory, Redis or tiered): a drop-in replacement
// for sessions.CookieStore or a Redis store. The cookie holds only a random
// session ID (and, see below, a version number); the values live in the
// Store, gob-encoded as gorilla's own stores encode them (register custom
// types with gob.Register).
//
//	store := gorillastore.New(tieredStore)
//	session, err := store.Get(r, "session-name")
//
// # Concurrent requests of one session
//
// On a store that implements tierstore.Versioned (l1, l2 and tiered all
// do), Save never overwrites what another request wrote since this one
// loaded the session, and never brings back a session that was deleted
// (the conditional save of package session/versioned, which package
// session and the scs adapter run too):
//
//   - Save writes only if the stored session is still the one New loaded
//     (tierstore.Versioned.SetIf). If another request saved it meanwhile,
//     on this instance or another, Save merges, key by key: the keys of
//     session.Values that this request set, changed or deleted (compared
//     with what New loaded) are applied to the session as it is stored
//     now, and the keys it did not touch keep the stored values. Two
//     requests that change different keys both keep their changes. Two
//     that change the same key: the one that saves last wins, for that
//     key. After a merge, session.Values holds the merged values, so the
//     handler reads what was stored and a second Save in the same request
//     does not undo the other request's changes. After 10 conflicting
//     writes in a row, Save gives up with an error wrapping
//     tierstore.ErrConflict.
//   - In a merge, a key counts as changed when its value differs, by
//     reflect.DeepEqual, from the loaded one after both went through gob
//     (so a nil and an empty slice, which gob stores alike, are equal).
//     Values must therefore compare meaningfully with reflect.DeepEqual
//     once decoded (a NaN is never equal to itself: a key holding one is
//     rewritten by every merge, and wins over a concurrent change of it),
//     and map keys must be values (strings, numbers), not pointers. A
//     change made in place, to a slice or map held in session.Values, is
//     seen too: New keeps the bytes it loaded, not the decoded values.
//   - A Save that changed nothing (session.Values deeply equal to the
//     loaded values) writes nothing, unless the stored expiry is a tenth
//     of the session's lifetime or more away from the one this Save would
//     give it: an unchanged session is extended at most once per tenth of
//     its MaxAge, and may end up to that much earlier than its cookie. The
//     cookie is set as usual. The check costs a gob decoding of the loaded
//     bytes; the write it saves costs a Redis round trip and drops every
//     instance's cached copy. (A value replaced by one equal only once
//     through gob, such as an empty slice for a nil one, is written here,
//     conditionally, but is no change in a merge.)
//   - Logout (Options.MaxAge < 0, then Save) deletes the session
//     unconditionally: it wins over every concurrent save. Once it has
//     returned, on any instance, no Save of that session, on any instance,
//     in flight or later, stores it again; the same holds after Store.Delete,
//     a deletion of the key by anyone else, or its expiry. Such a Save
//     writes nothing, sets no cookie (the browser keeps whatever cookie it
//     has: the logout response deleted it, and a later login's cookie must
//     not be overwritten), empties session.Values, sets IsNew, and returns
//     nil, because the request did nothing wrong: a logout in another tab
//     should not turn into a 500. Ended reports it. Every later Save of
//     that *sessions.Session does the same, unless the handler sets
//     session.ID to "" to start a new session.
//   - The cookie carries the version the response saw ("<id>.<version>",
//     the form package session writes: the version in lower-case base
//     36), and New asks the store for at least that version: a request
//     that starts after the previous response arrived sees that
//     response's changes, even on an instance whose cached copy was not
//     yet invalidated. Cookies with the ID alone are accepted too, and so
//     are versions of 14 to 20 decimal digits, a form this adapter once
//     wrote, so that the sessions of such cookies go on; a Save sets the
//     cookie in base 36. The version only chooses where to read from; a
//     client that forges it can only make its own reads skip the cache.
//
// A request that reads while another instance's write is being
// invalidated may still see the previous values (see docs/consistency.md:
// ~0.1-1 ms); it cannot store them back over the newer ones.
//
// On a store that does not implement tierstore.Versioned, Save writes the
// whole session unconditionally, as gorilla's own server-side stores do:
// concurrent requests of one session may lose each other's changes, and
// a Save that was in flight during a logout may store the session again.
package gorillastore

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/gorilla/sessions"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/session/sessionid"
	"github.com/tierstore/tierstore/session/versioned"
)

// Defaults.
const (
	DefaultKeyPrefix = "gorilla:"
	// DefaultMaxAge is the default Options.MaxAge: 30 days, as in gorilla's
	// own stores.
	DefaultMaxAge = 86400 * 30
	// BrowserSessionLifetime is how long the Store keeps a session whose
	// cookie has MaxAge 0 (it ends when the browser closes, which the
	// server cannot see).
	BrowserSessionLifetime = 24 * time.Hour
)

// refreshFraction: a Save that changes nothing rewrites the session only
// to move its expiry by at least lifetime/refreshFraction.
const refreshFraction = 10

// Store implements sessions.Store.
type Store struct {
	// Options are the cookie options of new sessions. Default: Path "/",
	// MaxAge DefaultMaxAge, HttpOnly, Secure, SameSite Lax.
	Options *sessions.Options
	// KeyPrefix is prepended to Store keys. Default DefaultKeyPrefix.
	KeyPrefix string

	store tierstore.Store
}

var _ sessions.Store = (*Store)(nil)

// New returns a Store keeping gorilla sessions in store.
func New(store tierstore.Store) *Store {
	return &Store{
		Options: &sessions.Options{
			Path: "/", MaxAge: DefaultMaxAge, HttpOnly: true, Secure: true,
			SameSite: http.SameSiteLaxMode,
		},
		KeyPrefix: DefaultKeyPrefix,
		store:     store,
	}
}

// Get returns the named session of the request, through gorilla's
// per-request registry (so that it is loaded once per request).
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New loads the named session from the Store, or returns a new one. A
// missing or malformed cookie, or an unknown or unreadable session, gives a
// new session and no error; a Store failure gives a new session and the
// error.
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	session := sessions.NewSession(s, name)
	opts := *s.Options
	session.Options = &opts
	session.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return session, nil
	}
	id, atLeast, ok := parseCookie(c.Value)
	if !ok {
		return session, nil
	}
	key := s.key(id)
	vs, versioned := s.store.(tierstore.Versioned)
	var (
		b       []byte
		version tierstore.Version
		expiry  time.Time
	)
	if versioned {
		b, version, expiry, err = vs.GetVersion(r.Context(), key, atLeast)
	} else {
		b, err = s.store.Get(r.Context(), key)
	}
	switch {
	case errors.Is(err, tierstore.ErrNotFound), errors.Is(err, tierstore.ErrCorrupt):
		return session, nil
	case err != nil:
		return session, err
	}
	values, err := decode(b)
	if err != nil {
		return session, nil
	}
	session.ID, session.Values, session.IsNew = id, values, false
	if versioned {
		st := stateOf(session, true)
		st.mu.Lock()
		st.key, st.version, st.data, st.expiry, st.ended = key, version, b, expiry, false
		st.mu.Unlock()
	}
	return session, nil
}

// Save writes the session to the Store and sets the cookie. A session
// whose Options.MaxAge is negative is deleted, with its cookie. On a
// tierstore.Versioned store, Save merges with concurrent saves and does
// not store a session that was deleted since New loaded it (see the
// package documentation).
func (s *Store) Save(r *http.Request, w http.ResponseWriter, session *sessions.Session) error {
	ctx := r.Context()
	if session.Options.MaxAge < 0 {
		if session.ID != "" {
			if err := s.store.Delete(ctx, s.key(session.ID)); err != nil {
				return err
			}
			if st := stateOf(session, false); st != nil {
				st.mu.Lock()
				if st.key == s.key(session.ID) {
					st.ended = true
				}
				st.mu.Unlock()
			}
		}
		http.SetCookie(w, sessions.NewCookie(session.Name(), "", session.Options))
		return nil
	}
	lifetime := BrowserSessionLifetime
	if session.Options.MaxAge > 0 {
		// Clamped: beyond about 292 years a Duration overflows into
		// the past, which would delete the session.
		lifetime = time.Duration(min(int64(session.Options.MaxAge), int64(math.MaxInt64/time.Second))) * time.Second
	}
	expiry := time.Now().Add(lifetime)
	vs, versioned := s.store.(tierstore.Versioned)
	if !versioned {
		return s.saveUnconditionally(ctx, w, session, expiry)
	}
	if session.ID == "" {
		return s.create(ctx, w, vs, session, expiry)
	}
	key := s.key(session.ID)
	st := stateOf(session, false)
	if st == nil {
		return errNotLoaded
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.key != key {
		return errNotLoaded
	}
	if st.ended {
		return nil
	}
	return s.update(ctx, w, vs, session, st, expiry, lifetime)
}

var errNotLoaded = errors.New("gorillastore: save: the session's ID was not loaded or created by this Store (to start a new session, set ID to \"\")")

// saveUnconditionally is Save on a store that is not tierstore.Versioned.
func (s *Store) saveUnconditionally(ctx context.Context, w http.ResponseWriter, session *sessions.Session, expiry time.Time) error {
	if session.ID == "" {
		session.ID = sessionid.New()
	}
	b, err := encode(session.Values)
	if err != nil {
		return err
	}
	if err := s.store.Set(ctx, s.key(session.ID), b, expiry); err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(session.Name(), session.ID, session.Options))
	return nil
}

// create stores a new session under a new ID, only if nothing is stored
// there (a random 256-bit ID: there never is).
func (s *Store) create(ctx context.Context, w http.ResponseWriter, vs tierstore.Versioned, session *sessions.Session, expiry time.Time) error {
	b, err := encode(session.Values)
	if err != nil {
		return err
	}
	id := sessionid.New()
	key := s.key(id)
	version, err := vs.SetIf(ctx, key, b, expiry, tierstore.NoVersion)
	if err != nil {
		return err
	}
	session.ID = id
	st := stateOf(session, true)
	st.mu.Lock()
	st.key, st.version, st.data, st.expiry, st.ended = key, version, b, expiry, false
	st.mu.Unlock()
	http.SetCookie(w, sessions.NewCookie(session.Name(), sessionid.FormatCookie(id, version), session.Options))
	return nil
}

// change is what a request did to one key of session.Values.
type change struct {
	value   any // as gob decodes it
	removed bool
}

// update saves a session that New loaded (or an earlier Save wrote), whose
// state st is locked: conditionally on st.version, merging on a conflict
// (versioned.Save).
func (s *Store) update(ctx context.Context, w http.ResponseWriter, vs tierstore.Versioned, session *sessions.Session, st *state, expiry time.Time, lifetime time.Duration) error {
	mine, err := encode(session.Values)
	if err != nil {
		return err
	}
	// Whether this request changed anything, compared with the base (the
	// stored session it started from): identical bytes, or else (gob
	// orders a map's entries at random) deeply equal values.
	var base map[any]any
	write := false
	if !bytes.Equal(mine, st.data) {
		if base, err = decode(st.data); err != nil {
			return fmt.Errorf("gorillastore: save: decoding the loaded session: %w", err)
		}
		values := session.Values
		if values == nil {
			values = map[any]any{}
		}
		write = !reflect.DeepEqual(base, values)
	}
	want, data, stored := st.version, st.data, st.expiry
	var current map[any]any    // the stored session decoded, once it is no longer the base
	var changes map[any]change // what this request changed, once needed
	if write || !closeEnough(stored, expiry, lifetime) {
		out := mine
		if !write {
			out = data // only the expiry moves
		}
		// data and stored are what the store holds at the Version Save
		// returns: the last value written, or the current one if the
		// last merge found nothing to write.
		data, stored = out, expiry
		want, err = versioned.Save(ctx, vs, st.key, want, out, expiry, func(b []byte, _ tierstore.Version, exp time.Time) ([]byte, time.Time, bool, error) {
			var err error
			if current, err = decode(b); err != nil {
				return nil, time.Time{}, false, versioned.ErrGone // as New: a session this adapter cannot read does not exist
			}
			data, stored = b, exp
			if changes == nil {
				// Compared as gob stores them: a value set to one that
				// gob stores alike (an empty slice for a nil one) is no
				// change.
				if base == nil {
					if base, err = decode(st.data); err != nil {
						return nil, time.Time{}, false, fmt.Errorf("gorillastore: save: decoding the loaded session: %w", err)
					}
				}
				normalized, err := decode(mine)
				if err != nil {
					return nil, time.Time{}, false, fmt.Errorf("gorillastore: save: decoding the session just encoded: %w", err)
				}
				changes = diff(base, normalized)
			}
			merged, differs := apply(changes, current)
			switch {
			case differs:
				if out, err = encode(merged); err != nil {
					return nil, time.Time{}, false, err
				}
			case closeEnough(exp, expiry, lifetime):
				return nil, time.Time{}, false, nil // the stored session is the one wanted
			default:
				out = b // only the expiry moves
			}
			data, stored = out, expiry
			return out, expiry, true, nil
		})
		switch {
		case errors.Is(err, versioned.ErrGone):
			end(session, st)
			return nil
		case errors.Is(err, tierstore.ErrConflict):
			return fmt.Errorf("gorillastore: save: %w", err)
		case err != nil:
			return err
		}
	}
	if current != nil {
		// Show the handler what the others changed, in place: it may
		// hold session.Values, and the keys this request changed keep
		// the handler's own values.
		if session.Values == nil {
			session.Values = map[any]any{}
		}
		for k := range keys(base, current) {
			if _, mine := changes[k]; mine || sameEntry(base, current, k) {
				continue
			}
			if v, ok := current[k]; ok {
				session.Values[k] = v
			} else {
				delete(session.Values, k)
			}
		}
	}
	st.version, st.data, st.expiry = want, data, stored
	http.SetCookie(w, sessions.NewCookie(session.Name(), sessionid.FormatCookie(session.ID, want), session.Options))
	return nil
}

// diff returns the changes that turn base into mine.
func diff(base, mine map[any]any) map[any]change {
	changes := map[any]change{}
	for k, v := range mine {
		if !sameEntry(base, mine, k) {
			changes[k] = change{value: v}
		}
	}
	for k := range base {
		if _, ok := mine[k]; !ok {
			changes[k] = change{removed: true}
		}
	}
	return changes
}

// apply returns current with changes applied, and whether that differs
// from current.
func apply(changes map[any]change, current map[any]any) (map[any]any, bool) {
	merged := maps.Clone(current)
	differs := false
	for k, c := range changes {
		old, had := current[k]
		if c.removed {
			if had {
				delete(merged, k)
				differs = true
			}
			continue
		}
		if !had || !reflect.DeepEqual(old, c.value) {
			differs = true
		}
		merged[k] = c.value
	}
	return merged, differs
}

// sameEntry reports whether a and b agree on key k: both without it, or
// both with deeply equal values.
func sameEntry(a, b map[any]any, k any) bool {
	va, okA := a[k]
	vb, okB := b[k]
	return okA == okB && (!okA || reflect.DeepEqual(va, vb))
}

// keys yields the keys of a and of b (a key of both, twice).
func keys(a, b map[any]any) func(func(any) bool) {
	return func(yield func(any) bool) {
		for k := range a {
			if !yield(k) {
				return
			}
		}
		for k := range b {
			if !yield(k) {
				return
			}
		}
	}
}

// closeEnough reports whether a session stored until stored needs no
// rewrite to last until target: stored is within a tenth of the lifetime
// of target, either way.
func closeEnough(stored, target time.Time, lifetime time.Duration) bool {
	if stored.IsZero() {
		return false
	}
	d := target.Sub(stored)
	return d > -lifetime/refreshFraction && d < lifetime/refreshFraction
}

// end records that the session was found deleted: nothing of it is
// written again, and the handler sees an empty new session.
func end(session *sessions.Session, st *state) {
	st.ended = true
	clear(session.Values)
	session.IsNew = true
}

// Ended reports whether Save, on a tierstore.Versioned store, deleted
// session as a logout (Options.MaxAge < 0) or found it deleted (logged out
// by another request, deleted by Store.Delete or by anyone else, expired),
// in which case it wrote nothing and returned nil. It is always false on
// other stores.
func Ended(session *sessions.Session) bool {
	st := stateOf(session, false)
	if st == nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ended
}

// Delete removes the session with this ID from the Store, on every
// instance: for logging a user out everywhere from an admin tool. A save
// in flight does not store it again (on a tierstore.Versioned store).
func (s *Store) Delete(ctx context.Context, id string) error {
	if !sessionid.Valid(id) {
		return nil
	}
	return s.store.Delete(ctx, s.key(id))
}

// key is the Store key of a session: a hash of its ID, so that a dump of
// the store holds no usable token.
func (s *Store) key(id string) string { return sessionid.Key(s.KeyPrefix, id) }

func encode(values map[any]any) ([]byte, error) {
	if values == nil {
		values = map[any]any{}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(values); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decode(b []byte) (map[any]any, error) {
	values := map[any]any{}
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&values); err != nil {
		return nil, err
	}
	return values, nil
}

// legacyVersionDigits is the length of the largest Version in decimal.
const legacyVersionDigits = 20

// parseCookie parses a cookie value strictly, without a Store call for
// anything it refuses: the form that package session and this adapter
// write (sessionid.ParseCookie: "<id>.<version in base 36>", or the ID
// alone), or "<id>.<version in decimal>", a form this adapter once
// wrote, so that the sessions of such cookies go on. Only a decimal
// version of more than sessionid.MaxVersionDigits digits, which base 36
// never has, reads as decimal: the Versions of l2 and tiered (Redis's
// clock, in microseconds) have 16. A shorter one reads as base 36, which
// is never a smaller number, so a request with it can only read past a
// cache, until a Save sets the cookie anew.
func parseCookie(value string) (id string, version tierstore.Version, ok bool) {
	if id, version, ok = sessionid.ParseCookie(value); ok {
		return id, version, true
	}
	if len(value) > sessionid.Len+1+legacyVersionDigits {
		return "", 0, false
	}
	id, digits, dotted := strings.Cut(value, ".")
	// Canonical decimal only: no sign, no leading zero; the shorter ones
	// were base 36 above.
	if !dotted || len(digits) <= sessionid.MaxVersionDigits || digits[0] < '1' || digits[0] > '9' || !sessionid.Valid(id) {
		return "", 0, false
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return id, tierstore.Version(v), true
}

// state is what Save knows of a session that New loaded or Save wrote,
// on a tierstore.Versioned store: the base that the next Save compares
// with and writes conditionally on.
type state struct {
	mu      sync.Mutex
	key     string            // the Store key the base is of
	version tierstore.Version // the base's version
	data    []byte            // the base's bytes, as stored
	expiry  time.Time         // the base's expiry (zero: unknown)
	ended   bool              // the session was deleted: never write it again
}

// states maps each *sessions.Session that New or Save handled to its
// *state. Keys are weak, and an entry is removed when its session is
// collected, so the map holds only sessions still in use (in practice,
// those of requests in progress). gorilla's registry gives Save the very
// pointer that New returned, and a session has no field of ours: hence
// this side table.
var states sync.Map // weak.Pointer[sessions.Session] -> *state

// stateOf returns the state of session; if it has none, a new one if
// create, else nil.
func stateOf(session *sessions.Session, create bool) *state {
	wp := weak.Make(session)
	if st, ok := states.Load(wp); ok {
		return st.(*state)
	}
	if !create {
		return nil
	}
	st, loaded := states.LoadOrStore(wp, &state{})
	if !loaded {
		runtime.AddCleanup(session, func(wp weak.Pointer[sessions.Session]) { states.Delete(wp) }, wp)
	}
	return st.(*state)
}
