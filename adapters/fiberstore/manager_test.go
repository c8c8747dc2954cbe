package fiberstore_test

import (
	"net/http"
	"testing"

	fiber2 "github.com/gofiber/fiber/v2"
	adaptor2 "github.com/gofiber/fiber/v2/middleware/adaptor"
	fiber3 "github.com/gofiber/fiber/v3"
	adaptor3 "github.com/gofiber/fiber/v3/middleware/adaptor"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/sessionsuite"
	"github.com/tierstore/tierstore/session"
)

// sessionRoutes serves sessionsuite's routes as net/http handlers behind
// the session package's LoadAndSave: what the docs advise for the routes
// whose logout must be final and whose changes must not be lost, mounted
// in Fiber through its adaptor middleware.
func sessionRoutes(t testing.TB, store tierstore.Store) http.Handler {
	m, err := session.New(session.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	fail := func(w http.ResponseWriter, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Renew(r.Context()); err != nil {
			fail(w, err)
			return
		}
		fail(w, m.Put(r.Context(), "user", "ada"))
	})
	mux.HandleFunc("GET /read", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		_, _ = w.Write([]byte(m.GetString(ctx, "user") + "|" + m.GetString(ctx, "a") + "|" + m.GetString(ctx, "b")))
	})
	mux.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) {
		sessionsuite.RunHook(r.Header.Get(sessionsuite.Hook))
		fail(w, m.Put(r.Context(), r.URL.Query().Get("key"), sessionsuite.Value))
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) { fail(w, m.Destroy(r.Context())) })
	return m.LoadAndSave(mux)
}

// The session package's routes inside Fiber v2 and v3 keep its
// guarantees: logout final, concurrent changes of different keys kept.
func TestSessionPackageInsideFiber(t *testing.T) {
	t.Run("v2", func(t *testing.T) {
		sessionsuite.Run(t, sessionsuite.Config{FinalLogout: true, KeepsBoth: true, App: func(t testing.TB, store tierstore.Store) http.Handler {
			app := fiber2.New()
			app.All("/*", adaptor2.HTTPHandler(sessionRoutes(t, store)))
			return sessionsuite.ServeTest(func(r *http.Request) (*http.Response, error) { return app.Test(r, -1) })
		}})
	})
	t.Run("v3", func(t *testing.T) {
		sessionsuite.Run(t, sessionsuite.Config{FinalLogout: true, KeepsBoth: true, App: func(t testing.TB, store tierstore.Store) http.Handler {
			app := fiber3.New()
			app.All("/*", adaptor3.HTTPHandler(sessionRoutes(t, store)))
			return sessionsuite.ServeTest(func(r *http.Request) (*http.Response, error) { return app.Test(r, fiber3.TestConfig{Timeout: 0}) })
		}})
	})
}
