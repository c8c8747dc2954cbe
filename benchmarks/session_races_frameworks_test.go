package benchmarks

import (
	"io"
	"net/http"
	"testing"

	ginsessions "github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	fiber2 "github.com/gofiber/fiber/v2"
	fibersession2 "github.com/gofiber/fiber/v2/middleware/session"
	fiber3 "github.com/gofiber/fiber/v3"
	fibersession3 "github.com/gofiber/fiber/v3/middleware/session"
	"github.com/gorilla/sessions"
	echosession "github.com/labstack/echo-contrib/session"
	"github.com/labstack/echo/v4"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/fiberstore"
	"github.com/tierstore/tierstore/adapters/ginstore"
	"github.com/tierstore/tierstore/adapters/ginstore/ginsession"
	"github.com/tierstore/tierstore/adapters/gorillastore"
	"github.com/tierstore/tierstore/internal/testenv/sessionsuite"
	"github.com/tierstore/tierstore/session"
)

// BenchmarkSessionRacesFrameworks is BenchmarkSessionRaces (same
// scenarios, metrics and judge) for the web frameworks' adapters, each
// stack on tiered and served through the framework's own router (Fiber:
// its app.Test server):
//
//   - gin-ginstore: gin-contrib/sessions on adapters/ginstore;
//   - gin-ginsession: ginsession.Middleware over session.Manager;
//   - fiber2-fiberstore, fiber3-fiberstore: Fiber's session middleware on
//     adapters/fiberstore (blob-level: the races are expected here);
//   - echo-gorillastore: echo-contrib/session on adapters/gorillastore;
//   - chi-session: session.Manager.LoadAndSave as chi middleware.
//
// Run a fixed count of trials:
//
//	go test -run '^$' -bench SessionRacesFrameworks -benchtime 50x -count 1 .
func BenchmarkSessionRacesFrameworks(b *testing.B) { runRaces(b, frameworkRaceStacks()) }

func init() { gin.SetMode(gin.ReleaseMode) }

// frameworkRaceStacks are the frameworks' stacks, each on tiered and
// judged by the same app on l2.
func frameworkRaceStacks() []raceStack {
	var stacks []raceStack
	for _, f := range []struct {
		name  string
		renew bool
		app   func(tb testing.TB, store tierstore.Store) http.Handler
	}{
		{"gin-ginstore-tiered", false, ginstoreRaceApp},
		{"gin-ginsession-tiered", true, ginsessionRaceApp},
		{"fiber2-fiberstore-tiered", true, fiber2RaceApp},
		{"fiber3-fiberstore-tiered", true, fiber3RaceApp},
		{"echo-gorillastore-tiered", false, echoRaceApp},
		{"chi-session-tiered", true, chiRaceApp},
	} {
		stacks = append(stacks, raceStack{name: f.name, renew: f.renew, open: onTieredStack(f.app), judge: onL2Stack(f.app)})
	}
	return stacks
}

// manager is a session.Manager on store, for the stacks built on it.
func manager(tb testing.TB, store tierstore.Store) *session.Manager {
	m, err := session.New(session.Config{Store: store})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func readValues(get func(string) string) string {
	return readBody(get("user"), get("a"), get("b"))
}

func ginstoreRaceApp(_ testing.TB, store tierstore.Store) http.Handler {
	r := gin.New()
	r.Use(ginsessions.Sessions("sid", ginstore.New(store)))
	save := func(c *gin.Context, s ginsessions.Session) {
		if err := s.Save(); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
		}
	}
	r.POST("/login", func(c *gin.Context) {
		s := ginsessions.Default(c)
		s.Set("user", "ada")
		save(c, s)
	})
	r.GET("/read", func(c *gin.Context) {
		s := ginsessions.Default(c)
		c.String(http.StatusOK, readValues(func(k string) string { v, _ := s.Get(k).(string); return v }))
	})
	r.POST("/write", func(c *gin.Context) {
		s := ginsessions.Default(c)
		s.Get("user") // loads the session
		runHook(c.Request)
		s.Set(c.Query("key"), raceValue)
		save(c, s)
	})
	r.POST("/logout", func(c *gin.Context) {
		s := ginsessions.Default(c)
		s.Options(ginsessions.Options{Path: "/", MaxAge: -1})
		save(c, s)
	})
	return r
}

func ginsessionRaceApp(tb testing.TB, store tierstore.Store) http.Handler {
	m := manager(tb, store)
	r := gin.New()
	r.Use(ginsession.Middleware(m))
	fail := func(c *gin.Context, err error) {
		if err != nil {
			c.String(http.StatusInternalServerError, err.Error())
		}
	}
	r.POST("/login", func(c *gin.Context) { fail(c, m.Put(c.Request.Context(), "user", "ada")) })
	r.GET("/read", func(c *gin.Context) {
		c.String(http.StatusOK, readValues(func(k string) string { return m.GetString(c.Request.Context(), k) }))
	})
	r.POST("/write", func(c *gin.Context) {
		runHook(c.Request)
		fail(c, m.Put(c.Request.Context(), c.Query("key"), raceValue))
	})
	r.POST("/logout", func(c *gin.Context) { fail(c, m.Destroy(c.Request.Context())) })
	r.POST("/renew", func(c *gin.Context) { fail(c, m.Renew(c.Request.Context())) })
	return r
}

