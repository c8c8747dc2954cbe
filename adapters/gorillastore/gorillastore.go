// Package gorillastore lets github.com/gorilla/sessions keep its sessions
// in any tierstore.Store (memory, Redis or tiered): a drop-in replacement
// for sessions.CookieStore or a Redis store. The cookie holds only a random
// session ID; the values live in the Store, gob-encoded as gorilla's own
// stores encode them (register custom types with gob.Register).
//
//	store := gorillastore.New(tieredStore)
//	session, err := store.Get(r, "session-name")
package gorillastore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/gob"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/gorilla/sessions"

	"github.com/tierstore/tierstore"
	tssession "github.com/tierstore/tierstore/session"
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
	if err != nil || !tssession.ValidID(c.Value) {
		return session, nil
	}
	b, err := s.store.Get(r.Context(), s.key(c.Value))
	switch {
	case errors.Is(err, tierstore.ErrNotFound), errors.Is(err, tierstore.ErrCorrupt):
		return session, nil
	case err != nil:
		return session, err
	}
	values := map[any]any{}
	if gob.NewDecoder(bytes.NewReader(b)).Decode(&values) != nil {
		return session, nil
	}
	session.ID, session.Values, session.IsNew = c.Value, values, false
	return session, nil
}

// Save writes the session to the Store and sets the cookie. A session
// whose Options.MaxAge is negative is deleted, with its cookie.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, session *sessions.Session) error {
	ctx := r.Context()
	if session.Options.MaxAge < 0 {
		if session.ID != "" {
			if err := s.store.Delete(ctx, s.key(session.ID)); err != nil {
				return err
			}
		}
		http.SetCookie(w, sessions.NewCookie(session.Name(), "", session.Options))
		return nil
	}
	if session.ID == "" {
		session.ID = tssession.NewID()
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(session.Values); err != nil {
		return err
	}
	lifetime := BrowserSessionLifetime
	if session.Options.MaxAge > 0 {
		// Clamped: beyond about 292 years a Duration overflows into
		// the past, which would delete the session.
		lifetime = time.Duration(min(int64(session.Options.MaxAge), int64(math.MaxInt64/time.Second))) * time.Second
	}
	if err := s.store.Set(ctx, s.key(session.ID), buf.Bytes(), time.Now().Add(lifetime)); err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(session.Name(), session.ID, session.Options))
	return nil
}

// Delete removes the session with this ID from the Store, on every
// instance: for logging a user out everywhere from an admin tool.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !tssession.ValidID(id) {
		return nil
	}
	return s.store.Delete(ctx, s.key(id))
}

// key is the Store key of a session: a hash of its ID, so that a dump of
// the store holds no usable token.
func (s *Store) key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return s.KeyPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}
