// Package ginsession runs tierstore's session.Manager as gin middleware:
// the Manager's LoadAndSave, with gin's writer, so that the session is
// saved before the response headers go out, however the handler writes
// (c.JSON, c.String, c.Status, c.AbortWithStatus, c.Writer.Flush).
//
//	r := gin.New()
//	r.Use(ginsession.Middleware(sessions)) // sessions: a *session.Manager
//	r.POST("/login", func(c *gin.Context) {
//		ctx := c.Request.Context()
//		if err := sessions.Renew(ctx); err != nil { ... }
//		sessions.Put(ctx, "user", "ada")
//	})
//
// Handlers pass c.Request.Context() to the Manager (or c itself, with
// gin's Engine.ContextWithFallback set). Everything the session package
// promises holds: logout and renewal final on every instance,
// concurrent requests' changes to different keys kept, read-your-writes
// across instances.
package ginsession

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tierstore/tierstore/session"
)

// Middleware loads the request's session before the rest of the chain
// runs and saves it, if it changed, before the response headers are
// written (session.Manager.LoadAndSave). A session that cannot be loaded
// is answered by the Manager's ErrorHandler and the chain is aborted; one
// that cannot be saved is answered by it too, and the handler's later
// writes fail.
func Middleware(m *session.Manager) gin.HandlerFunc {
	return func(c *gin.Context) {
		gw := c.Writer
		ran := false
		m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ran = true
			c.Request = r
			c.Writer = &writer{ResponseWriter: gw, saving: w}
			c.Next()
		})).ServeHTTP(gw, c.Request)
		c.Writer = gw
		if !ran {
			c.Abort()
		}
	}
}

// writer is gin's writer with every path to the response headers going
// through saving, the Manager's writer, which saves the session first.
// Status, Size, Written, Hijack and Pusher are gin's.
type writer struct {
	gin.ResponseWriter
	saving http.ResponseWriter
}

func (w *writer) WriteHeader(code int) { w.saving.WriteHeader(code) }

func (w *writer) Write(b []byte) (int, error) { return w.saving.Write(b) }

func (w *writer) WriteString(s string) (int, error) { return w.saving.Write([]byte(s)) }

func (w *writer) Flush() {
	if f, ok := w.saving.(http.Flusher); ok {
		f.Flush()
	}
}

// WriteHeaderNow saves, then writes gin's pending status (unless the
// ErrorHandler already answered).
func (w *writer) WriteHeaderNow() {
	w.saving.WriteHeader(w.ResponseWriter.Status())
	w.ResponseWriter.WriteHeaderNow()
}
