package fiberstore_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/limiter"
	"github.com/gofiber/fiber/v3/middleware/session"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/fiberstore"
	"github.com/tierstore/tierstore/internal/testenv/sessionsuite"
)

// app3 serves sessionsuite's routes with Fiber v3's session middleware,
// which loads the session before the handler and saves it after.
func app3(_ testing.TB, store tierstore.Store) http.Handler {
	app := fiber.New()
	app.Use(session.New(session.Config{Storage: fiberstore.New(store)}))
	str := func(s *session.Middleware, k string) string { v, _ := s.Get(k).(string); return v }
	app.Post("/login", func(c fiber.Ctx) error {
		s := session.FromContext(c)
		if err := s.Regenerate(); err != nil {
			return err
		}
		s.Set("user", "ada")
		return nil
	})
	app.Get("/read", func(c fiber.Ctx) error {
		s := session.FromContext(c)
		return c.SendString(str(s, "user") + "|" + str(s, "a") + "|" + str(s, "b"))
	})
	app.Post("/write", func(c fiber.Ctx) error {
		sessionsuite.RunHook(c.Get(sessionsuite.Hook))
		session.FromContext(c).Set(fiber.Query[string](c, "key"), sessionsuite.Value)
		return nil
	})
	app.Post("/logout", func(c fiber.Ctx) error { return session.FromContext(c).Destroy() })
	return sessionsuite.ServeTest(func(r *http.Request) (*http.Response, error) {
		return app.Test(r, fiber.TestConfig{Timeout: 0})
	})
}

// The suite of TestFiber2TwoInstances, on Fiber v3.
func TestFiber3TwoInstances(t *testing.T) {
	sessionsuite.Run(t, sessionsuite.Config{App: app3})
}

// The limiter middleware on one Storage counts a client's requests on
// every instance.
func TestFiber3LimiterAcrossInstances(t *testing.T) {
	limiterAcrossInstances(t, func(store tierstore.Store) func(*http.Request) (*http.Response, error) {
		app := fiber.New()
		app.Use(limiter.New(limiter.Config{Max: 2, Expiration: time.Minute, Storage: fiberstore.New(store)}))
		app.Get("/", func(c fiber.Ctx) error { return c.SendString("ok") })
		return func(r *http.Request) (*http.Response, error) { return app.Test(r, fiber.TestConfig{Timeout: 0}) }
	})
}
