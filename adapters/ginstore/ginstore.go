// Package ginstore keeps the sessions of github.com/gin-contrib/sessions
// in any tierstore.Store (memory, Redis or tiered), with the guarantees
// of package gorillastore, on which it is built: gin-contrib/sessions is
// a thin layer over gorilla/sessions, and its Store is a gorilla Store
// with an Options method.
//
//	store := ginstore.New(tieredStore)
//	router.Use(sessions.Sessions("sid", store))
//	router.POST("/cart", func(c *gin.Context) {
//		s := sessions.Default(c)
//		s.Set("cart", "tea")
//		if err := s.Save(); err != nil { ... }
//	})
//
// On a store that implements tierstore.Versioned (l1, l2 and tiered all
// do), concurrent requests of one session that change different keys
// keep both changes, and a logout (Options with MaxAge -1, then Save) is
// final on every instance: no request in flight, on any instance, stores
// the session again (see package gorillastore for the whole contract).
// Ended reports a Save that found its session logged out.
//
// For a new application, package ginsession, in this module too, runs
// tierstore's own session.Manager as gin middleware instead: ID renewal
// at login, typed values, and no gob registration (see docs/sessions.md).
package ginstore

import (
	"github.com/gin-contrib/sessions"
	gsessions "github.com/gorilla/sessions"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/gorillastore"
)

// Store is a gin-contrib/sessions Store. Its embedded gorillastore.Store
// does the work; its KeyPrefix (default gorillastore.DefaultKeyPrefix)
// and its Options field, which the Options method replaces, are
// gorillastore's.
type Store struct {
	*gorillastore.Store
}

var _ sessions.Store = (*Store)(nil)

// New returns a Store keeping gin sessions in store, with gorillastore's
// default cookie options: Path "/", MaxAge 30 days, HttpOnly, Secure,
// SameSite Lax.
func New(store tierstore.Store) *Store {
	return &Store{gorillastore.New(store)}
}

// Options replaces the cookie options of new sessions, all of them (a
// field left zero is off: HttpOnly false, Secure false), as with
// gin-contrib's own stores.
func (s *Store) Options(options sessions.Options) {
	s.Store.Options = options.ToGorillaOptions()
}

// Ended reports whether the last Save of session deleted it as a logout
// or found it deleted (logged out by another request, on any instance,
// deleted by Store.Delete, expired): then it wrote nothing, set no
// cookie, emptied the values and returned nil (gorillastore.Ended). It
// is false for a session that is not one of this module's stores.
func Ended(session sessions.Session) bool {
	s, ok := session.(interface{ Session() *gsessions.Session })
	return ok && s.Session() != nil && gorillastore.Ended(s.Session())
}
