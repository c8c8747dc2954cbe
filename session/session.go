// Package session provides HTTP sessions on any tierstore.Store: secure
// IDs in cookies, a load-and-save middleware, typed access to values,
// absolute and idle timeouts, renewal and destruction.
//
// The Store may be memory only (l1), Redis only (l2) or tiered; the Manager
// uses the Store's optional capabilities when present: tierstore.Toucher to
// extend an idle deadline without rewriting the session, and
// tierstore.ExpiryReader to do so only when the deadline moved by at least
// TouchInterval.
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
	// cannot report expiries (no tierstore.ExpiryReader), every request
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
	// saved. Default: log with slog and answer 500.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// DecodedSessions is how many decoded sessions the Manager keeps, each
	// beside the bytes it was decoded from, so that a request whose Store
	// read returns the same bytes (an unchanged session, from L1) skips
	// decoding it: about a microsecond per request for a few small values.
	// Each costs its bytes and its decoded values in memory. Default 4096;
	// negative: none.
	DecodedSessions int
	// Logger receives the Manager's warnings (for example a Secure cookie
	// sent over plain HTTP, which browsers drop). Default slog.Default().
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
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = defaultErrorHandler
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
	return &Manager{cfg: cfg, codec: cfg.Codec, decoded: newDecodedCache(cfg.DecodedSessions)}, nil
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

func defaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	slog.ErrorContext(r.Context(), "session: request failed", "err", err, "path", r.URL.Path)
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}

// record is a session as kept in the Store. Each value is encoded on its
// own, when it is put, so that its type survives (decode it into a
// variable of that type with Decode).
type record struct {
	Deadline int64             `msgpack:"d" json:"d"` // absolute end, Unix nanoseconds
	Values   map[string][]byte `msgpack:"v" json:"v"`
}