func chiRaceApp(tb testing.TB, store tierstore.Store) http.Handler {
	m := manager(tb, store)
	fail := func(w http.ResponseWriter, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
	r := chi.NewRouter()
	r.Use(m.LoadAndSave)
	r.Post("/login", func(w http.ResponseWriter, r *http.Request) { fail(w, m.Put(r.Context(), "user", "ada")) })
	r.Get("/read", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, readValues(func(k string) string { return m.GetString(r.Context(), k) }))
	})
	r.Post("/write", func(w http.ResponseWriter, r *http.Request) {
		runHook(r)
		fail(w, m.Put(r.Context(), r.URL.Query().Get("key"), raceValue))
	})
	r.Post("/logout", func(w http.ResponseWriter, r *http.Request) { fail(w, m.Destroy(r.Context())) })
	r.Post("/renew", func(w http.ResponseWriter, r *http.Request) { fail(w, m.Renew(r.Context())) })
	return r
}

func echoRaceApp(_ testing.TB, store tierstore.Store) http.Handler {
	e := echo.New()
	e.Use(echosession.Middleware(gorillastore.New(store)))
	with := func(fn func(c echo.Context, s *sessions.Session) error) echo.HandlerFunc {
		return func(c echo.Context) error {
			s, err := echosession.Get("sid", c)
			if err != nil {
				return err
			}
			return fn(c, s)
		}
	}
	e.POST("/login", with(func(c echo.Context, s *sessions.Session) error {
		s.Values["user"] = "ada"
		return s.Save(c.Request(), c.Response())
	}))
	e.GET("/read", with(func(c echo.Context, s *sessions.Session) error {
		return c.String(http.StatusOK, readValues(func(k string) string { v, _ := s.Values[k].(string); return v }))
	}))
	e.POST("/write", with(func(c echo.Context, s *sessions.Session) error {
		runHook(c.Request())
		s.Values[c.QueryParam("key")] = raceValue
		return s.Save(c.Request(), c.Response())
	}))
	e.POST("/logout", with(func(c echo.Context, s *sessions.Session) error {
		s.Options.MaxAge = -1
		return s.Save(c.Request(), c.Response())
	}))
	return e
}

func fiber2RaceApp(_ testing.TB, store tierstore.Store) http.Handler {
	sessions := fibersession2.New(fibersession2.Config{Storage: fiberstore.New(store)})
	app := fiber2.New()
	with := func(fn func(c *fiber2.Ctx, s *fibersession2.Session) error) fiber2.Handler {
		return func(c *fiber2.Ctx) error {
			s, err := sessions.Get(c)
			if err != nil {
				return err
			}
			return fn(c, s)
		}
	}
	app.Post("/login", with(func(c *fiber2.Ctx, s *fibersession2.Session) error {
		s.Set("user", "ada")
		return s.Save()
	}))
	app.Get("/read", with(func(c *fiber2.Ctx, s *fibersession2.Session) error {
		return c.SendString(readValues(func(k string) string { v, _ := s.Get(k).(string); return v }))
	}))
	app.Post("/write", with(func(c *fiber2.Ctx, s *fibersession2.Session) error {
		sessionsuite.RunHook(c.Get(sessionsuite.Hook))
		s.Set(c.Query("key"), raceValue)
		return s.Save()
	}))
	app.Post("/logout", with(func(c *fiber2.Ctx, s *fibersession2.Session) error { return s.Destroy() }))
	app.Post("/renew", with(func(c *fiber2.Ctx, s *fibersession2.Session) error {
		if err := s.Regenerate(); err != nil {
			return err
		}
		return s.Save()
	}))
	return fiberHandler(func(r *http.Request) (*http.Response, error) { return app.Test(r, -1) })
}

func fiber3RaceApp(_ testing.TB, store tierstore.Store) http.Handler {
	app := fiber3.New()
	app.Use(fibersession3.New(fibersession3.Config{Storage: fiberstore.New(store)}))
	app.Post("/login", func(c fiber3.Ctx) error {
		fibersession3.FromContext(c).Set("user", "ada")
		return nil
	})
	app.Get("/read", func(c fiber3.Ctx) error {
		s := fibersession3.FromContext(c)
		return c.SendString(readValues(func(k string) string { v, _ := s.Get(k).(string); return v }))
	})
	app.Post("/write", func(c fiber3.Ctx) error {
		sessionsuite.RunHook(c.Get(sessionsuite.Hook))
		fibersession3.FromContext(c).Set(fiber3.Query[string](c, "key"), raceValue)
		return nil
	})
	app.Post("/logout", func(c fiber3.Ctx) error { return fibersession3.FromContext(c).Destroy() })
	app.Post("/renew", func(c fiber3.Ctx) error { return fibersession3.FromContext(c).Regenerate() })
	return fiberHandler(func(r *http.Request) (*http.Response, error) {
		return app.Test(r, fiber3.TestConfig{Timeout: 0})
	})
}

// fiberHandler serves requests through a Fiber app's Test method, which
// builds its own request from the one it is given, without its context:
// the request's hook (withHook) reaches the app as sessionsuite's Hook
// header.
func fiberHandler(test func(*http.Request) (*http.Response, error)) http.Handler {
	h := sessionsuite.ServeTest(test)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hook, ok := r.Context().Value(hookKey{}).(func()); ok {
			id, forget := sessionsuite.Register(hook)
			defer forget()
			r.Header.Set(sessionsuite.Hook, id)
		}
		h.ServeHTTP(w, r)
	})
}
