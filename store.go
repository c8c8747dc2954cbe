// Package tierstore defines the byte-level Store interface that every
// tierstore tier implements, its optional capabilities and its errors.
//
// Three stores implement it, so a service switches between them by
// configuration alone:
//
//   - l1.Store: memory only (bounded by bytes, in this process);
//   - l2.Store: Redis only (any go-redis UniversalClient);
//   - tiered.Store: an in-process cache in front of Redis, kept coherent
//     across instances by Redis pub/sub invalidations.
//
// Package storetest checks that a Store, ours or yours, keeps this
// package's contract.
//
// Packages that build on a Store (session, the scs and gorilla adapters)
// import only this package, never a concrete tier.
package tierstore

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"
)

// Store is a key/value store with absolute expiry. All methods are safe for
// concurrent use. A []byte returned by Get belongs to the caller; the store
// keeps no reference to a slice passed to Set.
type Store interface {
	// Get returns the value under key, or ErrNotFound if it is absent or expired.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key until expiry (absolute time). A zero
	// expiry means no expiry; an expiry that is not in the future deletes
	// the key, so an expired value is never served.
	Set(ctx context.Context, key string, value []byte, expiry time.Time) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Toucher is implemented by stores that can change a key's expiry without
// rewriting its value (sliding session expiry). Touch returns ErrNotFound if
// the key is absent. A zero expiry removes the expiry; one that is not in the
// future deletes the key.
type Toucher interface {
	Touch(ctx context.Context, key string, expiry time.Time) error
}

// Lister is implemented by stores that can enumerate their live keys, for
// administration and for session managers that list sessions. Keys calls
// fn for each key, in no particular order, until fn returns false. A key
// written or deleted during the walk may or may not be reported; a key
// reported may have expired by the time fn sees it.
type Lister interface {
	Keys(ctx context.Context, fn func(key string) bool) error
}

// Version names one stored state of a key's value, for conditional
// writes (Versioned). NoVersion is the Version of an absent key, so
// "deleted since I read it" never looks like "unchanged".
//
// Each SetIf gives the key a Version greater than its current one, so a
// reader that holds one Version can tell an older copy from a newer one;
// a key deleted and written again gets a Version from a clock (Redis's,
// for l2 and tiered), greater than its earlier ones unless that clock
// stepped back. A plain Set need not version (l2 and
// tiered do not: it stays their cheapest write): the Version of a value
// it wrote may be derived from the value's bytes, so that it changes when
// they change, and compares as older than any Version SetIf gives.
// Versions are compared only with Versions of the same key.
type Version uint64

// NoVersion is the Version of an absent key.
const NoVersion Version = 0

// Versioned is implemented by stores that keep a Version with every value
// and can write conditionally on it: optimistic concurrency for
// read-modify-write cycles such as HTTP sessions. l1, l2 and tiered all
// implement it.
type Versioned interface {
	// GetVersion returns the value under key, its Version and its expiry
	// (zero: none), or ErrNotFound. A store that caches serves its copy
	// only if that copy's Version is at least atLeast (a Version the
	// caller knows was written, for example by a previous request of the
	// same browser on another instance), and otherwise reads the source
	// of truth; NoVersion accepts any copy. A store that caches may
	// report an expiry earlier than the current one (another instance
	// extended it since), never a later one: the session manager extends
	// idle deadlines by it only when they moved enough.
	GetVersion(ctx context.Context, key string, atLeast Version) ([]byte, Version, time.Time, error)
	// SetIf stores value under key until expiry, as Set does, only if the
	// key's current Version is want (NoVersion: only if the key is
	// absent), and returns the new Version. Otherwise it writes nothing
	// and returns an error wrapping ErrConflict. An expiry that is not in
	// the future deletes the key, under the same condition, and returns
	// NoVersion.
	SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want Version) (Version, error)
	// DeleteIf removes key only if its current Version is want, and
	// otherwise returns an error wrapping ErrConflict; want NoVersion
	// succeeds only if the key is absent.
	DeleteIf(ctx context.Context, key string, want Version) error
}

