package main

import (
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tierstore/tierstore/session"
)

// The pages. Every state change is a POST form. Two defences against
// cross-site request forgery, neither of them a token: the session
// cookie is SameSite=Lax (the session package's default), so a browser
// sends it on no cross-site POST, and http.CrossOriginProtection refuses
// a POST that the browser marks as coming from another origin
// (Sec-Fetch-Site, or else Origin): that also covers the other instance's
// port, which is the same site to SameSite. html/template escapes every
// value the pages show (the user name and device labels are the
// visitor's own input).

// maxField is the most bytes a user name or device label may have.
const maxField = 64

// labelDevice is the session label that holds the device's name.
const labelDevice = "device"

func (in *Instance) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /login", in.loginPage)
	mux.HandleFunc("POST /login", in.login)
	mux.HandleFunc("GET /account", in.account)
	mux.HandleFunc("POST /logout", in.logout)
	mux.HandleFunc("POST /revoke", in.revoke)
	mux.HandleFunc("POST /logout-everywhere", in.logoutEverywhere)
	// Cross-origin POSTs are refused before their session is loaded.
	return http.NewCrossOriginProtection().Handler(in.Sessions.LoadAndSave(mux))
}

var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · instance {{.Instance}}</title>
<style>
body { font: 16px/1.5 sans-serif; max-width: 50em; margin: 1.5em auto; padding: 0 1em; color: #222 }
#status { background: #eef; padding: .4em .8em; border-radius: 4px }
.notice { background: #ffd; padding: .4em .8em; border-radius: 4px }
table { border-collapse: collapse; margin: 1em 0 }
th, td { text-align: left; padding: .35em .9em; border-bottom: 1px solid #ccc }
tr.current td { background: #efe }
td.time { white-space: nowrap }
form.inline { display: inline; margin: 0 }
label { display: block; margin: .5em 0 }
.small { color: #555; font-size: .9em }
</style></head><body>
<p id="status">instance {{.Instance}}: {{if .User}}logged in as {{.User}} ({{.Device}}){{else}}not logged in{{end}}</p>
{{range .Notices}}<p class="notice" id="{{.ID}}">{{.Text}}</p>
{{end}}{{end}}

{{define "login"}}{{template "head" .}}<h1>Log in</h1>
<form id="login" method="post" action="/login">
<label>User name <input name="user" required maxlength="64" placeholder="ada"></label>
<label>This device <input name="device" maxlength="64" placeholder="laptop"></label>
<button id="submit">log in</button>
</form>
<p class="small">A demo: there is no password, any user name logs in. Logging in
gives the browser a new session ID (no session fixation) and lists the
session on the user's account page, on both instances.</p>
</body></html>
{{end}}

{{define "account"}}{{template "head" .}}<h1>{{.User}}'s sessions</h1>
<table id="sessions">
<tr><th>device</th><th>logged in</th><th>last seen</th><th></th></tr>
{{range .Sessions}}<tr class="session{{if .Current}} current{{end}}" data-device="{{.Device}}" data-handle="{{.Handle}}">
<td class="device">{{.Device}}{{if .Current}} <b>(this session)</b>{{end}}</td>
<td class="time">{{.Created}}</td><td class="time">{{.LastSeen}}</td>
<td>{{if .Current}}<form class="inline" method="post" action="/logout"><button>log out this session</button></form>
{{- else}}<form class="inline" method="post" action="/revoke"><input type="hidden" name="handle" value="{{.Handle}}"><button>log out this session</button></form>{{end}}</td>
</tr>
{{end}}</table>
<form method="post" action="/logout-everywhere"><button id="logout-everywhere">log out everywhere</button></form>
<p class="small">Both instances serve this page from one Redis; a session
logged out here is refused by the other instance at once. Forms are POSTs;
the session cookie is SameSite=Lax and cross-origin POSTs are refused
(the CSRF defence of this demo). There is no password check.</p>
</body></html>
{{end}}
`))

// page is what the templates show.
type page struct {
	Title, Instance string
	User, Device    string
	Notices         []notice
	Sessions        []sessionRow
}

type notice struct{ ID, Text string }

type sessionRow struct {
	Handle, Device    string
	Created, LastSeen string
	Current           bool
}

func (in *Instance) render(w http.ResponseWriter, name string, p page) {
	p.Instance = in.Name
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name, p); err != nil {
		slog.Error("webapp: rendering a page", "instance", in.Name, "page", name, "err", err)
	}
}

// fail answers a request whose session operation failed. The error is
// logged, not shown: it may name the key prefix, never a session ID, but a
// visitor needs none of it.
func (in *Instance) fail(w http.ResponseWriter, what string, err error) {
	slog.Error("webapp: "+what, "instance", in.Name, "err", err)
	http.Error(w, what+" failed: try again", http.StatusServiceUnavailable)
}

func (in *Instance) loginPage(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Log in"}
	switch r.URL.Query().Get("msg") {
	case "out":
		p.Notices = append(p.Notices, notice{"loggedout", "You logged out this session."})
	case "everywhere":
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		p.Notices = append(p.Notices, notice{"everywhere", "You logged out everywhere: " + plural(n, "session") + " ended."})
	default:
		// A session cookie without a session: this browser's session
		// ended here, on the other instance or on another device.
		if _, err := r.Cookie(session.DefaultCookieName); err == nil {
			p.Notices = append(p.Notices, notice{"ended", "This browser's session has ended (logged out here or from another device, or expired): log in again."})
		}
	}
	in.render(w, "login", p)
}

// formField returns the trimmed form value name, or why it is refused.
func formField(r *http.Request, name string) (string, string) {
	v := strings.TrimSpace(r.PostFormValue(name))
	switch {
	case len(v) > maxField:
		return "", name + ": at most " + strconv.Itoa(maxField) + " bytes, please"
	case !utf8.ValidString(v):
		return "", name + ": not valid UTF-8"
	}
	return v, ""
}

func (in *Instance) login(w http.ResponseWriter, r *http.Request) {
	user, bad := formField(r, "user")
	if bad == "" && user == "" {
		bad = "user: a user name, please"
	}
	device, badDevice := formField(r, "device")
	if bad == "" {
		bad = badDevice
	}
	if bad != "" {
		http.Error(w, bad, http.StatusBadRequest)
		return
	}
	if device == "" {
		device = "unnamed device"
	}
	// No password check: this is a demo. A real login checks it here.
	// The label first, so that SetUser writes it with the login.
	if err := in.Sessions.SetLabel(r.Context(), labelDevice, device); err != nil {
		in.fail(w, "login", err)
		return
	}
	// A new ID and an entry in the user's index, in one operation.
	if err := in.Sessions.SetUser(r.Context(), user); err != nil {
		in.fail(w, "login", err)
		return
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

func (in *Instance) account(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	user := in.Sessions.User(ctx)
	if user == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	list, err := in.Sessions.UserSessions(ctx, user)
	if err != nil {
		in.fail(w, "listing the sessions", err)
		return
	}
	p := page{Title: "Your sessions", User: user, Device: in.Sessions.Label(ctx, labelDevice)}
	switch r.URL.Query().Get("revoked") {
	case "1":
		p.Notices = append(p.Notices, notice{"revoked", "That session is logged out, on every instance."})
	case "0":
		p.Notices = append(p.Notices, notice{"revoked", "That session had ended already."})
	}
	for _, s := range list {
		p.Sessions = append(p.Sessions, sessionRow{
			Handle: s.Handle, Device: s.Labels[labelDevice], Current: s.Current,
			Created: clock(s.Created), LastSeen: clock(s.LastSeen),
		})
	}
	in.render(w, "account", p)
}

// loggedIn returns the request's user, or answers 401: a POST that
// changes an account needs a live session.
func (in *Instance) loggedIn(w http.ResponseWriter, r *http.Request) string {
	user := in.Sessions.User(r.Context())
	if user == "" {
		http.Error(w, "not logged in: this browser's session has ended", http.StatusUnauthorized)
	}
	return user
}

func (in *Instance) logout(w http.ResponseWriter, r *http.Request) {
	if err := in.Sessions.Destroy(r.Context()); err != nil {
		in.fail(w, "logout", err)
		return
	}
	http.Redirect(w, r, "/login?msg=out", http.StatusSeeOther)
}

func (in *Instance) revoke(w http.ResponseWriter, r *http.Request) {
	user := in.loggedIn(w, r)
	if user == "" {
		return
	}
	handle := r.PostFormValue("handle")
	if handle == "" {
		http.Error(w, "handle: which session, please", http.StatusBadRequest)
		return
	}
	// A handle of another user's session names none of this user's: it
	// ends nothing.
	ended, err := in.Sessions.RevokeSession(r.Context(), user, handle)
	if err != nil {
		in.fail(w, "logging the session out", err)
		return
	}
	revoked := "0"
	if ended {
		revoked = "1"
	}
	http.Redirect(w, r, "/account?revoked="+revoked, http.StatusSeeOther)
}

func (in *Instance) logoutEverywhere(w http.ResponseWriter, r *http.Request) {
	user := in.loggedIn(w, r)
	if user == "" {
		return
	}
	n, err := in.Sessions.RevokeUser(r.Context(), user)
	if err != nil {
		in.fail(w, "logging out everywhere", err)
		return
	}
	// This session ended with the others; Destroy deletes its cookie.
	if err := in.Sessions.Destroy(r.Context()); err != nil {
		in.fail(w, "logging out everywhere", err)
		return
	}
	http.Redirect(w, r, "/login?msg=everywhere&n="+strconv.Itoa(n), http.StatusSeeOther)
}

func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
