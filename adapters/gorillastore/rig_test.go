package gorillastore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/gorillastore"
)

// The rig: a handler whose requests change the session as their query
// says, can be held between loading and saving, and report what they saw.

// hold parks a request after it loaded (and changed) its session and
// before it saves, until the test lets it go.
type hold struct {
	loaded  chan struct{} // closed when the request reaches the hold
	proceed chan struct{} // close to let it save
}

func newHold() *hold { return &hold{loaded: make(chan struct{}), proceed: make(chan struct{})} }

type holdKey struct{}

// report is what a /set or /get request tells the test.
type report struct {
	Loaded string // the session's values as loaded
	After  string // its values after Save (/set)
	Ended  bool   // gorillastore.Ended after Save
	IsNew  bool   // session.IsNew after Save
}

// rig serves:
//
//	/login          a new session with user=ada
//	/set?set=k=v&del=k&list=k=v&inplace=k=v&emptycart&maxage=n
//	                change the session (list: a []string; inplace: replace
//	                its first element in place) and Save (session.Save)
//	/save           Save without changing anything (sessions.Save)
//	/get            read only
//	/logout         MaxAge -1, Save
func rig(store sessions.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, "sid")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		s.Values["user"] = "ada"
		if err := sessions.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, "sid")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		rep := report{Loaded: render(s.Values)}
		q := r.URL.Query()
		for _, kv := range q["set"] {
			k, v, _ := strings.Cut(kv, "=")
			s.Values[k] = v
		}
		for _, k := range q["del"] {
			delete(s.Values, k)
		}
		for _, kv := range q["list"] {
			k, v, _ := strings.Cut(kv, "=")
			s.Values[k] = []string{v}
		}
		if q.Has("emptycart") { // equal, once through gob, to cart{}
			s.Values["cart"] = cart{Items: []string{}}
		}
		if age := q.Get("maxage"); age != "" {
			s.Options.MaxAge, _ = strconv.Atoi(age)
		}
		for _, kv := range q["inplace"] { // in place, into the loaded slice's array
			k, v, _ := strings.Cut(kv, "=")
			list := s.Values[k].([]string)
			list[0] = v
		}
		if h, ok := r.Context().Value(holdKey{}).(*hold); ok {
			close(h.loaded)
			<-h.proceed
		}
		if err := s.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		rep.After, rep.Ended, rep.IsNew = render(s.Values), gorillastore.Ended(s), s.IsNew
		_ = json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("/save", func(w http.ResponseWriter, r *http.Request) {
		if _, err := store.Get(r, "sid"); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if err := sessions.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, "sid")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_ = json.NewEncoder(w).Encode(report{Loaded: render(s.Values)})
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, "sid")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		s.Options.MaxAge = -1
		if err := s.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	return mux
}

// render formats session values as "k=v,k=v" in key order.
func render(values map[any]any) string {
	var parts []string
	for k, v := range values {
		parts = append(parts, fmt.Sprintf("%v=%v", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// result is one response.
type result struct {
	code   int
	body   string
	report report
	cookie *http.Cookie // the sid cookie it set, if any
}

// call serves one request with cookie (nil: none), parked at h if not
// nil. It may run on any goroutine: it reports, never fails t.
func call(h http.Handler, target string, cookie *http.Cookie, hd *hold) result {
	req := httptest.NewRequest("GET", target, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if hd != nil {
		req = req.WithContext(context.WithValue(req.Context(), holdKey{}, hd))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := result{code: rec.Code, body: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &res.report)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "sid" {
			res.cookie = c
		}
	}
	return res
}

// must serves a request on the test's goroutine and fails t unless it
// answers 200.
func must(t *testing.T, h http.Handler, target string, cookie *http.Cookie) result {
	t.Helper()
	res := call(h, target, cookie, nil)
	if res.code != 200 {
		t.Fatalf("%s: %d %s", target, res.code, res.body)
	}
	return res
}

// next is the cookie a browser sends after res: the one res set, none if
// res deleted it, else the one it had.
func next(had *http.Cookie, res result) *http.Cookie {
	switch {
	case res.cookie == nil:
		return had
	case res.cookie.MaxAge < 0:
		return nil
	}
	return res.cookie
}

// idOf is the session ID in a cookie ("<id>" or "<id>.<version>").
func idOf(c *http.Cookie) string {
	id, _, _ := strings.Cut(c.Value, ".")
	return id
}

// plain is c with the ID alone, as cookies were before versions.
func plain(c *http.Cookie) *http.Cookie {
	return &http.Cookie{Name: c.Name, Value: idOf(c)}
}

// counting counts a Versioned store's writes; conflicts, if set, makes
// every SetIf (but of a new key) fail with a conflict.
type counting struct {
	tierstore.Store
	sets, setIfs atomic.Int64
	conflicts    bool
}

func (c *counting) versioned() tierstore.Versioned { return c.Store.(tierstore.Versioned) }

func (c *counting) Set(ctx context.Context, key string, value []byte, expiry time.Time) error {
	c.sets.Add(1)
	return c.Store.Set(ctx, key, value, expiry)
}

func (c *counting) GetVersion(ctx context.Context, key string, atLeast tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	return c.versioned().GetVersion(ctx, key, atLeast)
}

func (c *counting) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version) (tierstore.Version, error) {
	c.setIfs.Add(1)
	if c.conflicts && want != tierstore.NoVersion {
		return 0, fmt.Errorf("counting: %w", tierstore.ErrConflict)
	}
	return c.versioned().SetIf(ctx, key, value, expiry, want)
}

func (c *counting) DeleteIf(ctx context.Context, key string, want tierstore.Version) error {
	return c.versioned().DeleteIf(ctx, key, want)
}

// writes is the number of writes so far.
func (c *counting) writes() int64 { return c.sets.Load() + c.setIfs.Load() }
