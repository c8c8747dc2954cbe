package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// The screenshots docs/sessions.md shows, written by a run with
// UPDATE_SCREENSHOTS=1 (every run writes them to its TempDir).
const (
	shotAccount = "account-page.png" // device 2's account page on B, two sessions
	shotRefused = "revoked.png"      // device 1 on A after its session was revoked
)

// chromium returns the path of the browser the test drives: skipped
// when it is missing, failed when CI is set (scripts/ensure-chromium.sh
// installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const msg = "chromium not found in PATH: install it (apt-get install -y chromium) or run ./scripts/test.sh, which does"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this is a failure, not a skip)")
	}
	t.Skip(msg)
	return ""
}

// TestAccountPageInABrowser drives headless Chromium through the account
// page, with two instances on a real redis-server: device 1 logs in on A,
// device 2 (another browser context: another cookie jar) logs in on B as
// the same user, B lists both sessions, device 2 logs device 1 out there,
// and A refuses device 1's session: a state change answered 401, a page
// redirected to the login. Then device 1 logs in again and device 2 logs
// out everywhere, and A refuses device 1 again. Each step waits for the
// page element that only its result has, never for a time.
func TestAccountPageInABrowser(t *testing.T) {
	browserPath := chromium(t)
	srv := redistest.Start(t)
	a, b, err := newPair(srv.Addr(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	urlA, stopA, err := listen(a.Handler, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopA)
	urlB, stopB, err := listen(b.Handler, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopB)
	redistest.WaitLive(t, a.Store, b.Store)

	// The whole browser ends with this context: the test's bound.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browserPath), chromedp.WindowSize(960, 600))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil { // starts Chromium
		t.Fatalf("starting %s: %v", browserPath, err)
	}
	// Two devices: two browser contexts, each with its own cookie jar.
	dev1, cancel1 := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel1()
	dev2, cancel2 := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel2()

	do := func(dev context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(dev, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(dev context.Context, id string) string {
		t.Helper()
		s, err := chromedp.Run(dev, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("reading #%s: %v", id, err)
		}
		return strings.TrimSpace(s)
	}
	wantStatus := func(dev context.Context, want string) {
		t.Helper()
		if got := text(dev, "status"); got != want {
			t.Fatalf("status line %q, want %q", got, want)
		}
	}
	// rows returns the devices the account page lists, the current one
	// marked.
	rows := func(dev context.Context) []string {
		t.Helper()
		attrs, err := chromedp.Run(dev, chromedp.AttributesAll(chromedp.CSSAll("tr.session")))
		if err != nil {
			t.Fatalf("reading the list of sessions: %v", err)
		}
		var list []string
		for _, a := range attrs {
			d := a["data-device"]
			if strings.Contains(a["class"], "current") {
				d += " (this session)"
			}
			list = append(list, d)
		}
		return list
	}
	login := func(dev context.Context, base, device string) {
		t.Helper()
		do(dev, device+" logs in on "+base,
			chromedp.Navigate(base+"/login"),
			chromedp.WaitVisible(chromedp.ID("login")),
			chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), "ada"),
			chromedp.SendKeys(chromedp.CSS(`input[name="device"]`), device),
			chromedp.Click(chromedp.ID("submit")),
			chromedp.WaitVisible(chromedp.ID("sessions")), // the account page
		)
	}
	shots := t.TempDir()
	screenshot := func(dev context.Context, name string) {
		t.Helper()
		shot, err := chromedp.Run(dev, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		checkScreenshot(t, name, shot)
		if err := os.WriteFile(filepath.Join(shots, name), shot, 0o644); err != nil {
			t.Fatal(err)
		}
		if os.Getenv("UPDATE_SCREENSHOTS") != "" {
			path := filepath.Join("..", "..", "docs", "img", name)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", path)
		}
	}

	login(dev1, urlA, "device 1")
	wantStatus(dev1, "instance A: logged in as ada (device 1)")
	login(dev2, urlB, "device 2")
	wantStatus(dev2, "instance B: logged in as ada (device 2)")
	if got, want := strings.Join(rows(dev2), ", "), "device 2 (this session), device 1"; got != want {
		t.Fatalf("B lists %q, want %q", got, want)
	}
	screenshot(dev2, shotAccount)

	do(dev2, "device 2 logs device 1 out on B",
		chromedp.Click(chromedp.CSS(`tr[data-device="device 1"] button`)),
		chromedp.WaitVisible(chromedp.ID("revoked")), // only the page after the revocation has it
	)
	if got := text(dev2, "revoked"); !strings.Contains(got, "logged out, on every instance") {
		t.Fatalf("after the revocation B says %q", got)
	}
	if got, want := strings.Join(rows(dev2), ", "), "device 2 (this session)"; got != want {
		t.Fatalf("after the revocation B lists %q, want %q", got, want)
	}
	if err := a.CaughtUp(ctx, b); err != nil {
		t.Fatal(err)
	}

	// Device 1 still shows A's account page from before: its "log out
	// everywhere" must be refused (its session has ended), and must not
	// end device 2's session.
	resp, err := chromedp.RunResponse(dev1, chromedp.Click(chromedp.ID("logout-everywhere")))
	if err != nil {
		t.Fatalf("device 1's log out everywhere on A: %v", err)
	}
	if resp.Status != http.StatusUnauthorized {
		t.Fatalf("device 1's log out everywhere on A with its revoked session: status %d, want 401", resp.Status)
	}
	do(dev1, "device 1 opens its account page on A",
		chromedp.Navigate(urlA+"/account"),
		chromedp.WaitVisible(chromedp.ID("ended")), // the login page, for a cookie whose session ended
	)
	wantStatus(dev1, "instance A: not logged in")
	if loc, err := chromedp.Run(dev1, chromedp.Location()); err != nil || loc != urlA+"/login" {
		t.Fatalf("device 1 on A's account page ended at %q (%v), want the login page", loc, err)
	}
	screenshot(dev1, shotRefused)
	do(dev2, "device 2 reloads its account page on B", chromedp.Navigate(urlB+"/account"), chromedp.WaitVisible(chromedp.ID("sessions")))
	wantStatus(dev2, "instance B: logged in as ada (device 2)")

	// Log out everywhere, from device 2 on B, ends device 1's new session.
	login(dev1, urlA, "device 1")
	do(dev2, "device 2 logs out everywhere on B",
		chromedp.Navigate(urlB+"/account"),
		chromedp.WaitVisible(chromedp.ID("sessions")),
		chromedp.Click(chromedp.ID("logout-everywhere")),
		chromedp.WaitVisible(chromedp.ID("everywhere")), // the login page's notice
	)
	if got := text(dev2, "everywhere"); got != "You logged out everywhere: 2 sessions ended." {
		t.Fatalf("after log out everywhere B says %q", got)
	}
	if err := a.CaughtUp(ctx, b); err != nil {
		t.Fatal(err)
	}
	do(dev1, "device 1 opens its account page on A again",
		chromedp.Navigate(urlA+"/account"),
		chromedp.WaitVisible(chromedp.ID("ended")),
	)
	wantStatus(dev1, "instance A: not logged in")
}

// checkScreenshot fails t unless shot is a PNG of a rendered page: at
// least 600x300 pixels, and not of one colour (a blank page, or a
// browser that drew nothing).
func checkScreenshot(t *testing.T, name string, shot []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot %s does not decode as a PNG: %v", name, err)
	}
	size := img.Bounds().Size()
	if size.X < 600 || size.Y < 300 {
		t.Fatalf("screenshot %s is %dx%d, want at least 600x300", name, size.X, size.Y)
	}
	if n := colours(img, 16); n < 16 {
		t.Fatalf("screenshot %s has %d colours: nothing rendered", name, n)
	}
}

// colours counts the distinct colours of img, up to limit.
func colours(img image.Image, limit int) int {
	seen := map[[4]uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c0, c1, c2, c3 := img.At(x, y).RGBA()
			seen[[4]uint32{c0, c1, c2, c3}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}