// VersionViewer is the lending read: implemented by Versioned stores that
// can lend a value without copying it. ViewVersion calls fn with the
// value under key, its Version and its expiry, as GetVersion would return
// them (with the same atLeast rule), and returns fn's error; or
// ErrNotFound without calling fn. fn sees the value only for the duration
// of the call and must neither modify nor retain it. The session manager
// uses it to recognise a session it has already decoded, and codec.Typed
// to decode in place, without copying the bytes.
type VersionViewer interface {
	ViewVersion(ctx context.Context, key string, atLeast Version, fn func(value []byte, v Version, expiry time.Time) error) error
}

// Sentinel errors. Errors returned by the stores wrap these (check them with
// errors.Is) together with the underlying cause. Error texts name the key
// prefix, never a key or a value: keys are often session IDs.
var (
	// ErrNotFound: the key is absent or expired.
	ErrNotFound = errors.New("tierstore: not found")
	// ErrUnavailable: Redis could not be reached, did not answer in time
	// (including a context deadline that expired while waiting for it), or
	// answered that it cannot serve for now (LOADING, MASTERDOWN,
	// TRYAGAIN, CLUSTERDOWN, READONLY during a failover, BUSY). An outage:
	// worth a retry, and an HTTP 503. The error also wraps the cause.
	ErrUnavailable = errors.New("tierstore: redis unavailable")
	// ErrRefused: Redis answered but refused the command for a reason a
	// retry will not fix: no permission (NOPERM: check the ACL user), an
	// unknown or renamed command, out of memory under a noeviction policy
	// (OOM), a server older than tierstore needs. A misconfiguration, not
	// an outage. The error also wraps Redis's reply.
	ErrRefused = errors.New("tierstore: redis refused the command")
	// ErrTooLarge: the value is larger than the store's MaxValueBytes (or,
	// in a memory-only store, than the store's whole MaxBytes).
	ErrTooLarge = errors.New("tierstore: value too large")
	// ErrInvalidKey: the key breaks the rules of CheckKey.
	ErrInvalidKey = errors.New("tierstore: invalid key")
	// ErrCorrupt: the bytes stored in Redis under the key are not a value
	// written by tierstore (damaged, truncated, or of another Redis type).
	// Such a value is never cached.
	ErrCorrupt = errors.New("tierstore: corrupt value")
	// ErrConflict: a conditional write (Versioned) found the key at
	// another Version than the one it was given, or absent: someone else
	// wrote or deleted it since the caller read it. Nothing was written;
	// read again and retry.
	ErrConflict = errors.New("tierstore: version conflict")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("tierstore: store closed")
)

// MaxKeyBytes is the longest key, in bytes, that any store accepts.
const MaxKeyBytes = 512

// DefaultMaxValueBytes is the default largest value a store accepts (1 MiB).
const DefaultMaxValueBytes = 1 << 20

// CheckKey reports whether key is acceptable to every store: 1 to
// MaxKeyBytes bytes of valid UTF-8 with no control characters. It returns
// nil or an error wrapping ErrInvalidKey. The rule is shared so that a key
// one tier accepts is accepted by all, and so that keys are safe to print in
// logs and pub/sub messages.
func CheckKey(key string) error {
	switch {
	case key == "":
		return errEmptyKey
	case len(key) > MaxKeyBytes:
		return errLongKey
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c == 0x7f {
			return errControlKey
		}
	}
	if !utf8.ValidString(key) {
		return errUTF8Key
	}
	return nil
}

var (
	errEmptyKey   = wrapKeyErr("empty key")
	errLongKey    = wrapKeyErr("key longer than 512 bytes")
	errControlKey = wrapKeyErr("key contains a control character")
	errUTF8Key    = wrapKeyErr("key is not valid UTF-8")
)

// keyError says which rule a key broke and unwraps to ErrInvalidKey.
type keyError string

func wrapKeyErr(s string) error  { return keyError(s) }
func (e keyError) Error() string { return "tierstore: invalid key: " + string(e) }
func (e keyError) Unwrap() error { return ErrInvalidKey }
