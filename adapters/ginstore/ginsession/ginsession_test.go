package ginsession_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/ginstore/ginsession"
	"github.com/tierstore/tierstore/internal/testenv/sessionsuite"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/session"
)

func init() { gin.SetMode(gin.TestMode) }

func manager(t testing.TB, store tierstore.Store) *session.Manager {
	m, err := session.New(session.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// app serves sessionsuite's routes with the Manager as gin middleware.
func app(t testing.TB, store tierstore.Store) http.Handler {
	m := manager(t, store)
	r := gin.New()
	r.Use(ginsession.Middleware(m))
	fail := func(c *gin.Context, err error) {
		if err != nil {
			c.String(http.StatusInternalServerError, err.Error())
		}
	}
	r.POST("/login", func(c *gin.Context) {
		ctx := c.Request.Context()
		if err := m.Renew(ctx); err != nil {
			fail(c, err)
			return
		}
		fail(c, m.Put(ctx, "user", "ada"))
	})
	r.GET("/read", func(c *gin.Context) {
		ctx := c.Request.Context()
		c.String(http.StatusOK, m.GetString(ctx, "user")+"|"+m.GetString(ctx, "a")+"|"+m.GetString(ctx, "b"))
	})
	r.POST("/write", func(c *gin.Context) {
		sessionsuite.RunHook(c.GetHeader(sessionsuite.Hook))
		fail(c, m.Put(c.Request.Context(), c.Query("key"), sessionsuite.Value))
	})
	r.POST("/logout", func(c *gin.Context) {
		fail(c, m.Destroy(c.Request.Context()))
	})
	return r
}

// Two instances on one redis-server, through gin's router: the session
// package's guarantees hold under gin.
func TestTwoInstances(t *testing.T) {
	sessionsuite.Run(t, sessionsuite.Config{App: app, FinalLogout: true, KeepsBoth: true})
}

// However a gin handler writes its response, a change made before is
// saved, and its cookie is in the response.
func TestSavedBeforeEveryWayOfWriting(t *testing.T) {
	store, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := manager(t, store)
	writes := map[string]func(c *gin.Context){
		"String":          func(c *gin.Context) { c.String(http.StatusOK, "ok") },
		"JSON":            func(c *gin.Context) { c.JSON(http.StatusCreated, gin.H{"ok": true}) },
		"Status":          func(c *gin.Context) { c.Status(http.StatusNoContent) },
		"AbortWithStatus": func(c *gin.Context) { c.AbortWithStatus(http.StatusForbidden) },
		"Flush":           func(c *gin.Context) { c.Writer.WriteHeader(http.StatusAccepted); c.Writer.Flush() },
		"WriteString":     func(c *gin.Context) { _, _ = c.Writer.WriteString("ok") },
		"nothing":         func(c *gin.Context) {},
	}
	r := gin.New()
	r.Use(ginsession.Middleware(m))
	for name, write := range writes {
		r.POST("/"+name, func(c *gin.Context) {
			if err := m.Put(c.Request.Context(), "k", name); err != nil {
				t.Error(err)
			}
			write(c)
			// After the headers went out: not saved (the session
			// package's rule), and the cookie is already sent.
			_ = m.Put(c.Request.Context(), "late", name)
		})
	}
	r.GET("/read", func(c *gin.Context) {
		c.String(http.StatusOK, m.GetString(c.Request.Context(), "k")+"|"+m.GetString(c.Request.Context(), "late"))
	})
	for name := range writes {
		t.Run(name, func(t *testing.T) {
			u := sessionsuite.NewJar()
			code, body := sessionsuite.Send(r, "POST", "/"+name, u, "")
			if code >= 500 || u.Empty() {
				t.Fatalf("answered %d %q, cookie set: %v", code, body, !u.Empty())
			}
			want := name + "|"
			if name == "nothing" {
				want = name + "|" + name // nothing was written before the handler returned
			}
			if _, got := sessionsuite.Send(r, "GET", "/read", u, ""); got != want {
				t.Fatalf("the next request reads %q, want %q", got, want)
			}
		})
	}
}

// failing is a store whose every call fails as when Redis is down.
type failing struct{ tierstore.Store }

func (failing) Get(context.Context, string) ([]byte, error) {
	return nil, fmt.Errorf("test: %w", tierstore.ErrUnavailable)
}

// A session that cannot be loaded is answered by the Manager's
// ErrorHandler, and the rest of gin's chain does not run.
func TestLoadFailureAbortsTheChain(t *testing.T) {
	m := manager(t, failing{})
	r := gin.New()
	ran := false
	r.Use(ginsession.Middleware(m), func(c *gin.Context) { ran = true })
	r.GET("/", func(c *gin.Context) { ran = true })
	req := httptest.NewRequest("GET", "https://tierstore.test/", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: strings.Repeat("A", 43)})
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || ran {
		t.Fatalf("answered %d, the chain ran: %v; want 503 and not", rec.Code, ran)
	}
}
