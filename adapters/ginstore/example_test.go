package ginstore_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/tierstore/tierstore/adapters/ginstore"
	"github.com/tierstore/tierstore/l1"
)

// gin-contrib/sessions on a tierstore store (here memory only; a
// tiered.Store in production).
func ExampleNew() {
	store, _ := l1.New(l1.Config{})
	defer store.Close()

	r := gin.New()
	r.Use(sessions.Sessions("sid", ginstore.New(store)))
	r.POST("/cart", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set("cart", "tea")
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusServiceUnavailable)
		}
	})
	r.GET("/cart", func(c *gin.Context) {
		c.String(http.StatusOK, "%v", sessions.Default(c).Get("cart"))
	})

	put := httptest.NewRecorder()
	r.ServeHTTP(put, httptest.NewRequest("POST", "https://example.test/cart", nil))
	get := httptest.NewRequest("GET", "https://example.test/cart", nil)
	get.AddCookie(put.Result().Cookies()[0])
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, get)
	fmt.Println(rec.Body.String())
	// Output: tea
}
