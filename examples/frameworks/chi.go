package main

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/session"
)

// ChiApp serves the app with chi and the session package: chi's handlers
// are net/http's, so the Manager's LoadAndSave is chi middleware as it is.
func ChiApp(store tierstore.Store, beforeWrite func(*http.Request)) (http.Handler, error) {
	sessions, err := session.New(session.Config{Store: store})
	if err != nil {
		return nil, err
	}
	fail := func(w http.ResponseWriter, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
	r := chi.NewRouter()
	r.Use(sessions.LoadAndSave)
	r.Post("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Renew(r.Context()); err != nil { // a new ID at login: no session fixation
			fail(w, err)
			return
		}
		fail(w, sessions.Put(r.Context(), "user", "ada"))
	})
	r.Get("/read", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		_, _ = w.Write([]byte(sessions.GetString(ctx, "user") + "|" + sessions.GetString(ctx, "a") + "|" + sessions.GetString(ctx, "b")))
	})
	r.Post("/write", func(w http.ResponseWriter, r *http.Request) {
		if beforeWrite != nil {
			beforeWrite(r)
		}
		fail(w, sessions.Put(r.Context(), r.URL.Query().Get("key"), "set"))
	})
	r.Post("/logout", func(w http.ResponseWriter, r *http.Request) {
		fail(w, sessions.Destroy(r.Context())) // deleted on every instance, and final
	})
	return r, nil
}
