package session

import (
	"context"
	"errors"
	"net/http"
	"net/textproto"
	"strings"
)

// errNotSaved is returned by Write when the session could not be saved:
// the error handler has answered the request instead.
var errNotSaved = errors.New("session: not saved; the request was answered by the error handler")

// LoadAndSave loads the request's session before next runs and saves it,
// if it changed, before the response headers are written: when next calls
// WriteHeader, Write or Flush, or else when it returns. A session that
// could not be loaded or saved is answered by Config.ErrorHandler; next's
// later writes then fail with an error.
func (m *Manager) LoadAndSave(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := m.load(r.Context(), requestCookie(r, m.cfg.Cookie.Name))
		if err != nil {
			m.cfg.ErrorHandler(w, r, err)
			return
		}
		m.warnIfInsecure(r)
		ctx := context.WithValue(r.Context(), contextKey{m}, st)
		r = r.WithContext(ctx)
		st.w = saveWriter{ResponseWriter: w, m: m, r: r, st: st}
		next.ServeHTTP(&st.w, r)
		st.w.save()
	})
}

// saveWriter saves the session before the first byte of the response.
type saveWriter struct {
	http.ResponseWriter
	m     *Manager
	r     *http.Request
	st    *state
	saved bool
	ok    bool
}

// save saves once and reports whether the handler may write.
func (w *saveWriter) save() bool {
	if !w.saved {
		w.saved = true
		if err := w.m.save(w.r.Context(), w.ResponseWriter, w.st); err != nil {
			w.m.cfg.ErrorHandler(w.ResponseWriter, w.r, err)
		} else {
			w.ok = true
		}
	}
	return w.ok
}

func (w *saveWriter) WriteHeader(code int) {
	if w.save() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *saveWriter) Write(b []byte) (int, error) {
	if !w.save() {
		return 0, errNotSaved
	}
	return w.ResponseWriter.Write(b)
}

// Flush saves, then flushes if the underlying writer can.
func (w *saveWriter) Flush() {
	if w.save() {
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *saveWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requestCookie returns the value of the request's first valid cookie
// named name, as r.Cookie(name) does, or "": without r.Cookie's
// allocations (it parses every cookie of the request), as this runs on
// every request. (r.Cookie also gives up on a request of more than 3000
// cookies; this reads one as any other.)
func requestCookie(r *http.Request, name string) string {
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			n, v, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(n) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v
			}
		}
	}
	return ""
}

// validCookieValue reports whether net/http accepts v as a cookie value.
func validCookieValue(v string) bool {
	for i := range len(v) {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}
