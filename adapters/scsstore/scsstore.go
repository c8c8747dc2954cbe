// Package scsstore lets github.com/alexedwards/scs/v2 keep its sessions in
// any tierstore.Store (memory, Redis or tiered): a drop-in replacement for
// scs's memstore or redisstore.
//
//	sessionManager := scs.New()
//	sessionManager.Store = scsstore.New(tieredStore)
//
// # Concurrent requests of one session
//
// scs loads a session's data at the start of a request and, if the
// handler changed it, saves the whole of it at the end. On a store that
// implements tierstore.Versioned (l1, l2 and tiered all do), the adapter
// makes that save conditional on the version the request loaded, so that
// a save never overwrites what it did not see (for saves it can pair with
// their load: every save of scs's LoadAndSave; see Pairing below), with
// the conditional save of package session/versioned, which package
// session and the gorilla/sessions adapter run too:
//
//   - Concurrent requests that change different keys of one session all
//     keep their changes: a save that finds the session changed since its
//     load reads it again and applies its own changes (the keys whose
//     value differs between what it loaded and what it saves, removals
//     included) to the current data, then saves that, conditionally again
//     (up to 10 times, then an error wrapping tierstore.ErrConflict).
//     Keys the request did not change keep the current values. This also
//     covers a request served from a stale in-memory copy on a tiered
//     instance that has not yet received another instance's invalidation.
//   - Two requests that change the same key: the last save wins. The
//     session's deadline is merged the same way (the request's if it
//     changed it, with SetDeadline, else the current one).
//   - A request that changed nothing writes nothing (scs saves only
//     modified sessions; with an IdleTimeout it saves every request, to
//     extend the expiry, and then merges like any other save).
//   - Logout wins. Once Destroy or RenewToken has deleted a token, on any
//     instance, or an operator has deleted its key, no save of that token,
//     in flight or later, on any instance, brings it back: a save that
//     finds its session gone writes nothing and returns nil. The request
//     ends as if logged out; its changes are dropped, and the browser's
//     cookie names a dead session, which loads as a new, empty one. A
//     request whose session was deleted by someone else before its own
//     RenewToken (or Destroy, or MergeSession) deleted it does not create
//     the new session either.
//   - RenewToken deletes the old token and saves the data under a new one.
//     A change that another request saved to the old token after the
//     renewing request loaded it and before it deleted it is not carried
//     over: the renewed session has the renewing request's data only.
//     (The adapter cannot tell a RenewToken from a Destroy followed by new
//     data, where carrying it over would be wrong.) A logout with the old
//     cookie that comes after the renewing request deleted the old token
//     deletes nothing: the renewed session, whose token it never named,
//     lives on.
//
// The merge decodes session data with Store.Codec, which must be the
// SessionManager's Codec (scs.GobCodec, the default for both, unless you
// changed it). It runs only when saves conflict; data it cannot decode
// makes the save fail with the codec's error, never overwrite.
//
// # Pairing
//
// The adapter pairs a save with the load of the same request by the
// request context's Done channel: scs's LoadAndSave loads with
// r.Context() and saves with a context derived from it, and every request
// net/http serves has its own, which ends with the request. A save it
// cannot pair (a context whose Done is nil, such as context.Background()
// or httptest.NewRequest's default; a context derived with its own
// cancellation; a session changed inside Iterate) writes as before:
// the whole session, last writer wins, and a session deleted before the
// save began is created again. Outside net/http, give each Load a context
// of its own (context.WithCancel) and cancel it when done, to keep the
// guarantees above. Do not replace request contexts with one context
// shared by concurrent requests: their loads and saves would be paired
// with each other's. A context that never ends keeps what its loads read
// (the last 16 sessions) in memory.
//
// On a store that is not tierstore.Versioned, saves are unconditional
// Sets, as before: the last save of a session replaces it whole, and a
// save racing a logout can bring the session back.
package scsstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/session/versioned"
)

// DefaultKeyPrefix is the default Store.KeyPrefix.
const DefaultKeyPrefix = "scs:"

// maxTokensPerRequest bounds the sessions remembered for one request
// context (a request loads one, two with MergeSession); beyond it the
// oldest is forgotten, and a save of it is not paired.
const maxTokensPerRequest = 16

