// Package session provides HTTP sessions on any tierstore.Store: secure
// IDs in cookies, a load-and-save middleware, typed access to values,
// absolute and idle timeouts, renewal and destruction; a user's sessions
// as one thing (SetUser, UserSessions, RevokeSession, RevokeUser,
// Config.MaxSessionsPerUser), session events (Config.OnEvent) and
// encryption at rest (Config.Encryption, package session/seal).
//
// The Store may be memory only (l1), Redis only (l2) or tiered; the Manager
// uses the Store's optional capabilities when present: tierstore.Versioned
// to save conditionally, merging concurrent requests' changes (the loop of
// package session/versioned), and to read the session's expiry, so that an
// idle deadline is extended only when it moved by at least TouchInterval;
// tierstore.VersionViewer to recognise an unchanged session without
// copying it; tierstore.Toucher to extend an idle deadline without
// rewriting the session.
package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/codec"
	"github.com/tierstore/tierstore/session/seal"
	"github.com/tierstore/tierstore/session/sessionid"
	"github.com/tierstore/tierstore/session/versioned"
)

// Defaults for zero Config fields.
const (
	DefaultLifetime   = 24 * time.Hour
	DefaultCookieName = "session"
	DefaultKeyPrefix  = "session:"
)

// ErrNoSession is returned when a context carries no session: the handler
// is not behind Manager.LoadAndSave.
var ErrNoSession = errors.New("session: no session in context (is the handler wrapped by LoadAndSave?)")

// Config configures a Manager. Zero fields take the documented defaults,
// which are the secure choices.
type Config struct {
	// Store keeps the sessions; required.
	Store tierstore.Store
	// Codec encodes session values and records. Default codec.Default
	// (msgpack).
	Codec codec.Codec
	// Cookie configures the session cookie.
	Cookie Cookie
	// Lifetime is the absolute lifetime of a session, from its creation;
	// activity does not extend it. Default DefaultLifetime (24h).
	Lifetime time.Duration
	// IdleTimeout, if set, ends a session that saw no request for this
	// long (sliding expiry). Default 0: off.
	IdleTimeout time.Duration
	// TouchInterval is the least movement of the idle deadline worth a
	// Store call: a request extends the deadline only if it moves by at
	// least this much, so sessions may end up to TouchInterval before
	// IdleTimeout of inactivity. Default IdleTimeout/10. With a Store that
	// cannot report expiries (not tierstore.Versioned), every request
	// extends it.
	TouchInterval time.Duration
	// KeyPrefix is prepended to session keys in the Store. Default
	// DefaultKeyPrefix ("session:").
	KeyPrefix string
	// RawIDKeys stores sessions under their ID itself instead of its
	// SHA-256 hash. Default false: a copy of the store then holds no
	// usable session token.
	RawIDKeys bool
	// ErrorHandler answers a request whose session could not be loaded or
	// saved. Default: log the error through Logger (with the request's
	// path; never a session ID, key or value) and answer 503 Service
	// Unavailable with "Retry-After: 1" (seconds) when the error wraps
	// tierstore.ErrUnavailable (Redis down, unreachable or too slow: an
	// outage worth a retry), else 500 Internal Server Error.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// DecodedSessions is how many decoded sessions the Manager keeps, each
	// beside the bytes it was decoded from, so that a request whose Store
	// read returns the same bytes (an unchanged session, from L1) skips
	// decoding it (see docs/benchmarks.md, session load).
	// Each costs its bytes and its decoded values in memory. Default 4096;
	// negative: none.
	DecodedSessions int
	// MaxBytes is the largest session, in bytes as encoded by Codec for
	// the Store, that Put lets a request build: a Put that would take
	// the session over it changes nothing and returns an error wrapping
	// tierstore.ErrTooLarge. The Store refuses a larger value anyway,
	// but only when the session is saved, after the handler: the client
	// would get ErrorHandler's 500 and lose the request's other changes.
	// Default: the Store's MaxValueBytes() if it has that method (l2.Store
	// does), else tierstore.DefaultMaxValueBytes (1 MiB), the default
	// limit of every tier; set it to a Store's own MaxValueBytes when
	// that is another and the Store does not report it. Changes that
	// concurrent requests save, merged into this request's at its save,
	// can still take a session over the Store's limit: that save fails.
	MaxBytes int
	// MaxSessionsPerUser limits the live sessions of one user (SetUser):
	// a login beyond it ends the user's oldest sessions (EventEvicted),
	// atomically with concurrent logins of the user on any instance.
	// Default 0: no limit.
	MaxSessionsPerUser int
	// OnEvent, if set, is called once for each session created, renewed,
	// destroyed, revoked or evicted, by the instance whose write made the
	// change, after the write succeeded, on the goroutine of the call
	// that made it (a request's, or RevokeUser's caller's): keep it fast.
	// An Event carries the session's user and handle, never its ID.
	// Sessions that expire are not reported (see docs/sessions.md).
	OnEvent func(Event)
	// Encryption, if set, seals every session record and user index with
	// AES-GCM under the key set's current key (see package session/seal),
	// bound to its Store key, and opens them with any key of the set. A
	// record that does not open (damaged, forged, moved from another key,
	// or sealed with a key no longer in the set) is no session: the
	// request starts a fresh one. Default nil: stored as encoded.
	Encryption *seal.KeySet
	// Logger receives the Manager's warnings (for example a Secure cookie
	// sent over plain HTTP, which browsers drop) and the default
	// ErrorHandler's errors. Default slog.Default().
	Logger *slog.Logger
}

