package session

import (
	"context"
	"errors"
	"net/http"
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
		var cookie string
		if c, err := r.Cookie(m.cfg.Cookie.Name); err == nil {
			cookie = c.Value
		}
		st, err := m.load(r.Context(), cookie)
		if err != nil {
			m.cfg.ErrorHandler(w, r, err)
			return
		}
		m.warnIfInsecure(r)
		ctx := context.WithValue(r.Context(), contextKey{m}, st)
		r = r.WithContext(ctx)
		sw := &saveWriter{ResponseWriter: w, m: m, r: r, st: st}
		next.ServeHTTP(sw, r)
		sw.save()
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
