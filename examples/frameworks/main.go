// Command frameworks is the same small app, served with echo (sessions of
// echo-contrib/session, kept by adapters/gorillastore) or with chi (the
// session package's LoadAndSave, as with any net/http router), on two
// instances sharing one Redis: it logs in on A, reads the session on B,
// logs out on B, and shows A refusing the old cookie.
//
//	go run ./examples/frameworks -framework echo   # embedded miniredis
//	go run ./examples/frameworks -framework chi -redis host:port
//
// The app's routes:
//
//	POST /login           puts user=ada (starting a session)
//	GET  /read            answers "user|a|b", the values of those keys
//	POST /write?key=K     puts K=set
//	POST /logout          ends the session
//
// The gin and Fiber equivalents are in the adapters' own modules
// (adapters/ginstore, adapters/fiberstore) and in docs/sessions.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/tiered"
)

func main() {
	framework := flag.String("framework", "echo", "echo or chi")
	redisAddr := flag.String("redis", "", "Redis address; empty: embedded miniredis")
	flag.Parse()
	if err := run(*framework, *redisAddr, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "frameworks:", err)
		os.Exit(1)
	}
}

// Apps are the app's constructors, by framework. beforeWrite, if not nil,
// runs in /write once the session is loaded and before it changes (the
// tests hold a request there).
var Apps = map[string]func(store tierstore.Store, beforeWrite func(*http.Request)) (http.Handler, error){
	"echo": EchoApp,
	"chi":  ChiApp,
}

func run(framework, redisAddr string, out io.Writer) error {
	newApp, ok := Apps[framework]
	if !ok {
		return fmt.Errorf("unknown -framework %q (echo or chi)", framework)
	}
	embedded := redisAddr == ""
	if embedded {
		mr, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer mr.Close()
		redisAddr = mr.Addr()
	}
	// Two instances: each its own tiered store (L1 and Redis connections)
	// and app, as two processes would have.
	var urls []string
	for range 2 {
		rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
		defer rdb.Close()
		store, err := tiered.New(tiered.Config{
			Redis: rdb, KeyPrefix: "frameworks:",
			// miniredis has no CLIENT TRACKING: only the store's own
			// writes invalidate then.
			Invalidation: invalidation.ModeIf(embedded),
		})
		if err != nil {
			return err
		}
		defer store.Close()
		h, err := newApp(store, nil)
		if err != nil {
			return err
		}
		srv := httptest.NewTLSServer(h) // the session cookies are Secure
		defer srv.Close()
		urls = append(urls, srv.URL)
	}
	a, b := urls[0], urls[1]
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
	// Both test servers are 127.0.0.1: one cookie jar serves both, as a
	// browser behind one load balancer.
	step := func(what, method, url string, cookies ...*http.Cookie) (string, error) {
		req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
		if err != nil {
			return "", err
		}
		c := client
		if cookies != nil { // this request with these cookies, the jar left out
			c = &http.Client{Transport: client.Transport}
			for _, ck := range cookies {
				req.AddCookie(ck)
			}
		}
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			return "", fmt.Errorf("%s: %s", what, resp.Status)
		}
		fmt.Fprintf(out, "%-28s %-4s %-14s -> %d %q\n", what, method, url[len(a):], resp.StatusCode, body)
		return string(body), err
	}
	for _, s := range []struct{ what, method, url, want string }{
		{"login on A", "POST", a + "/login", ""},
		{"read on B", "GET", b + "/read", "ada||"},
		{"write on B", "POST", b + "/write?key=b", ""},
		{"read on A", "GET", a + "/read", "ada||set"},
	} {
		got, err := step(s.what, s.method, s.url)
		if err != nil {
			return err
		}
		if s.want != "" && got != s.want {
			return fmt.Errorf("%s: read %q, want %q", s.what, got, s.want)
		}
	}
	u, err := url.Parse(a)
	if err != nil {
		return err
	}
	old := jar.Cookies(u)
	if _, err := step("logout on B", "POST", b+"/logout"); err != nil {
		return err
	}
	// Within the invalidation delay (well under a millisecond), A may
	// still serve its copy to a reader; a save can never bring it back.
	_, err = step("the old cookie, on A", "GET", a+"/read", old...)
	return err
}
