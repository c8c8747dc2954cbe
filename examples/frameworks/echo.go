package main

import (
	"crypto/tls"
	"net/http"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo-contrib/session"
	"github.com/labstack/echo/v4"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/gorillastore"
)

// EchoApp serves the app with echo and echo-contrib/session, whose
// sessions gorillastore keeps in store: logout final on every instance,
// concurrent requests' changes to different keys kept.
func EchoApp(store tierstore.Store, beforeWrite func(*http.Request)) (http.Handler, error) {
	e := echo.New()
	e.Use(session.Middleware(gorillastore.New(store)))
	// with loads the session "sid" and hands it to fn.
	with := func(fn func(c echo.Context, s *sessions.Session) error) echo.HandlerFunc {
		return func(c echo.Context) error {
			s, err := session.Get("sid", c)
			if err != nil {
				return err
			}
			return fn(c, s)
		}
	}
	str := func(s *sessions.Session, k string) string { v, _ := s.Values[k].(string); return v }
	e.POST("/login", with(func(c echo.Context, s *sessions.Session) error {
		s.Values["user"] = "ada"
		return s.Save(c.Request(), c.Response())
	}))
	e.GET("/read", with(func(c echo.Context, s *sessions.Session) error {
		return c.String(http.StatusOK, str(s, "user")+"|"+str(s, "a")+"|"+str(s, "b"))
	}))
	e.POST("/write", with(func(c echo.Context, s *sessions.Session) error {
		if beforeWrite != nil {
			beforeWrite(c.Request())
		}
		s.Values[c.QueryParam("key")] = "set"
		return s.Save(c.Request(), c.Response())
	}))
	e.POST("/logout", with(func(c echo.Context, s *sessions.Session) error {
		s.Options.MaxAge = -1 // deleted on every instance, and final
		return s.Save(c.Request(), c.Response())
	}))
	return e, nil
}

// insecureTLS trusts the walk-through's own test servers.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } //nolint:gosec // loopback test servers only
