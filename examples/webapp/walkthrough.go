package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// device is one browser: its own cookie jar, shared by both instances
// (cookies do not depend on the port).
type device struct {
	name   string
	client *http.Client
}

func newDevice(name string) *device {
	jar, _ := cookiejar.New(nil)
	return &device{name: name, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// shown is what a page showed, as the walk-through reads it.
type shown struct {
	status   string   // the status line: instance, user, device
	notices  []string // the notices under it
	sessions []listed // the account page's list
}

type listed struct {
	device, handle string
	current        bool
}

var (
	statusLine = regexp.MustCompile(`<p id="status">([^<]*)</p>`)
	noticeLine = regexp.MustCompile(`<p class="notice" id="[^"]*">([^<]*)</p>`)
	listedRow  = regexp.MustCompile(`<tr class="session( current)?" data-device="([^"]*)" data-handle="([^"]*)">`)
)

// String is the page as one line: the status line, then the notices.
func (s shown) String() string {
	return strings.Join(append([]string{s.status}, s.notices...), " · ")
}

// list is the account page's list as one line.
func (s shown) list() string {
	var names []string
	for _, l := range s.sessions {
		n := l.device
		if l.current {
			n += " (this session)"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// handle returns the handle of the listed session of device name.
func (s shown) handle(name string) (string, error) {
	for _, l := range s.sessions {
		if l.device == name {
			return l.handle, nil
		}
	}
	return "", fmt.Errorf("no session of %q listed (%s)", name, s.list())
}

// open requests a page (a POST if form is not nil), following redirects,
// and reads what it shows.
func (d *device) open(target string, form url.Values) (shown, error) {
	var resp *http.Response
	var err error
	if form != nil {
		resp, err = d.client.PostForm(target, form)
	} else {
		resp, err = d.client.Get(target)
	}
	if err != nil {
		return shown{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return shown{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return shown{}, fmt.Errorf("%s %s: %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	var s shown
	if m := statusLine.FindSubmatch(body); m != nil {
		s.status = html.UnescapeString(string(m[1]))
	}
	for _, m := range noticeLine.FindAllSubmatch(body, -1) {
		s.notices = append(s.notices, html.UnescapeString(string(m[1])))
	}
	for _, m := range listedRow.FindAllSubmatch(body, -1) {
		s.sessions = append(s.sessions, listed{current: len(m[1]) > 0, device: html.UnescapeString(string(m[2])), handle: html.UnescapeString(string(m[3]))})
	}
	return s, nil
}

func (d *device) login(base, user string) (shown, error) {
	return d.open(base+"/login", url.Values{"user": {user}, "device": {d.name}})
}

// Walkthrough plays the story against the two instances with two
// devices (two browsers: two cookie jars) of one user, and checks each
// step. Device 1's cookie stays in its jar after its session is revoked
// from device 2: A must reject it although it held the session in memory.
func Walkthrough(out io.Writer, a, b *Instance, urlA, urlB string) error {
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
	dev1, dev2 := newDevice("device 1"), newDevice("device 2")
	page := func(d *device, base string) func() (string, error) {
		return func() (string, error) {
			s, err := d.open(base+"/account", nil)
			return s.String(), err
		}
	}
	caughtUp := func(in, writer *Instance) func() (string, error) {
		return func() (string, error) { return "done", in.CaughtUp(ctx, writer) }
	}
	var list shown // device 2's account page on B
	steps := []struct {
		what string
		do   func() (string, error)
		want string
	}{
		{"device 1 logs in on A", func() (string, error) {
			s, err := dev1.login(urlA, "ada")
			return s.String(), err
		}, "instance A: logged in as ada (device 1)"},
		{"device 1: GET B (from Redis)", page(dev1, urlB), "instance B: logged in as ada (device 1)"},
		{"device 1: GET B again (from B's memory)", func() (string, error) {
			// The cache admits new entries asynchronously: like a user
			// reloading, try a few times before calling it a miss.
			for range 50 {
				hits := b.Store.Stats().L1.Hits
				s, err := dev1.open(urlB+"/account", nil)
				if err != nil || b.Store.Stats().L1.Hits > hits {
					return s.String(), err
				}
			}
			return "not from memory", nil
		}, "instance B: logged in as ada (device 1)"},
		{"device 1: GET A", page(dev1, urlA), "instance A: logged in as ada (device 1)"},
		{"device 2 logs in on B, same user", func() (string, error) {
			var err error
			list, err = dev2.login(urlB, "ada")
			return list.String(), err
		}, "instance B: logged in as ada (device 2)"},
		{"device 2: ada's sessions, listed on B", func() (string, error) { return list.list(), nil }, "device 2 (this session), device 1"},
		{"device 2 logs device 1 out, on B", func() (string, error) {
			h, err := list.handle("device 1")
			if err != nil {
				return "", err
			}
			s, err := dev2.open(urlB+"/revoke", url.Values{"handle": {h}})
			return strings.Join(s.notices, " ") + " Left: " + s.list(), err
		}, "Left: device 2 (this session)"},
		{"A has applied B's changes", caughtUp(a, b), "done"},
		{"device 1: GET A, same cookie", page(dev1, urlA), "instance A: not logged in · This browser's session has ended"},
		{"device 1 logs in again, on A", func() (string, error) {
			s, err := dev1.login(urlA, "ada")
			return s.String(), err
		}, "instance A: logged in as ada (device 1)"},
		{"device 2 logs out everywhere, on B", func() (string, error) {
			s, err := dev2.open(urlB+"/logout-everywhere", url.Values{})
			return s.String(), err
		}, "instance B: not logged in · You logged out everywhere: 2 sessions ended."},
		{"A has applied B's changes", caughtUp(a, b), "done"},
		{"device 1: GET A, same cookie", page(dev1, urlA), "instance A: not logged in · This browser's session has ended"},
		{"device 2: GET B", page(dev2, urlB), "instance B: not logged in"},
	}
	for _, s := range steps {
		got, err := s.do()
		if err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		fmt.Fprintf(out, "  %-40s %s\n", s.what, got)
		if !strings.Contains(got, s.want) {
			return fmt.Errorf("%s: got %q, want %q", s.what, got, s.want)
		}
	}
	fmt.Fprintf(out, "\nA: %s\nB: %s\n", a.Store.Stats(), b.Store.Stats())
	return nil
}
