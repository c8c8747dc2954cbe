// Package versioned is the conditional save that every session layer of
// tierstore runs on a tierstore.Versioned store (package session and the
// scs and gorilla/sessions adapters): a read-modify-write of one key that
// never writes over a change it did not see and never brings back a key
// that was deleted.
//
// The invariant: a value is written only on top of the Version it was
// made from. Save's first write is conditional on the caller's base, the
// Version its value was made from. A conflict means someone else wrote or
// deleted the key since: Save reads the key as it is now (past any cached
// copy that is not newer than the Version that lost), hands it to the
// caller's Merge, and writes the result conditionally on the Version it
// read, at most MaxAttempts times in all. A key found absent after a
// conflict was deleted since the caller's base (a session destroyed or
// renewed elsewhere, an operator's delete, its expiry): Save writes
// nothing and returns ErrGone, and so no save, in flight or later, brings
// a logged-out session back. The caller ends the request logged out.
//
// The package knows no session format: each layer keeps its own Merge
// (what a request changed, applied to the current value).
package versioned

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tierstore/tierstore"
)

// MaxAttempts bounds the conditional writes of one Save or Delete: each
// conflict means another request wrote the key in between, so running out
// takes that many writes of one key within one save's round trips.
const MaxAttempts = 10

// ErrGone is returned by Save and Delete, which then wrote nothing, when
// the key was deleted since the caller's base: absent, or not a value the
// store can read (tierstore.ErrCorrupt), when read after a conflict. A
// Merge returns it to say the same of a value that is no session the
// caller can read (undecodable, or past its own deadline).
var ErrGone = errors.New("versioned: deleted since it was read")

// Merge makes the value to write from the key's current value, Version
// and expiry (zero: none), read after a conflict; current is the
// caller's. Typically it applies the caller's own changes to current.
// It returns the value and expiry to write, conditionally on v; or write
// false if current is already what the caller wants stored, and Save then
// writes nothing and returns v. An error ends Save with that error.
type Merge func(current []byte, v tierstore.Version, expiry time.Time) (next []byte, nextExpiry time.Time, write bool, err error)

// Save writes value under key until expiry only if the key is at Version
// base (tierstore.NoVersion: only if it is absent), and on a conflict
// merges and writes again as the package documentation says. It returns
// the Version the store holds for the caller now: the one its last write
// made (NoVersion if that expiry was not in the future, which deleted the
// key, as SetIf does), or the one Merge found needed no write. It returns
// ErrGone if the key was deleted since base, an error wrapping
// tierstore.ErrConflict after MaxAttempts conflicting writes, or the
// store's or Merge's error.
func Save(ctx context.Context, s tierstore.Versioned, key string, base tierstore.Version, value []byte, expiry time.Time, merge Merge) (tierstore.Version, error) {
	return save(ctx, s, key, base, value, expiry, merge, false)
}

// Update is Save for a key that anyone may create or delete, such as an
// index of sessions: a key found absent after a conflict is not ErrGone
// but handed to merge as (nil, tierstore.NoVersion, zero time), and the
// merged value is written only if the key is still absent. Everything
// else is as in Save.
func Update(ctx context.Context, s tierstore.Versioned, key string, base tierstore.Version, value []byte, expiry time.Time, merge Merge) (tierstore.Version, error) {
	return save(ctx, s, key, base, value, expiry, merge, true)
}

// save is the loop of Save and Update; absentOK says which.
func save(ctx context.Context, s tierstore.Versioned, key string, base tierstore.Version, value []byte, expiry time.Time, merge Merge, absentOK bool) (tierstore.Version, error) {
	want := base
	for attempt := 1; ; attempt++ {
		v, err := s.SetIf(ctx, key, value, expiry, want)
		if err == nil {
			return v, nil
		}
		if err := conflicted(err, attempt); err != nil {
			return tierstore.NoVersion, err
		}
		current, v, exp, err := Current(ctx, s, key, want)
		if absentOK && errors.Is(err, ErrGone) {
			current, v, exp, err = nil, tierstore.NoVersion, time.Time{}, nil
		}
		if err != nil {
			return tierstore.NoVersion, err
		}
		next, nextExpiry, write, err := merge(current, v, exp)
		switch {
		case err != nil:
			return tierstore.NoVersion, err
		case !write:
			return v, nil
		}
		want, value, expiry = v, next, nextExpiry
	}
}

// Delete removes key only if it is at Version base, and on a conflict
// calls merge with the key as it is now, so that the caller takes in
// what others saved since base (package session carries it over to a
// renewed session's new key), then deletes conditionally on the Version
// it read, at most MaxAttempts times in all. It returns ErrGone if the key
// was deleted by someone else since base, an error wrapping
// tierstore.ErrConflict after MaxAttempts conflicting deletes, or the
// store's or merge's error.
func Delete(ctx context.Context, s tierstore.Versioned, key string, base tierstore.Version, merge func(current []byte, v tierstore.Version, expiry time.Time) error) error {
	want := base
	for attempt := 1; ; attempt++ {
		err := s.DeleteIf(ctx, key, want)
		if err == nil {
			return nil
		}
		if err := conflicted(err, attempt); err != nil {
			return err
		}
		current, v, exp, err := Current(ctx, s, key, want)
		if err != nil {
			return err
		}
		if err := merge(current, v, exp); err != nil {
			return err
		}
		want = v
	}
}

// conflicted returns nil if err, from attempt's conditional write, is a
// conflict worth another attempt; else the error that ends the loop.
func conflicted(err error, attempt int) error {
	switch {
	case !errors.Is(err, tierstore.ErrConflict):
		return err
	case attempt == MaxAttempts:
		return fmt.Errorf("versioned: %d conflicting writes in a row: %w", attempt, err)
	}
	return nil
}

// Current reads key as it is now, after a conditional write at Version
// lost met a conflict. The conflict proved that the key is no longer at
// lost, and Versions only grow, so a store that caches is asked for a
// copy newer than lost (atLeast lost+1): the copy the losing write was
// made from, still cached if an invalidation is in flight, is not served
// again. It returns ErrGone if the key is absent or unreadable
// (tierstore.ErrNotFound, tierstore.ErrCorrupt), else what GetVersion
// returns.
func Current(ctx context.Context, s tierstore.Versioned, key string, lost tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	b, v, exp, err := s.GetVersion(ctx, key, lost+1)
	if errors.Is(err, tierstore.ErrNotFound) || errors.Is(err, tierstore.ErrCorrupt) {
		return nil, tierstore.NoVersion, time.Time{}, ErrGone
	}
	return b, v, exp, err
}
