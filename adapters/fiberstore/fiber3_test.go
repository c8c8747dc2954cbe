package fiberstore_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/limiter"
	"github.com/gofiber/fiber/v3/middleware/session"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/fiberstore"
	"github.com/tierstore/tierstore/internal/testenv/sessionsuite"
	"github.com/tierstore/tierstore/internal/testenv/tieredpair"
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
	return handler(func(r *http.Request) (*http.Response, error) {
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
	p := tieredpair.Start(t, "limiter3:")
	newApp := func(store tierstore.Store) *fiber.App {
		app := fiber.New()
		app.Use(limiter.New(limiter.Config{Max: 2, Expiration: time.Minute, Storage: fiberstore.New(store)}))
		app.Get("/", func(c fiber.Ctx) error { return c.SendString("ok") })
		return app
	}
	a, b := newApp(p.A), newApp(p.B)
	for i, app := range []*fiber.App{a, b, a, b} {
		resp, err := app.Test(httptest.NewRequest("GET", "/", nil), fiber.TestConfig{Timeout: 0})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{true: 200, false: 429}[i < 2]; resp.StatusCode != want {
			t.Fatalf("request %d (of a limit of 2, on A and B in turn) answered %d, want %d", i+1, resp.StatusCode, want)
		}
		p.Settle(t) // the limiter reads its counter, then writes it: not atomic across instances
	}
}
