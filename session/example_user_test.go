package session_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/session"
)

// accountApp is the application of the examples: /login binds the
// session to a user (after checking the password, which it leaves out),
// /account lists the user's sessions, /logout-everywhere ends them all.
func accountApp(m *session.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// ... check the password ...
		_ = m.SetLabel(r.Context(), "device", r.Header.Get("User-Agent")) // before SetUser: written with the login
		if err := m.SetUser(r.Context(), r.FormValue("user")); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /account", func(w http.ResponseWriter, r *http.Request) {
		list, err := m.UserSessions(r.Context(), m.User(r.Context()))
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		for _, s := range list {
			current := ""
			if s.Current {
				current = " (this device)"
			}
			fmt.Fprintf(w, "%s%s\n", s.Labels["device"], current)
		}
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		// The handle comes from the list: it names a session of this user
		// only, and is no cookie.
		_, _ = m.RevokeSession(r.Context(), m.User(r.Context()), r.FormValue("handle"))
	})
	mux.HandleFunc("POST /logout-everywhere", func(w http.ResponseWriter, r *http.Request) {
		n, err := m.RevokeUser(r.Context(), m.User(r.Context()))
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%d sessions ended\n", n)
	})
	return m.LoadAndSave(mux)
}

// browser sends a request with its cookie and keeps the one it gets.
type browser struct {
	h      http.Handler
	agent  string
	cookie *http.Cookie
}

func (b *browser) send(method, path string) string {
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("User-Agent", b.agent)
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		b.cookie = c
	}
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

func newExampleManager() *session.Manager {
	store, _ := l1.New(l1.Config{}) // or l2.New, tiered.New: any Versioned store
	m, _ := session.New(session.Config{
		Store:              store,
		MaxSessionsPerUser: 5,
		Cookie:             session.Cookie{AllowInsecure: true}, // the example runs over plain HTTP
	})
	return m
}

// SetUser is the login step: the session is bound to the user and gets a
// new ID at once.
func ExampleManager_SetUser() {
	m := newExampleManager()
	phone := &browser{h: accountApp(m), agent: "phone"}
	phone.send("POST", "/login?user=ada")
	fmt.Print(phone.send("GET", "/account"))
	// Output: phone (this device)
}

// UserSessions lists the live sessions of a user, newest first, each with
// the labels the application recorded and a handle to revoke it by.
func ExampleManager_UserSessions() {
	m := newExampleManager()
	app := accountApp(m)
	phone := &browser{h: app, agent: "phone"}
	laptop := &browser{h: app, agent: "laptop"}
	phone.send("POST", "/login?user=ada")
	laptop.send("POST", "/login?user=ada")
	fmt.Print(phone.send("GET", "/account"))

	list, _ := m.UserSessions(context.Background(), "ada")
	phone.send("POST", "/revoke?handle="+list[0].Handle) // the laptop's
	fmt.Print(phone.send("GET", "/account"))
	// Output:
	// laptop
	// phone (this device)
	// phone (this device)
}

// RevokeUser logs a user out everywhere: every session ends on every
// instance, and no request in flight brings one back.
func ExampleManager_RevokeUser() {
	m := newExampleManager()
	app := accountApp(m)
	phone := &browser{h: app, agent: "phone"}
	laptop := &browser{h: app, agent: "laptop"}
	phone.send("POST", "/login?user=ada")
	laptop.send("POST", "/login?user=ada")
	fmt.Print(laptop.send("POST", "/logout-everywhere"))
	fmt.Printf("phone: %q, laptop: %q\n", phone.send("GET", "/account"), laptop.send("GET", "/account"))
	// Output:
	// 2 sessions ended
	// phone: "", laptop: ""
}