// Cookie configures the session cookie. The zero value is the secure
// default: HttpOnly, Secure, SameSite=Lax, Path=/, persistent until the
// session's absolute deadline.
type Cookie struct {
	// Name of the cookie. Default DefaultCookieName ("session"). Consider
	// "__Host-session", which browsers accept only from a secure origin,
	// with Path=/ and no Domain.
	Name string
	// Domain of the cookie. Default none: this host only.
	Domain string
	// Path of the cookie. Default "/".
	Path string
	// SameSite mode. Default http.SameSiteLaxMode.
	SameSite http.SameSite
	// AllowInsecure leaves out the Secure attribute, so browsers send the
	// cookie over plain HTTP. Only for development without TLS.
	AllowInsecure bool
	// AllowScriptAccess leaves out the HttpOnly attribute, exposing the
	// token to JavaScript (and to XSS). Almost never wanted.
	AllowScriptAccess bool
	// BrowserSession makes the cookie last until the browser closes
	// instead of until the session's deadline.
	BrowserSession bool
}

// Manager loads and saves sessions. It is safe for concurrent use.
type Manager struct {
	cfg     Config
	codec   codec.Codec
	decoded *decodedCache // nil if off
	warned  atomic.Bool   // the plain-HTTP warning was logged

	maxBytes int    // Config.MaxBytes, or its default
	sizing   sizing // how Put knows the encoded size of a session
	baseSize int    // with sizing computed: see emptySize

	counters counters                  // see Stats
	tracer   atomic.Pointer[tracerBox] // see SetTracer; nil: none
	// overhead is what the Store holds beyond the encoded record: seal's
	// frame with Encryption, else 0.
	overhead int
	emptyLen int // the encoded size of record{}: see metaSize
}

