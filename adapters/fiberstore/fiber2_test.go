package fiberstore_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/gofiber/fiber/v2/middleware/session"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/fiberstore"
	"github.com/tierstore/tierstore/internal/testenv/sessionsuite"
	"github.com/tierstore/tierstore/internal/testenv/tieredpair"
)

// app2 serves sessionsuite's routes with Fiber v2's session middleware.
func app2(_ testing.TB, store tierstore.Store) http.Handler {
	sessions := session.New(session.Config{Storage: fiberstore.New(store)})
	app := fiber.New()
	with := func(fn func(c *fiber.Ctx, s *session.Session) error) fiber.Handler {
		return func(c *fiber.Ctx) error {
			s, err := sessions.Get(c)
			if err != nil {
				return err
			}
			return fn(c, s)
		}
	}
	str := func(s *session.Session, k string) string { v, _ := s.Get(k).(string); return v }
	app.Post("/login", with(func(c *fiber.Ctx, s *session.Session) error {
		if err := s.Regenerate(); err != nil {
			return err
		}
		s.Set("user", "ada")
		return s.Save()
	}))
	app.Get("/read", with(func(c *fiber.Ctx, s *session.Session) error {
		return c.SendString(str(s, "user") + "|" + str(s, "a") + "|" + str(s, "b"))
	}))
	app.Post("/write", with(func(c *fiber.Ctx, s *session.Session) error {
		sessionsuite.RunHook(c.Get(sessionsuite.Hook))
		s.Set(c.Query("key"), sessionsuite.Value)
		return s.Save()
	}))
	app.Post("/logout", with(func(c *fiber.Ctx, s *session.Session) error { return s.Destroy() }))
	return sessionsuite.ServeTest(func(r *http.Request) (*http.Response, error) { return app.Test(r, -1) })
}

// Two instances on one redis-server, through Fiber v2's test server: a
// login is seen everywhere, a logout too once its invalidation arrived;
// a save in flight during a logout stores the session again, and of two
// concurrent saves the last wins whole (fiberstore's package doc).
func TestFiber2TwoInstances(t *testing.T) {
	sessionsuite.Run(t, sessionsuite.Config{App: app2})
}

// The limiter middleware on one Storage counts a client's requests on
// every instance.
func TestFiber2LimiterAcrossInstances(t *testing.T) {
	limiterAcrossInstances(t, func(store tierstore.Store) func(*http.Request) (*http.Response, error) {
		app := fiber.New()
		app.Use(limiter.New(limiter.Config{Max: 2, Expiration: time.Minute, Storage: fiberstore.New(store)}))
		app.Get("/", func(c *fiber.Ctx) error { return c.SendString("ok") })
		return func(r *http.Request) (*http.Response, error) { return app.Test(r, -1) }
	})
}

// limiterAcrossInstances checks a limiter of 2 requests a minute on A and
// B, the apps that serve opens on each.
func limiterAcrossInstances(t *testing.T, serve func(tierstore.Store) func(*http.Request) (*http.Response, error)) {
	p := tieredpair.Start(t, "limiter:")
	a, b := serve(p.A), serve(p.B)
	for i, test := range []func(*http.Request) (*http.Response, error){a, b, a, b} {
		resp, err := test(httptest.NewRequest("GET", "/", nil))
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