// Store implements scs.Store, scs.CtxStore, scs.IterableStore and
// scs.IterableCtxStore. scs tokens are stored as keys (KeyPrefix + token),
// since scs's AllCtx must return them.
type Store struct {
	// KeyPrefix is prepended to tokens to form Store keys, so that scs
	// sessions can share a Store (and its Redis key prefix) with other
	// data. Default DefaultKeyPrefix ("scs:"). Change it only before use.
	KeyPrefix string

	// Codec decodes and encodes session data to merge concurrent saves
	// (see the package documentation). It must be the SessionManager's
	// Codec. Default (nil) scs.GobCodec{}, scs's default. Change it only
	// before use.
	Codec scs.Codec

	store     tierstore.Store
	versioned tierstore.Versioned // store, if it is Versioned; else nil

	// requests holds, by the Done channel of a request's context, what
	// the request loaded (*request); an entry is removed when its context
	// ends.
	requests sync.Map
}

// New returns a Store keeping scs sessions in store.
func New(store tierstore.Store) *Store {
	v, _ := store.(tierstore.Versioned)
	return &Store{KeyPrefix: DefaultKeyPrefix, store: store, versioned: v}
}

// request is what one request context loaded and saved.
type request struct {
	mu     sync.Mutex
	bases  map[string]*base // by token
	tokens []string         // the keys of bases, oldest first
	// lost: a session this request loaded was deleted by someone else
	// before this request deleted it (a logout racing a RenewToken): the
	// next new session the request saves, the renewal's, is dropped.
	lost bool
}

// base is a session as one request knows it: the state its saves start
// from.
type base struct {
	version tierstore.Version // the version the store holds, as far as the request knows
	view    []byte            // the data scs holds in memory for the request (as loaded, then as saved)
	stored  []byte            // the data the store holds at version, if not view (after a merge)
	gone    bool              // deleted: never written again by this request
}

// request returns the record of ctx's request, creating it if create is
// set, or nil if ctx cannot be paired (its Done is nil) or has no record.
func (s *Store) request(ctx context.Context, create bool) *request {
	done := ctx.Done()
	if done == nil {
		return nil
	}
	if r, ok := s.requests.Load(done); ok {
		return r.(*request)
	}
	if !create {
		return nil
	}
	r, loaded := s.requests.LoadOrStore(done, &request{bases: map[string]*base{}})
	if !loaded {
		context.AfterFunc(ctx, func() { s.requests.Delete(done) })
	}
	return r.(*request)
}

// get returns a copy of token's base, or nil.
func (r *request) get(token string) *base {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.bases[token]; b != nil {
		c := *b
		return &c
	}
	return nil
}

// dropNew reports whether a save of token, a token the request has no
// base for, is the renewal of a session the request lost (see lost); if
// so it marks token gone, for any later save of it.
func (r *request) dropNew(token string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lost {
		return false
	}
	r.lost = false
	r.put(token, &base{gone: true}, false)
	return true
}

// set records token's base. A load (keepFirst) does not replace what the
// request already holds: scs does not replace its data either (a
// MergeSession of the request's own token loads it again and keeps the
// data it has).
func (r *request) set(token string, b *base, keepFirst bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.put(token, b, keepFirst)
}

// put is set with r.mu held.
func (r *request) put(token string, b *base, keepFirst bool) {
	if _, ok := r.bases[token]; ok {
		if !keepFirst {
			r.bases[token] = b
		}
		return
	}
	if len(r.tokens) == maxTokensPerRequest {
		delete(r.bases, r.tokens[0])
		r.tokens = r.tokens[1:]
	}
	r.bases[token] = b
	r.tokens = append(r.tokens, token)
}

// key returns the Store key of token and whether the token is acceptable.
// A token that cannot be a key is a malformed token: scs wants "not found"
// for those, not an error.
func (s *Store) key(token string) (string, bool) {
	k := s.KeyPrefix + token
	return k, token != "" && tierstore.CheckKey(k) == nil
}

