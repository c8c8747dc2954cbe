package ginsession_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"

	"github.com/tierstore/tierstore/adapters/ginstore/ginsession"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/session"
)

// The session package's Manager as gin middleware (on a memory-only
// store here; a tiered.Store in production).
func ExampleMiddleware() {
	store, _ := l1.New(l1.Config{})
	defer store.Close()
	sessions, _ := session.New(session.Config{Store: store})

	r := gin.New()
	r.Use(ginsession.Middleware(sessions))
	r.POST("/login", func(c *gin.Context) {
		ctx := c.Request.Context()
		if err := sessions.Renew(ctx); err != nil { // a new ID at login
			c.AbortWithStatus(http.StatusServiceUnavailable)
			return
		}
		_ = sessions.Put(ctx, "user", "ada")
		c.String(http.StatusOK, "welcome")
	})
	r.GET("/me", func(c *gin.Context) {
		c.String(http.StatusOK, sessions.GetString(c.Request.Context(), "user"))
	})

	login := httptest.NewRecorder()
	r.ServeHTTP(login, httptest.NewRequest("POST", "https://example.test/login", nil))
	me := httptest.NewRequest("GET", "https://example.test/me", nil)
	me.AddCookie(login.Result().Cookies()[0])
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, me)
	fmt.Println(login.Body.String(), rec.Body.String())
	// Output: welcome ada
}