// DefaultDecodedSessions is the DecodedSessions of a zero Config.
const DefaultDecodedSessions = 4096

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("session: Config.Store is nil")
	}
	if cfg.Lifetime < 0 || cfg.IdleTimeout < 0 || cfg.TouchInterval < 0 {
		return nil, errors.New("session: negative Lifetime, IdleTimeout or TouchInterval")
	}
	if cfg.MaxBytes < 0 || cfg.MaxSessionsPerUser < 0 {
		return nil, errors.New("session: negative MaxBytes or MaxSessionsPerUser")
	}
	if cfg.Codec == nil {
		cfg.Codec = codec.Default
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.TouchInterval == 0 {
		cfg.TouchInterval = cfg.IdleTimeout / 10
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.Cookie.Name == "" {
		cfg.Cookie.Name = DefaultCookieName
	}
	if cfg.Cookie.Path == "" {
		cfg.Cookie.Path = "/"
	}
	if cfg.Cookie.SameSite == 0 {
		cfg.Cookie.SameSite = http.SameSiteLaxMode
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DecodedSessions == 0 {
		cfg.DecodedSessions = DefaultDecodedSessions
	}
	m := &Manager{cfg: cfg, codec: cfg.Codec, decoded: newDecodedCache(cfg.DecodedSessions),
		maxBytes: maxBytesOf(cfg), sizing: sizingOf(cfg.Codec)}
	if m.cfg.ErrorHandler == nil {
		m.cfg.ErrorHandler = m.defaultErrorHandler
	}
	if cfg.Encryption != nil {
		m.overhead = seal.Overhead
	}
	empty, err := m.codec.Marshal(record{})
	if err != nil {
		return nil, fmt.Errorf("session: the codec cannot encode a session: %w", err)
	}
	m.emptyLen = len(empty)
	if m.sizing != sizeByEncoding {
		var err error
		if m.baseSize, err = m.emptySize(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// warnIfInsecure logs, once per Manager, that the Secure session cookie
// is about to be sent over plain HTTP to a host that is not loopback:
// browsers drop it silently (they accept it only from secure origins,
// which include http://localhost), so every request starts a new session
// and logins seem not to stick.
func (m *Manager) warnIfInsecure(r *http.Request) {
	if m.cfg.Cookie.AllowInsecure || r.TLS != nil || m.warned.Load() ||
		r.Header.Get("X-Forwarded-Proto") == "https" || loopbackHost(r.Host) {
		return
	}
	if m.warned.CompareAndSwap(false, true) {
		m.cfg.Logger.WarnContext(r.Context(), "session: the session cookie is Secure but this request came over plain HTTP: browsers will drop the cookie, so sessions will not persist. Serve over TLS (or behind a proxy that sets X-Forwarded-Proto: https), or set Cookie.AllowInsecure for development",
			"host", r.Host)
	}
}

// loopbackHost reports whether host (with or without a port) is
// localhost or a loopback address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// retryAfter is the Retry-After, in seconds, of the default ErrorHandler's
// 503: an outage of Redis is usually a restart or a failover, over in
// seconds, and a client that waits a second before retrying spares the
// server a burst of retries meanwhile.
const retryAfter = "1"

// defaultErrorHandler is the ErrorHandler of a Config without one. Store
// errors name the key prefix, never a key, so err is safe to log.
func (m *Manager) defaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, tierstore.ErrUnavailable) {
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", retryAfter)
	}
	m.cfg.Logger.ErrorContext(r.Context(), "session: request failed", "err", err, "path", r.URL.Path, "status", code)
	http.Error(w, http.StatusText(code), code)
}

// record is a session as kept in the Store. Each value is encoded on its
// own, when it is put, so that its type survives (decode it into a
// variable of that type with Decode).
type record struct {
	Deadline int64             `msgpack:"d" json:"d"` // absolute end, Unix nanoseconds
	Values   map[string][]byte `msgpack:"v" json:"v"`
	// Meta is the session's user, creation, last save and labels; nil
	// for a session without user or labels (a record written before
	// users existed decodes so). Not omitempty: msgpack filters the
	// fields of a struct with one at the cost of an allocation per
	// encoding, more than the 2 bytes of a nil.
	Meta *meta `msgpack:"m" json:"m"`
	// size is the record's encoded size, if known; not encoded. Kept
	// with a decoded session, so that a request's first Put need not add
	// it up (see Manager.putWithinLimit).
	size int
}

// meta is what a session bound to a user (or labelled) records about
// itself, for UserSessions.
type meta struct {
	User    string            `msgpack:"u,omitempty" json:"u,omitempty"`
	Created int64             `msgpack:"c" json:"c"` // bound to User, Unix nanoseconds
	Saved   int64             `msgpack:"s" json:"s"` // last saved, Unix nanoseconds
	Labels  map[string]string `msgpack:"l,omitempty" json:"l,omitempty"`
}

// encode returns what the Store keeps of v under key: v encoded by the
// codec, sealed with Config.Encryption if set.
func (m *Manager) encode(key string, v any) ([]byte, error) {
	b, err := m.codec.Marshal(v)
	if err != nil || m.cfg.Encryption == nil {
		return b, err
	}
	return m.cfg.Encryption.Seal(b, []byte(key)), nil
}

// unmarshal decodes data read under key into v, opening it first with
// Config.Encryption if set.
func (m *Manager) unmarshal(key string, data []byte, v any) error {
	if m.cfg.Encryption != nil {
		plain, err := m.cfg.Encryption.Open(data, []byte(key))
		if err != nil {
			return err
		}
		data = plain
	}
	return m.codec.Unmarshal(data, v)
}

// load reads the session named by a cookie value. A malformed cookie, an
// unknown, expired or unreadable session all give a fresh session; only a
// Store failure is an error.
func (m *Manager) load(ctx context.Context, cookie string) (*state, error) {
	st := &state{m: m}
	if id, atLeast, ok := sessionid.ParseCookie(cookie); ok {
		rec, version, expiry, err := m.read(ctx, m.storeKey(id), atLeast)
		switch {
		case err == nil:
			st.id, st.stored, st.version, st.deadline, st.expiry = id, true, version, time.Unix(0, rec.Deadline), expiry
			st.values, st.shared, st.meta = rec.Values, rec.Values != nil && m.decoded != nil, rec.Meta
			st.size, st.sized = rec.size, rec.size > 0
			// A cookie naming a version the Store does not have (forged,
			// or the Store restored from an older backup) would make
			// every request of the session read past L1: the response
			// sets it to the version read, the source of truth's.
			st.cookieAhead = version < atLeast
		case !errors.Is(err, errGone):
			return nil, err
		}
	}
	if st.values == nil {
		st.values = map[string][]byte{}
	}
	return st, nil
}

// errGone: the session is not in the Store, or not as a live session this
// Manager can read (expired, or written by something else). It is the
// save loop's versioned.ErrGone, so that a session found so after a
// conflict ends the save as a deleted one does.
var errGone = versioned.ErrGone

// read reads and decodes the session under key, with its version (with a
// Versioned Store) and expiry (zero if unknown: a Store that is not
// Versioned). A caching Store serves its copy only if it is at least
// atLeast. It returns errGone for a session that is absent, expired or
// unreadable, and the Store's other errors.
func (m *Manager) read(ctx context.Context, key string, atLeast tierstore.Version) (record, tierstore.Version, time.Time, error) {
	// One variable for what the read returns: the callback below captures
	// it, and one heap object costs less than one per field.
	var got struct {
		data    []byte
		version tierstore.Version
		expiry  time.Time
		decoded *decodedEntry // the session decoded, once known
	}
	var err error
	switch s := m.cfg.Store.(type) {
	case tierstore.VersionViewer:
		// An unchanged session is recognised in the Store's own bytes;
		// only a session to decode is copied.
		err = s.ViewVersion(ctx, key, atLeast, func(b []byte, v tierstore.Version, e time.Time) error {
			got.version, got.expiry = v, e
			if got.decoded = m.decoded.get(key, b); got.decoded == nil {
				got.data = bytes.Clone(b)
			}
			return nil
		})
	case tierstore.Versioned:
		got.data, got.version, got.expiry, err = s.GetVersion(ctx, key, atLeast)
	default:
		got.data, err = s.Get(ctx, key)
	}
	switch {
	case errors.Is(err, tierstore.ErrNotFound), errors.Is(err, tierstore.ErrCorrupt):
		return record{}, 0, time.Time{}, errGone
	case err != nil:
		return record{}, 0, time.Time{}, err
	}
	rec, err := m.decode(key, got.data, got.decoded, got.expiry)
	if err != nil {
		return record{}, 0, time.Time{}, err
	}
	return rec, got.version, got.expiry, nil
}

// decode returns the live session that data, read under key with this
// expiry, holds: e's record if the read found it in the decoded-session
// cache already (e not nil), else the cached one of data or data decoded
// (and cached). It returns errGone if data is no session this Manager
// wrote, or one past its deadline or expiry.
func (m *Manager) decode(key string, data []byte, e *decodedEntry, expiry time.Time) (record, error) {
	if e == nil {
		if e = m.decoded.get(key, data); e == nil {
			var rec record
			if err := m.unmarshal(key, data, &rec); err != nil {
				return record{}, errGone // not a session this Manager wrote (or can open)
			}
			if m.sizing != sizeByEncoding {
				rec.size = m.sessionSize(rec.Values) + m.metaSize(rec.Meta)
			}
			e = m.decoded.put(key, data, rec)
		}
	}
	now := m.cfg.Now()
	if !time.Unix(0, e.rec.Deadline).After(now) || !expiry.IsZero() && !expiry.After(now) {
		return record{}, errGone
	}
	return e.rec, nil
}

// idleExpiry is when a session active now should end.
func (m *Manager) idleExpiry(deadline time.Time) time.Time {
	if m.cfg.IdleTimeout == 0 {
		return deadline
	}
	if idle := m.cfg.Now().Add(m.cfg.IdleTimeout); idle.Before(deadline) {
		return idle
	}
	return deadline
}

// errIDTaken: a new session's random ID is in the Store already, which
// 256 bits from crypto/rand never give but a broken random source would.
var errIDTaken = errors.New("session: save: a new session's random ID is taken")

// save writes a modified session, or extends an unmodified one's idle
// deadline, and sets the cookie. It runs once per request, before the
// response headers are written.
func (m *Manager) save(ctx context.Context, w http.ResponseWriter, st *state) error {
	err := m.saveState(ctx, w, st)
	if err != nil {
		m.counters.saveFailures[failureClassOf(err)].Add(1)
	}
	return err
}

func (m *Manager) saveState(ctx context.Context, w http.ResponseWriter, st *state) error {
	var ev events
	defer m.emit(&ev)
	st.mu.Lock()
	defer st.mu.Unlock()
	w.Header().Add("Vary", "Cookie")
	switch st.status {
	case destroyed:
		m.setCookie(w, "", 0, time.Time{})
		return nil
	case unmodified:
		if err := m.touch(ctx, st); err != nil {
			return err
		}
		if st.cookieAhead {
			m.setCookie(w, st.id, st.version, st.deadline)
		}
		return nil
	}
	if st.id == "" {
		st.id, st.fresh = NewID(), true
		st.deadline = m.cfg.Now().Add(m.cfg.Lifetime)
	}
	key := m.storeKey(st.id)
	savedAt := m.cfg.Now() // meta.Saved of the last encoding
	data, err := m.encode(key, st.record(savedAt))
	if err != nil {
		return err
	}
	var version tierstore.Version
	ctx, end := m.trace(ctx, "save")
	if vs, ok := m.cfg.Store.(tierstore.Versioned); ok {
		// Conditional on the version loaded (NoVersion for a new
		// session: only if its ID is free). A conflict means another
		// request saved the session since this one loaded it: this
		// request's changes are applied again to what the Store holds
		// now (rebase) and saved on top of that.
		version, err = versioned.Save(ctx, vs, key, st.version, data, m.idleExpiry(st.deadline),
			func(current []byte, v tierstore.Version, expiry time.Time) ([]byte, time.Time, bool, error) {
				if !st.stored {
					return nil, time.Time{}, false, errIDTaken
				}
				_, endMerge := m.trace(ctx, "merge")
				stored, err := m.decode(key, current, nil, expiry)
				if err == nil {
					st.rebase(stored, v, expiry)
					m.counters.merges.Add(1)
					savedAt = m.cfg.Now()
					data, err = m.encode(key, st.record(savedAt))
				}
				endTrace(endMerge, err)
				return data, m.idleExpiry(st.deadline), err == nil, err
			})
	} else {
		err = m.cfg.Store.Set(ctx, key, data, m.idleExpiry(st.deadline)) // last writer wins
	}
	endTrace(end, err)
	switch {
	case errors.Is(err, errGone):
		// Logged out (Destroy, Renew) or ended elsewhere: a save must not
		// bring it back. The request ends logged out; the cookie is left
		// alone, since a concurrent Renew's response may be setting the
		// new one.
		st.drop()
		return nil
	case errors.Is(err, tierstore.ErrConflict):
		return fmt.Errorf("session: save: %w", err)
	case err != nil:
		return err
	}
	st.stored, st.version = true, version
	m.counters.saves.Add(1)
	if st.fresh {
		m.counters.created.Add(1)
		if m.cfg.OnEvent != nil {
			user := ""
			if st.meta != nil {
				user = st.meta.User
			}
			m.add(&ev, EventCreated, user, handleOf(key), "")
		}
	}
	st.fresh = false
	// The next request reads these bytes: spare it decoding them. From
	// now on st.values is shared (a change after the headers went out is
	// not saved, but must not reach the cache).
	rec := st.record(savedAt) // what data holds
	rec.size = len(data)
	m.decoded.put(key, data, rec)
	st.shared = m.decoded != nil
	m.setCookie(w, st.id, version, st.deadline)
	return nil
}

// touch extends the idle deadline of an unmodified stored session, if it
// moved by at least TouchInterval.
func (m *Manager) touch(ctx context.Context, st *state) error {
	if m.cfg.IdleTimeout == 0 || !st.stored {
		return nil
	}
	target := m.idleExpiry(st.deadline)
	if !st.expiry.IsZero() && target.Sub(st.expiry) < m.cfg.TouchInterval {
		return nil
	}
	key := m.storeKey(st.id)
	if t, ok := m.cfg.Store.(tierstore.Toucher); ok {
		err := t.Touch(ctx, key, target)
		if errors.Is(err, tierstore.ErrNotFound) {
			return nil // destroyed elsewhere meanwhile: nothing to extend
		}
		return err
	}
	data, err := m.encode(key, st.record(m.cfg.Now()))
	if err != nil {
		return err
	}
	if vs, ok := m.cfg.Store.(tierstore.Versioned); ok {
		v, err := vs.SetIf(ctx, key, data, target, st.version)
		if errors.Is(err, tierstore.ErrConflict) {
			return nil // changed or destroyed elsewhere: that write counts
		}
		if err == nil {
			st.version = v // a cookie corrected now names this one
		}
		return err
	}
	return m.cfg.Store.Set(ctx, key, data, target)
}

func (m *Manager) setCookie(w http.ResponseWriter, id string, version tierstore.Version, deadline time.Time) {
	c := &http.Cookie{
		Name:     m.cfg.Cookie.Name,
		Value:    sessionid.FormatCookie(id, version),
		Domain:   m.cfg.Cookie.Domain,
		Path:     m.cfg.Cookie.Path,
		Secure:   !m.cfg.Cookie.AllowInsecure,
		HttpOnly: !m.cfg.Cookie.AllowScriptAccess,
		SameSite: m.cfg.Cookie.SameSite,
	}
	switch {
	case id == "": // delete
		c.Expires = time.Unix(1, 0)
		c.MaxAge = -1
	case !m.cfg.Cookie.BrowserSession:
		c.Expires = deadline.UTC()
		c.MaxAge = max(1, int(deadline.Sub(m.cfg.Now()).Seconds()))
	}
	w.Header().Add("Set-Cookie", c.String())
	w.Header().Add("Cache-Control", `no-cache="Set-Cookie"`)
}