func (s *Store) codec() scs.Codec {
	if s.Codec == nil {
		return scs.GobCodec{}
	}
	return s.Codec
}

// absent reports whether err means that the session is not there (or not
// readable, which scs treats the same).
func absent(err error) bool {
	return errors.Is(err, tierstore.ErrNotFound) || errors.Is(err, tierstore.ErrCorrupt)
}

// FindCtx returns the session data of token. Absent, expired, malformed
// tokens and unreadable data are "not found"; Store failures are errors.
// On a Versioned store it remembers, for ctx's request, the version and
// data it returned: the base of the request's save.
func (s *Store) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	key, ok := s.key(token)
	if !ok {
		return nil, false, nil
	}
	var (
		b       []byte
		version tierstore.Version
		err     error
	)
	if s.versioned != nil {
		b, version, _, err = s.versioned.GetVersion(ctx, key, tierstore.NoVersion)
	} else {
		b, err = s.store.Get(ctx, key)
	}
	switch {
	case absent(err):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	if s.versioned != nil {
		// b is shared with scs, which only decodes it: scs's own
		// memstore hands its stored slice to the codec the same way.
		if r := s.request(ctx, true); r != nil {
			r.set(token, &base{version: version, view: b}, true)
		}
	}
	return b, true, nil
}

// CommitCtx stores the session data of token until expiry. On a
// Versioned store, the write is conditional on the version ctx's request
// loaded, and merges concurrent changes (see the package documentation).
func (s *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	key, ok := s.key(token)
	if !ok {
		return tierstore.ErrInvalidKey
	}
	if s.versioned == nil {
		return s.store.Set(ctx, key, b, expiry)
	}
	r := s.request(ctx, false)
	var bs *base
	if r != nil {
		bs = r.get(token)
	} else if err := ctx.Err(); err != nil {
		return err // the request ended, and its record with it
	}
	switch {
	case bs != nil && bs.gone:
		return nil // deleted since the request loaded it: logout wins
	case bs == nil && r != nil && r.dropNew(token):
		return nil // the renewal of a session deleted by someone else
	case bs == nil:
		// A new token (a new session, or RenewToken's), or a save that
		// cannot be paired with its load.
		bs = &base{}
	}
	nb, err := s.commit(ctx, key, b, expiry, bs)
	if err != nil {
		return err
	}
	if r == nil {
		r = s.request(ctx, true) // a new session: remember it for a second save
	}
	if r != nil {
		r.set(token, nb, false)
	}
	return nil
}

// commit writes b under key on the condition that the store holds bs, and
// on a conflict merges b's changes into the current data and retries
// (versioned.Save). It returns the base for a later save of the same
// request: gone if the session was deleted, in which case nothing was
// written.
func (s *Store) commit(ctx context.Context, key string, b []byte, expiry time.Time, bs *base) (*base, error) {
	out, exp := b, expiry
	if bs.stored != nil {
		var err error
		if out, exp, err = s.merge(bs.view, b, bs.stored, expiry); err != nil {
			return nil, err
		}
	}
	merged := bs.stored != nil // out is a merge, not b
	v, err := versioned.Save(ctx, s.versioned, key, bs.version, out, exp, func(cur []byte, _ tierstore.Version, _ time.Time) ([]byte, time.Time, bool, error) {
		if bs.view == nil {
			// No base to merge with: the whole session, last writer
			// wins, but only while it exists.
			out, merged = b, false
			return b, expiry, true, nil
		}
		var err error
		out, exp, err = s.merge(bs.view, b, cur, expiry)
		merged = true
		return out, exp, true, err
	})
	switch {
	case errors.Is(err, versioned.ErrGone), err == nil && v == tierstore.NoVersion: // deleted, or an expiry in the past deleted it
		return &base{gone: true}, nil
	case errors.Is(err, tierstore.ErrConflict):
		return nil, fmt.Errorf("scsstore: commit: %w", err)
	case err != nil:
		return nil, err
	}
	nb := &base{version: v, view: b}
	if merged {
		nb.stored = out
	}
	return nb, nil
}