// load reads the session named by a cookie value. A malformed cookie, an
// unknown, expired or unreadable session all give a fresh session; only a
// Store failure is an error.
func (m *Manager) load(ctx context.Context, cookie string) (*state, error) {
	st := &state{m: m}
	if id, atLeast, ok := parseCookie(cookie); ok {
		rec, version, expiry, err := m.read(ctx, m.storeKey(id), atLeast)
		switch {
		case err == nil:
			st.id, st.stored, st.version, st.deadline, st.expiry = id, true, version, time.Unix(0, rec.Deadline), expiry
			st.values, st.shared = rec.Values, rec.Values != nil && m.decoded != nil
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
// Manager can read (expired, or written by something else).
var errGone = errors.New("session: gone")

// read reads and decodes the session under key, with its version (with a
// Versioned Store) and expiry (zero if unknown). A caching Store serves its
// copy only if it is at least atLeast. It returns errGone for a session
// that is absent, expired or unreadable, and the Store's other errors.
func (m *Manager) read(ctx context.Context, key string, atLeast tierstore.Version) (record, tierstore.Version, time.Time, error) {
	// One variable for what the read returns: the callback below captures
	// it, and one heap object costs less than one per field.
	var got struct {
		data    []byte
		version tierstore.Version
		expiry  time.Time
		rec     record
		decoded bool
	}
	var err error
	switch s := m.cfg.Store.(type) {
	case tierstore.VersionViewer:
		// An unchanged session is recognised in the Store's own bytes;
		// only a session to decode is copied.
		err = s.ViewVersion(ctx, key, atLeast, func(b []byte, v tierstore.Version, e time.Time) error {
			got.version, got.expiry = v, e
			got.rec, got.decoded = m.decoded.get(key, b)
			if !got.decoded {
				got.data = bytes.Clone(b)
			}
			return nil
		})
	case tierstore.Versioned:
		got.data, got.version, got.expiry, err = s.GetVersion(ctx, key, atLeast)
	case tierstore.ExpiryReader:
		got.data, got.expiry, err = s.GetWithExpiry(ctx, key)
	default:
		got.data, err = s.Get(ctx, key)
	}
	switch {
	case errors.Is(err, tierstore.ErrNotFound), errors.Is(err, tierstore.ErrCorrupt):
		return record{}, 0, time.Time{}, errGone
	case err != nil:
		return record{}, 0, time.Time{}, err
	}
	if !got.decoded {
		var ok bool
		if got.rec, ok = m.decoded.get(key, got.data); !ok {
			if err := m.codec.Unmarshal(got.data, &got.rec); err != nil {
				return record{}, 0, time.Time{}, errGone // not a session this Manager wrote
			}
			m.decoded.put(key, got.data, got.rec)
		}
	}
	rec := got.rec
	now := m.cfg.Now()
	if !time.Unix(0, rec.Deadline).After(now) || !got.expiry.IsZero() && !got.expiry.After(now) {
		return record{}, 0, time.Time{}, errGone
	}
	return rec, got.version, got.expiry, nil
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

// maxSaveAttempts bounds the conditional writes of one save: each
// conflict means another request of the session saved in between, so
// running out takes that many saves of one session within one save's
// round trips.
const maxSaveAttempts = 10

// save writes a modified session, or extends an unmodified one's idle
// deadline, and sets the cookie. It runs once per request, before the
// response headers are written.
func (m *Manager) save(ctx context.Context, w http.ResponseWriter, st *state) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	w.Header().Add("Vary", "Cookie")
	switch st.status {
	case destroyed:
		m.setCookie(w, "", 0, time.Time{})
		return nil
	case unmodified:
		return m.touch(ctx, st)
	}
	if st.id == "" {
		st.id = NewID()
		st.deadline = m.cfg.Now().Add(m.cfg.Lifetime)
	}
	vs, versioned := m.cfg.Store.(tierstore.Versioned)
	for attempt := 1; ; attempt++ {
		data, err := m.codec.Marshal(record{Deadline: st.deadline.UnixNano(), Values: st.values})
		if err != nil {
			return err
		}
		key, expiry := m.storeKey(st.id), m.idleExpiry(st.deadline)
		var version tierstore.Version
		switch {
		case !versioned: // last writer wins
			err = m.cfg.Store.Set(ctx, key, data, expiry)
		case st.stored:
			version, err = vs.SetIf(ctx, key, data, expiry, st.version)
		default:
			version, err = vs.SetIf(ctx, key, data, expiry, tierstore.NoVersion)
		}
		if err == nil {
			st.stored, st.version = true, version
			// The next request reads these bytes: spare it decoding them.
			// From now on st.values is shared (a change after the headers
			// went out is not saved, but must not reach the cache).
			m.decoded.put(key, data, record{Deadline: st.deadline.UnixNano(), Values: st.values})
			st.shared = m.decoded != nil
			m.setCookie(w, st.id, version, st.deadline)
			return nil
		}
		if !errors.Is(err, tierstore.ErrConflict) {
			return err
		}
		if attempt == maxSaveAttempts {
			return fmt.Errorf("session: save: %d conflicting saves of one session in a row: %w", attempt, err)
		}
		if !st.stored {
			st.id = NewID() // a new ID that exists already: never in practice
			continue
		}
		// Another request saved, or deleted, the session since this one
		// loaded it: merge this request's changes into what it holds now,
		// read past any cached copy at the version that lost.
		rec, version, expiry, err := m.read(ctx, key, st.version+1)
		if errors.Is(err, errGone) {
			// Logged out (Destroy, Renew) or ended elsewhere: a save
			// must not bring it back. The request ends logged out; the
			// cookie is left alone, since a concurrent Renew's response
			// may be setting the new one.
			st.drop()
			return nil
		}
		if err != nil {
			return err
		}
		st.rebase(rec, version, expiry)
	}
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
	data, err := m.codec.Marshal(record{Deadline: st.deadline.UnixNano(), Values: st.values})
	if err != nil {
		return err
	}
	if vs, ok := m.cfg.Store.(tierstore.Versioned); ok {
		_, err := vs.SetIf(ctx, key, data, target, st.version)
		if errors.Is(err, tierstore.ErrConflict) {
			return nil // changed or destroyed elsewhere: that write counts
		}
		return err
	}
	return m.cfg.Store.Set(ctx, key, data, target)
}

func (m *Manager) setCookie(w http.ResponseWriter, id string, version tierstore.Version, deadline time.Time) {
	c := &http.Cookie{
		Name:     m.cfg.Cookie.Name,
		Value:    formatCookie(id, version),
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
