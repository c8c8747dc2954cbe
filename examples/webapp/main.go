// Command webapp is two instances of one web service sharing sessions
// through tierstore: log in on one, see the session on the other, log out
// on the other, and the first rejects it at once.
//
//	go run ./examples/webapp                  # embedded miniredis, :8081 and :8082
//	go run ./examples/webapp -redis host:port # a real Redis
//
// It walks through that story with an HTTP client, printing each step,
// then keeps serving for a browser until interrupted (-serve=false to
// stop after the walk-through).
package main

import (
	"context"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

func main() {
	redisAddr := flag.String("redis", "", "Redis address; empty: embedded miniredis")
	addrA := flag.String("a", "127.0.0.1:8081", "listen address of instance A")
	addrB := flag.String("b", "127.0.0.1:8082", "listen address of instance B")
	serve := flag.Bool("serve", true, "keep serving after the walk-through")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *redisAddr, *addrA, *addrB, *serve, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

// Instance is one process of the service: its own tiered store (L1 and
// Redis connections) and session manager.
type Instance struct {
	Name     string
	Store    *tiered.Store
	Sessions *session.Manager
	Handler  http.Handler
	// Invalidated receives a signal each time a peer's invalidation has
	// been applied to this instance's memory (tiered.Config.OnInvalidate).
	Invalidated chan struct{}
}

// NewInstance builds an instance on its own Redis client. embedded says
// the server is miniredis, which has no CLIENT TRACKING: then only the
// store's own writes invalidate (tiered.Config.Invalidation = invalidation.OwnWrites).
func NewInstance(name, redisAddr string, embedded bool) (*Instance, error) {
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	invalidated := make(chan struct{}, 64)
	store, err := tiered.New(tiered.Config{Redis: rdb, KeyPrefix: "webapp:", Invalidation: invalidation.ModeIf(embedded), OnInvalidate: func(string) {
		select {
		case invalidated <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		return nil, err
	}
	sessions, err := session.New(session.Config{
		Store:       store,
		IdleTimeout: 30 * time.Minute,
		// Plain HTTP on loopback for the demo. Behind TLS, leave it false.
		Cookie: session.Cookie{AllowInsecure: true},
	})
	if err != nil {
		return nil, err
	}
	in := &Instance{Name: name, Store: store, Sessions: sessions, Invalidated: invalidated}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", in.home)
	mux.HandleFunc("POST /login", in.login)
	mux.HandleFunc("POST /logout", in.logout)
	in.Handler = sessions.LoadAndSave(mux)
	return in, nil
}

// Close stops the instance's store.
func (in *Instance) Close() error { return in.Store.Close() }

func (in *Instance) home(w http.ResponseWriter, r *http.Request) {
	user := in.Sessions.GetString(r.Context(), "user")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if user == "" {
		fmt.Fprintf(w, `<p>instance %s: not logged in</p>
<form method="post" action="/login"><input name="user" value="ada"><button>log in</button></form>`, in.Name)
		return
	}
	fmt.Fprintf(w, `<p>instance %s: logged in as %s</p>
<form method="post" action="/logout"><button>log out</button></form>`, in.Name, html.EscapeString(user))
}

func (in *Instance) login(w http.ResponseWriter, r *http.Request) {
	user := r.FormValue("user")
	if user == "" {
		http.Error(w, "user required", http.StatusBadRequest)
		return
	}
	// A new ID on login: the ID a visitor had before cannot be fixed on them.
	if err := in.Sessions.Renew(r.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if err := in.Sessions.Put(r.Context(), "user", user); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (in *Instance) logout(w http.ResponseWriter, r *http.Request) {
	if err := in.Sessions.Destroy(r.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func run(ctx context.Context, redisAddr, addrA, addrB string, serve bool, out io.Writer) error {
	embedded := redisAddr == ""
	if embedded {
		m, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer m.Close()
		redisAddr = m.Addr()
		fmt.Fprintf(out, "Redis: embedded miniredis at %s\n", redisAddr)
	}
	a, err := NewInstance("A", redisAddr, embedded)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := NewInstance("B", redisAddr, embedded)
	if err != nil {
		return err
	}
	defer b.Close()

	urlA, stopA, err := listen(a.Handler, addrA)
	if err != nil {
		return err
	}
	defer stopA()
	urlB, stopB, err := listen(b.Handler, addrB)
	if err != nil {
		return err
	}
	defer stopB()
	fmt.Fprintf(out, "instance A: %s\ninstance B: %s\n\n", urlA, urlB)
	if err := Walkthrough(out, a, b, urlA, urlB); err != nil {
		return err
	}
	if !serve {
		return nil
	}
	fmt.Fprintf(out, "\nServing: open %s and %s in a browser (Ctrl-C to stop).\n", urlA, urlB)
	<-ctx.Done()
	return nil
}

func listen(h http.Handler, addr string) (string, func(), error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

// Walkthrough plays the story against the two instances with one browser
// (one cookie jar: cookies do not depend on the port) and checks each step.
// Its last step replays the logged-out session's cookie on A, as a client
// that ignores the logout's cookie deletion (or an attacker who copied the
// cookie) would: A must reject it although it held the session in memory.
func Walkthrough(out io.Writer, a, b *Instance, urlA, urlB string) error {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(url, cookie string) (string, error) {
		req, err := http.NewRequest("GET", url+"/", nil)
		if err != nil {
			return "", err
		}
		c := client
		if cookie != "" { // replay this cookie instead of the jar's
			c = &http.Client{Timeout: client.Timeout}
			req.Header.Set("Cookie", cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		first, _, _ := strings.Cut(string(body), "\n")
		return strings.TrimSuffix(strings.TrimPrefix(first, "<p>"), "</p>"), err
	}
	page := func(url string) (string, error) { return get(url, "") }
	post := func(url string) error {
		resp, err := client.PostForm(url, map[string][]string{"user": {"ada"}})
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	step := func(what string, do func() (string, error), want string) error {
		got, err := do()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %-40s %s\n", what, got)
		if !strings.Contains(got, want) {
			return fmt.Errorf("%s: got %q, want %q", what, got, want)
		}
		return nil
	}
	// Serve from memory from the first request: wait for both
	// subscriptions (the stores work without this, from Redis).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Store.WaitLive(ctx); err != nil {
		return fmt.Errorf("instance A's invalidation subscription: %w", err)
	}
	if err := b.Store.WaitLive(ctx); err != nil {
		return fmt.Errorf("instance B's invalidation subscription: %w", err)
	}
	var sessionCookie string
	noop := func(err error) (string, error) { return "done", err }
	steps := []struct {
		what string
		do   func() (string, error)
		want string
	}{
		{"log in on A", func() (string, error) { return noop(post(urlA + "/login")) }, "done"},
		{"GET B (from Redis)", func() (string, error) { return page(urlB) }, "logged in as ada"},
		{"GET B again (from B's memory)", func() (string, error) {
			// The cache admits new entries asynchronously: like a user
			// reloading, try a few times before calling it a miss.
			for range 50 {
				hits := b.Store.Stats().L1.Hits
				p, err := page(urlB)
				if err != nil || b.Store.Stats().L1.Hits > hits {
					return p, err
				}
			}
			return "not from memory", nil
		}, "logged in as ada"},
		{"GET A (A now holds the session too)", func() (string, error) { return page(urlA) }, "logged in as ada"},
		{"log out on B", func() (string, error) {
			u, _ := url.Parse(urlA)
			for _, c := range jar.Cookies(u) {
				sessionCookie = c.Name + "=" + c.Value
			}
			return noop(post(urlB + "/logout"))
		}, "done"},
		{"A receives B's invalidation", func() (string, error) {
			select {
			case <-a.Invalidated:
				return "done", nil
			case <-time.After(5 * time.Second):
				return "no invalidation within 5s", nil
			}
		}, "done"},
		{"GET A with the old cookie", func() (string, error) { return get(urlA, sessionCookie) }, "not logged in"},
	}
	for _, s := range steps {
		if err := step(s.what, s.do, s.want); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\nA: %s\nB: %s\n", a.Store.Stats(), b.Store.Stats())
	return nil
}