// merge applies to cur the changes from view to b, the request's own:
// every key whose value differs between view and b takes b's value, or is
// removed if b has none. The deadline is b's if the request changed it,
// else cur's; the expiry, the request's, capped by that deadline (and
// equal to it if the request's expiry was its deadline: no idle timeout
// cut it shorter).
func (s *Store) merge(view, b, cur []byte, expiry time.Time) ([]byte, time.Time, error) {
	codec := s.codec()
	baseDeadline, baseValues, err := codec.Decode(view)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("scsstore: decoding the loaded session to merge: %w", err)
	}
	newDeadline, newValues, err := codec.Decode(b)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("scsstore: decoding the saved session to merge: %w", err)
	}
	deadline, values, err := codec.Decode(cur)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("scsstore: decoding the current session to merge: %w", err)
	}
	if values == nil {
		values = map[string]any{}
	}
	for k, v := range newValues {
		if old, ok := baseValues[k]; !ok || !reflect.DeepEqual(old, v) {
			values[k] = v
		}
	}
	for k := range baseValues {
		if _, ok := newValues[k]; !ok {
			delete(values, k)
		}
	}
	if !newDeadline.Equal(baseDeadline) {
		deadline = newDeadline
	}
	if expiry.Equal(newDeadline) || deadline.Before(expiry) {
		expiry = deadline
	}
	out, err := codec.Encode(deadline, values)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("scsstore: encoding the merged session: %w", err)
	}
	return out, expiry, nil
}

// DeleteCtx removes token's session. Deleting a missing one is not an
// error. The delete is unconditional: logout wins over every save. If
// ctx's request loaded the session and someone else deleted it since,
// the request saves no new session (see the package documentation).
func (s *Store) DeleteCtx(ctx context.Context, token string) error {
	key, ok := s.key(token)
	if !ok {
		return nil
	}
	var (
		r  *request
		bs *base
	)
	if s.versioned != nil {
		if r = s.request(ctx, false); r != nil {
			bs = r.get(token)
		}
	}
	if bs == nil || bs.gone {
		if err := s.store.Delete(ctx, key); err != nil {
			return err
		}
	} else if err := s.deleteLoaded(ctx, key, bs, r); err != nil {
		return err
	}
	if r != nil {
		r.set(token, &base{gone: true}, false)
	}
	return nil
}

// deleteLoaded deletes key, which r loaded at bs, and records in r whether
// someone else had deleted it first.
func (s *Store) deleteLoaded(ctx context.Context, key string, bs *base, r *request) error {
	err := s.versioned.DeleteIf(ctx, key, bs.version)
	if !errors.Is(err, tierstore.ErrConflict) {
		return err
	}
	_, _, _, err = versioned.Current(ctx, s.versioned, key, bs.version)
	switch {
	case errors.Is(err, versioned.ErrGone):
		r.mu.Lock()
		r.lost = true
		r.mu.Unlock()
		return nil
	case err != nil:
		return err
	}
	return s.store.Delete(ctx, key)
}

// AllCtx returns every live session by token. The Store must implement
// tierstore.Lister (l1, l2 and tiered all do).
func (s *Store) AllCtx(ctx context.Context) (map[string][]byte, error) {
	lister, ok := s.store.(tierstore.Lister)
	if !ok {
		return nil, errors.New("scsstore: the store cannot list its keys (no tierstore.Lister)")
	}
	var keys []string
	err := lister.Keys(ctx, func(key string) bool {
		if len(key) > len(s.KeyPrefix) && key[:len(s.KeyPrefix)] == s.KeyPrefix {
			keys = append(keys, key)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	all := make(map[string][]byte, len(keys))
	for _, key := range keys {
		b, err := s.store.Get(ctx, key)
		switch {
		case absent(err):
			continue // expired or deleted since listed
		case err != nil:
			return nil, err
		}
		all[key[len(s.KeyPrefix):]] = b
	}
	return all, nil
}

// Find is FindCtx with a background context.
func (s *Store) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit is CommitCtx with a background context: it cannot be paired
// with a load (see the package documentation).
func (s *Store) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete is DeleteCtx with a background context.
func (s *Store) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// All is AllCtx with a background context.
func (s *Store) All() (map[string][]byte, error) {
	return s.AllCtx(context.Background())
}
