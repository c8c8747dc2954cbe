package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// servedPair serves instances A and B on one miniredis.
func servedPair(t *testing.T) (a, b *Instance, urlA, urlB string) {
	t.Helper()
	m, _ := redistest.Miniredis(t)
	a, b, err := newPair(m.Addr(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	srvA, srvB := httptest.NewServer(a.Handler), httptest.NewServer(b.Handler)
	t.Cleanup(srvA.Close)
	t.Cleanup(srvB.Close)
	return a, b, srvA.URL, srvB.URL
}

// body returns a function that returns a response's status code and
// body, closing it: body(t)(client.Get(url)).
func body(t *testing.T) func(*http.Response, error) (int, string) {
	return func(resp *http.Response, err error) (int, string) {
		t.Helper()
		return readBody(t, resp, err)
	}
}

func readBody(t *testing.T, resp *http.Response, err error) (int, string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestPagesEscapeTheVisitorsInput(t *testing.T) {
	_, _, urlA, _ := servedPair(t)
	dev := newDevice(`<script>alert("device")</script>`)
	code, page := body(t)(dev.client.PostForm(urlA+"/login", url.Values{"user": {`<b>ada</b>`}, "device": {dev.name}}))
	if code != http.StatusOK {
		t.Fatalf("login: %d %s", code, page)
	}
	for _, raw := range []string{"<script>", "<b>ada"} {
		if strings.Contains(page, raw) {
			t.Errorf("the account page shows %q unescaped:\n%s", raw, page)
		}
	}
	for _, escaped := range []string{"&lt;script&gt;alert(&#34;device&#34;)&lt;/script&gt;", "&lt;b&gt;ada&lt;/b&gt;"} {
		if !strings.Contains(page, escaped) {
			t.Errorf("the account page does not show %q:\n%s", escaped, page)
		}
	}
	s, err := dev.open(urlA+"/account", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.list(); got != dev.name+" (this session)" {
		t.Errorf("listed %q, want the device's label as typed", got)
	}
}

func TestCrossOriginPostsAreRefused(t *testing.T) {
	_, _, urlA, urlB := servedPair(t)
	form := url.Values{"user": {"ada"}, "device": {"laptop"}}.Encode()
	for _, tc := range []struct {
		name          string
		header, value string
	}{
		{"another site", "Sec-Fetch-Site", "cross-site"},
		{"the other instance's port (same site)", "Sec-Fetch-Site", "same-site"},
		{"an Origin, no Sec-Fetch-Site", "Origin", urlB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", urlA+"/login", strings.NewReader(form))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(tc.header, tc.value)
			resp, err := http.DefaultClient.Do(req)
			if code, page := readBody(t, resp, err); code != http.StatusForbidden {
				t.Errorf("cross-origin login: %d %s, want 403", code, page)
			}
			if len(resp.Cookies()) > 0 {
				t.Errorf("a refused login set cookies %v", resp.Cookies())
			}
		})
	}
	// The same form from the page's own origin logs in.
	req, _ := http.NewRequest("POST", urlA+"/login", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", urlA)
	dev := newDevice("laptop")
	if code, page := body(t)(dev.client.Do(req)); code != http.StatusOK || !strings.Contains(page, "logged in as ada (laptop)") {
		t.Errorf("same-origin login: %d %s", code, page)
	}
}

func TestBadLoginInputIsRefused(t *testing.T) {
	_, _, urlA, _ := servedPair(t)
	long := strings.Repeat("x", maxField+1)
	for _, tc := range []struct{ name, user, device, want string }{
		{"no user", "", "laptop", "user: a user name, please"},
		{"blank user", "  ", "laptop", "user: a user name, please"},
		{"long user", long, "laptop", "user: at most 64 bytes"},
		{"long device", "ada", long, "device: at most 64 bytes"},
		{"user not UTF-8", "ad\xffa", "laptop", "user: not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := newDevice(tc.device)
			code, page := body(t)(dev.client.PostForm(urlA+"/login", url.Values{"user": {tc.user}, "device": {tc.device}}))
			if code != http.StatusBadRequest || !strings.Contains(page, tc.want) {
				t.Errorf("got %d %q, want 400 %q", code, page, tc.want)
			}
			if s, err := dev.open(urlA+"/account", nil); err != nil || s.status != "instance A: not logged in" {
				t.Errorf("after a refused login: %q, %v", s.status, err)
			}
		})
	}
}

func TestAccountChangesNeedALiveSession(t *testing.T) {
	_, _, urlA, _ := servedPair(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/revoke", "/logout-everywhere"} {
		code, page := body(t)(client.PostForm(urlA+path, url.Values{"handle": {"x"}}))
		if code != http.StatusUnauthorized {
			t.Errorf("POST %s without a session: %d %s, want 401", path, code, page)
		}
	}
	resp, err := client.Get(urlA + "/account")
	if code, _ := readBody(t, resp, err); code != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("GET /account without a session: %d to %q, want 303 to /login", code, resp.Header.Get("Location"))
	}
}

func TestAHandleOfAnotherUsersSessionEndsNothing(t *testing.T) {
	_, _, urlA, urlB := servedPair(t)
	bob, ada := newDevice("bob's phone"), newDevice("ada's laptop")
	list, err := bob.login(urlB, "bob")
	if err != nil {
		t.Fatal(err)
	}
	handle, err := list.handle("bob's phone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ada.login(urlA, "ada"); err != nil {
		t.Fatal(err)
	}
	s, err := ada.open(urlA+"/revoke", url.Values{"handle": {handle}})
	if err != nil || !strings.Contains(s.String(), "That session had ended already.") {
		t.Fatalf("ada revoking bob's handle: %q, %v", s, err)
	}
	if s, err := bob.open(urlA+"/account", nil); err != nil || s.list() != "bob's phone (this session)" {
		t.Fatalf("bob after ada's attempt: %q %q, %v", s, s.list(), err)
	}
}

func TestLogoutEndsOnlyThisSession(t *testing.T) {
	a, b, urlA, urlB := servedPair(t)
	dev1, dev2 := newDevice("device 1"), newDevice("device 2")
	if _, err := dev1.login(urlA, "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := dev2.login(urlB, "ada"); err != nil {
		t.Fatal(err)
	}
	s, err := dev2.open(urlB+"/logout", url.Values{})
	if err != nil || s.String() != "instance B: not logged in · You logged out this session." {
		t.Fatalf("logout: %q, %v", s, err)
	}
	if err := a.CaughtUp(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if s, err := dev1.open(urlA+"/account", nil); err != nil || s.list() != "device 1 (this session)" {
		t.Fatalf("device 1 after device 2's logout: %q %q, %v", s, s.list(), err)
	}
}
