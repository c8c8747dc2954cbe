package gorillastore_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/gorillastore"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/session/sessionid"
)

// The merge logic, on one memory store shared by two gorilla Stores (as
// two instances would share Redis).

type memFixture struct {
	mem    *l1.Store
	count  *counting // mem, counted
	store  *gorillastore.Store
	h1, h2 http.Handler
}

func newMemFixture(t *testing.T) *memFixture {
	t.Helper()
	mem, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	f := &memFixture{mem: mem, count: &counting{Store: mem}}
	f.store = gorillastore.New(f.count)
	f.h1, f.h2 = rig(f.store), rig(gorillastore.New(f.count))
	return f
}

// stored is the session under the ID of c as stored, rendered, and
// whether it is stored at all.
func (f *memFixture) stored(t *testing.T, c *http.Cookie) (string, bool) {
	t.Helper()
	return storedIn(t, f.mem, f.store.KeyOf(idOf(c)))
}

func storedIn(t *testing.T, s tierstore.Store, key string) (string, bool) {
	t.Helper()
	b, err := s.Get(context.Background(), key)
	if errors.Is(err, tierstore.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	values, err := gorillastore.Decode(b)
	if err != nil {
		t.Fatalf("stored session: %v", err)
	}
	return render(values), true
}

// overlap runs two /set requests that both load before either saves,
// and lets them save first then second, one after the other.
func overlap(t *testing.T, h1 http.Handler, target1 string, h2 http.Handler, target2 string, cookie *http.Cookie) (first, second result) {
	t.Helper()
	hold1, hold2 := newHold(), newHold()
	done1, done2 := make(chan result, 1), make(chan result, 1)
	go func() { done1 <- call(h1, target1, cookie, hold1) }()
	go func() { done2 <- call(h2, target2, cookie, hold2) }()
	<-hold1.loaded
	<-hold2.loaded
	close(hold1.proceed)
	first = <-done1
	close(hold2.proceed)
	second = <-done2
	for _, r := range []result{first, second} {
		if r.code != 200 {
			t.Fatalf("a request answered %d %s", r.code, r.body)
		}
	}
	return first, second
}

func TestMergeKeepsChangesToOtherKeysAndShowsThem(t *testing.T) {
	f := newMemFixture(t)
	cookie := next(nil, must(t, f.h1, "/set?set=user=ada&set=theme=dark", nil))
	first, second := overlap(t,
		f.h1, "/set?set=a=1&del=theme", // changes a key, deletes one
		f.h2, "/set?set=b=2&set=user=bob", // changes another, and one the first did not touch
		cookie)
	want := "a=1,b=2,user=bob"
	if got, _ := f.stored(t, cookie); got != want {
		t.Fatalf("stored %q, want %q: a change was lost", got, want)
	}
	if first.report.After != "a=1,user=ada" {
		t.Fatalf("first request sees %q after its save", first.report.After)
	}
	// The second one merged: it sees the first one's changes.
	if second.report.After != want {
		t.Fatalf("second request sees %q after its save, want the merged %q", second.report.After, want)
	}
	if second.cookie == nil || idOf(second.cookie) != idOf(cookie) {
		t.Fatalf("the merged save set cookie %v", second.cookie)
	}
}

func TestSameKeyLastWriterWins(t *testing.T) {
	for _, order := range []string{"x then y", "y then x"} {
		t.Run(order, func(t *testing.T) {
			f := newMemFixture(t)
			cookie := next(nil, must(t, f.h1, "/login", nil))
			firstValue, lastValue := "x", "y"
			if order == "y then x" {
				firstValue, lastValue = "y", "x"
			}
			overlap(t, f.h1, "/set?set=k="+firstValue, f.h2, "/set?set=k="+lastValue, cookie)
			if got, _ := f.stored(t, cookie); got != "k="+lastValue+",user=ada" {
				t.Fatalf("stored %q, want the last writer's k=%s", got, lastValue)
			}
		})
	}
}

// A handler that saves twice must not, at its second save, undo what
// another request wrote before its first.
func TestSecondSaveInARequestKeepsTheMergedChanges(t *testing.T) {
	f := newMemFixture(t)
	cookie := next(nil, must(t, f.h1, "/set?set=a=0&set=b=0", nil))
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(cookie)
	s, err := f.store.Get(req, "sid")
	if err != nil {
		t.Fatal(err)
	}
	must(t, f.h2, "/set?set=a=1", cookie) // another request, meanwhile
	s.Values["b"] = "2"
	rec := httptest.NewRecorder()
	if err := s.Save(req, rec); err != nil {
		t.Fatal(err)
	}
	if got := render(s.Values); got != "a=1,b=2" {
		t.Fatalf("after the merge Values = %q, want a=1,b=2", got)
	}
	s.Values["c"] = "3"
	if err := s.Save(req, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.stored(t, cookie); got != "a=1,b=2,c=3" {
		t.Fatalf("stored %q after the second save, want a=1,b=2,c=3", got)
	}
}

func TestSaveThatChangesNothingWritesNothing(t *testing.T) {
	f := newMemFixture(t)
	cookie := next(nil, must(t, f.h1, "/set?set=a=1&set=b=2&set=c=3&list=l=x", nil))
	before := f.count.writes()
	for range 20 { // several keys: gob's bytes differ at random from one encoding to the next
		res := must(t, f.h1, "/save", cookie)
		if res.cookie == nil || idOf(res.cookie) != idOf(cookie) {
			t.Fatalf("an unchanged save set cookie %v, want the session's", res.cookie)
		}
		cookie = next(cookie, res)
	}
	if n := f.count.writes() - before; n != 0 {
		t.Fatalf("20 saves that changed nothing wrote %d times", n)
	}
	// A change in place, inside a loaded slice, is a change.
	must(t, f.h1, "/set?inplace=l=y", cookie)
	if n := f.count.writes() - before; n != 1 {
		t.Fatalf("a change in place wrote %d times, want 1", n)
	}
	if got, _ := f.stored(t, cookie); got != "a=1,b=2,c=3,l=[y]" {
		t.Fatalf("stored %q, want the change made in place", got)
	}
}

// Values are compared as gob stores them: setting a value that gob stores
// as the loaded one (an empty slice for a nil one) changes nothing, so it
// neither writes nor overrides a concurrent change of that key.
func TestValuesAreComparedAsStored(t *testing.T) {
	f := newMemFixture(t)
	cookie := next(nil, must(t, f.h1, "/set?emptycart", nil))
	before := f.count.writes()
	must(t, f.h1, "/set?emptycart", cookie)
	if n := f.count.writes() - before; n != 0 {
		t.Fatalf("setting a value equal to the stored one once through gob wrote %d times", n)
	}
	overlap(t, f.h1, "/set?list=cart=tea", f.h2, "/set?emptycart&set=a=1", cookie)
	if got, _ := f.stored(t, cookie); got != "a=1,cart=[tea]" {
		t.Fatalf("stored %q: the change of cart was overridden by a request that did not change it", got)
	}
}

func TestUnchangedSessionIsExtendedWhenItsExpiryMovesEnough(t *testing.T) {
	f := newMemFixture(t)
	cookie := next(nil, must(t, f.h1, "/set?maxage=1000&set=a=1", nil))
	expiry := func() time.Time {
		_, _, exp, err := f.mem.GetVersion(context.Background(), f.store.KeyOf(idOf(cookie)), tierstore.NoVersion)
		if err != nil {
			t.Fatal(err)
		}
		return exp
	}
	first := expiry()
	before := f.count.writes()
	must(t, f.h1, "/set?maxage=1050", cookie) // 50 s later: less than a tenth of the lifetime
	if n := f.count.writes() - before; n != 0 || !expiry().Equal(first) {
		t.Fatalf("moving the expiry by 5%% wrote %d times", n)
	}
	must(t, f.h1, "/set?maxage=3000", cookie)
	if n := f.count.writes() - before; n != 1 {
		t.Fatalf("moving the expiry by 2000 s wrote %d times, want 1", n)
	}
	if got := expiry().Sub(first); got < 1900*time.Second {
		t.Fatalf("expiry moved by %v, want about 2000 s", got)
	}
	must(t, f.h1, "/set?maxage=100", cookie) // earlier, by far more than a tenth
	if got := time.Until(expiry()); got > 100*time.Second {
		t.Fatalf("the session still lasts %v, want at most 100 s", got)
	}
}

// stickyCache is a caching Versioned store at its laziest: once a key was
// read, it serves that copy to every GetVersion whose atLeast it meets,
// whatever was written since (as tiered's copy would, were no invalidation
// ever to arrive and a conflict not drop it).
type stickyCache struct {
	*counting
	copies map[string]sticky
}

type sticky struct {
	value   []byte
	version tierstore.Version
}

func (c *stickyCache) GetVersion(ctx context.Context, key string, atLeast tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	if cp, ok := c.copies[key]; ok && cp.version >= atLeast {
		return bytes.Clone(cp.value), cp.version, time.Time{}, nil
	}
	b, v, exp, err := c.counting.GetVersion(ctx, key, atLeast)
	if err == nil {
		c.copies[key] = sticky{bytes.Clone(b), v}
	}
	return b, v, exp, err
}

// After a conflict, Save must read a copy newer than the version that
// lost, not any copy a cache holds.
func TestMergeRereadsPastAStaleCache(t *testing.T) {
	f := newMemFixture(t)
	cache := &stickyCache{counting: f.count, copies: map[string]sticky{}}
	h := rig(gorillastore.New(cache))
	cookie := next(nil, must(t, f.h1, "/login", nil))
	must(t, h, "/get", plain(cookie))     // the cache keeps this copy
	must(t, f.h1, "/set?set=a=1", cookie) // written past the cache
	res := call(h, "/set?set=b=2", plain(cookie), nil)
	if res.code != 200 {
		t.Fatalf("save through the stale cache: %d %s", res.code, res.body)
	}
	if got, _ := f.stored(t, cookie); got != "a=1,b=2,user=ada" {
		t.Fatalf("stored %q, want both changes", got)
	}
}

func TestSaveGivesUpAfterTenConflicts(t *testing.T) {
	f := newMemFixture(t)
	cookie := next(nil, must(t, f.h1, "/login", nil))
	f.count.conflicts = true
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(cookie)
	s, err := f.store.Get(req, "sid")
	if err != nil {
		t.Fatal(err)
	}
	s.Values["a"] = "1"
	before := f.count.setIfs.Load()
	rec := httptest.NewRecorder()
	err = s.Save(req, rec)
	if !errors.Is(err, tierstore.ErrConflict) {
		t.Fatalf("Save under endless conflicts = %v, want ErrConflict", err)
	}
	if n := f.count.setIfs.Load() - before; n != 10 {
		t.Fatalf("%d conditional writes, want 10", n)
	}
	if len(rec.Result().Cookies()) != 0 {
		t.Fatal("a failed save set a cookie")
	}
}

func TestSessionFoundDeletedStaysEnded(t *testing.T) {
	for _, how := range []string{"Store.Delete", "unreadable"} {
		t.Run(how, func(t *testing.T) {
			f := newMemFixture(t)
			cookie := next(nil, must(t, f.h1, "/login", nil))
			key := f.store.KeyOf(idOf(cookie))
			req := httptest.NewRequest("GET", "/", nil)
			req.AddCookie(cookie)
			s, err := f.store.Get(req, "sid")
			if err != nil {
				t.Fatal(err)
			}
			switch how {
			case "Store.Delete":
				err = f.store.Delete(context.Background(), idOf(cookie))
			case "unreadable": // as New, the adapter treats it as no session
				err = f.mem.Set(context.Background(), key, []byte("not gob"), time.Time{})
			}
			if err != nil {
				t.Fatal(err)
			}
			s.Values["cart"] = "tea"
			before := f.count.writes()
			rec := httptest.NewRecorder()
			if err := s.Save(req, rec); err != nil {
				t.Fatalf("Save of a deleted session = %v, want nil", err)
			}
			if !gorillastore.Ended(s) || !s.IsNew || len(s.Values) != 0 {
				t.Fatalf("after Save: Ended %t, IsNew %t, Values %v; want an ended, empty session", gorillastore.Ended(s), s.IsNew, s.Values)
			}
			if len(rec.Result().Cookies()) != 0 {
				t.Fatalf("Save of a deleted session set %v", rec.Result().Cookies())
			}
			s.Values["cart"] = "coffee"
			if err := s.Save(req, rec); err != nil {
				t.Fatal(err)
			}
			if n := f.count.writes() - before; n != 1 { // the first SetIf, which failed
				t.Fatalf("saves of a deleted session made %d writes, want the one that found it deleted", n)
			}
			b, err := f.mem.Get(context.Background(), key)
			if how == "Store.Delete" && !errors.Is(err, tierstore.ErrNotFound) || how == "unreadable" && string(b) != "not gob" {
				t.Fatalf("the deleted session was written: %q, %v", b, err)
			}
			// Starting a new session is explicit.
			s.ID = ""
			rec = httptest.NewRecorder()
			if err := s.Save(req, rec); err != nil {
				t.Fatal(err)
			}
			fresh := rec.Result().Cookies()
			if len(fresh) != 1 || idOf(fresh[0]) == idOf(cookie) || gorillastore.Ended(s) {
				t.Fatalf("a new session after the end set %v (Ended %t)", fresh, gorillastore.Ended(s))
			}
			if got, _ := f.stored(t, fresh[0]); got != "cart=coffee" {
				t.Fatalf("the new session holds %q", got)
			}
		})
	}
}

func TestLogoutEndsTheSessionForLaterSaves(t *testing.T) {
	f := newMemFixture(t)
	cookie := next(nil, must(t, f.h1, "/login", nil))
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(cookie)
	s, err := f.store.Get(req, "sid")
	if err != nil {
		t.Fatal(err)
	}
	s.Options.MaxAge = -1
	if err := s.Save(req, httptest.NewRecorder()); err != nil || !gorillastore.Ended(s) {
		t.Fatalf("logout: %v, Ended %t", err, gorillastore.Ended(s))
	}
	s.Options.MaxAge = 3600 // a handler that goes on
	if err := s.Save(req, httptest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	if got, ok := f.stored(t, cookie); ok {
		t.Fatalf("a save after logout stored the session again: %q", got)
	}
}

func TestSaveOfASessionThisStoreDidNotLoadIsRefused(t *testing.T) {
	f := newMemFixture(t)
	s := sessions.NewSession(f.store, "sid")
	s.Options = &sessions.Options{MaxAge: 60}
	s.ID = sessionid.New()
	s.Values["user"] = "mallory"
	err := s.Save(httptest.NewRequest("GET", "/", nil), httptest.NewRecorder())
	if err == nil {
		t.Fatal("Save of a session with a made-up ID succeeded")
	}
	if _, ok := storedIn(t, f.mem, f.store.KeyOf(s.ID)); ok {
		t.Fatal("a session with a made-up ID was stored")
	}
}

func TestCookieIsParsedStrictly(t *testing.T) {
	f := newMemFixture(t)
	cookie := next(nil, must(t, f.h1, "/login", nil))
	id := idOf(cookie)
	for _, ok := range []string{
		cookie.Value, id, id + ".1", id + ".1a", id + ".3w5e11264sgsf", // base 36, as session writes
		id + ".18446744073709551615", id + ".1764756000000001", // decimal of more than 13 digits, as this adapter wrote
	} {
		if got := must(t, f.h1, "/get", &http.Cookie{Name: "sid", Value: ok}).report.Loaded; got != "user=ada" {
			t.Errorf("cookie %q loads %q, want user=ada", ok, got)
		}
	}
	for _, bad := range []string{
		id + ".", id + ".0", id + ".01", id + ".+1", id + ".-1", id + ".1.2", id + ".1A", id + ". 1",
		id + ".3w5e11264sgsg", id + ".18446744073709551616", id + ".01764756000000000", id + "." + strings.Repeat("9", 30),
		id + ".1764756000000000a", id + "x.1", "." + id, id[1:] + ".1",
	} {
		if got := must(t, f.h1, "/get", &http.Cookie{Name: "sid", Value: bad}).report.Loaded; got != "" {
			t.Errorf("cookie %q loads %q, want nothing", bad, got)
		}
	}
}

// redisClock gives the Versions of its memory store the size that Redis's
// clock gives l2's and tiered's (microseconds since 1970: 16 decimal
// digits).
type redisClock struct{ *l1.Store }

const clockEpoch = 1_764_756_000_000_000

func toClock(v tierstore.Version) tierstore.Version {
	if v == tierstore.NoVersion {
		return v
	}
	return v + clockEpoch
}

func fromClock(v tierstore.Version) tierstore.Version {
	if v <= clockEpoch {
		return tierstore.NoVersion
	}
	return v - clockEpoch
}

func (c redisClock) GetVersion(ctx context.Context, key string, atLeast tierstore.Version) ([]byte, tierstore.Version, time.Time, error) {
	b, v, exp, err := c.Store.GetVersion(ctx, key, fromClock(atLeast))
	return b, toClock(v), exp, err
}

func (c redisClock) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version) (tierstore.Version, error) {
	v, err := c.Store.SetIf(ctx, key, value, expiry, fromClock(want))
	return toClock(v), err
}

func (c redisClock) DeleteIf(ctx context.Context, key string, want tierstore.Version) error {
	return c.Store.DeleteIf(ctx, key, fromClock(want))
}

// A cookie in the decimal form this adapter wrote before it took the
// base-36 form of package session keeps its session, and its version is
// the one it names: a request with it reads past a stale cache as before.
// The next Save sets the cookie in base 36.
func TestDecimalCookieVersionKeepsWorking(t *testing.T) {
	mem, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	source := &counting{Store: redisClock{mem}}
	h1 := rig(gorillastore.New(source))
	cache := &stickyCache{counting: source, copies: map[string]sticky{}}
	h := rig(gorillastore.New(cache))
	before := next(nil, must(t, h1, "/login", nil))
	must(t, h, "/get", before) // the cache keeps this copy
	after := next(before, must(t, h1, "/set?set=cart=tea", before))
	_, v, ok := sessionid.ParseCookie(after.Value)
	digits := strconv.FormatUint(uint64(v), 10)
	if !ok || len(digits) <= sessionid.MaxVersionDigits {
		t.Fatalf("cookie %q names version %d: want more than %d decimal digits, as l2 and tiered give", after.Value, v, sessionid.MaxVersionDigits)
	}
	decimal := &http.Cookie{Name: after.Name, Value: idOf(after) + "." + digits}
	if got := must(t, h, "/get", plain(after)).report.Loaded; got != "user=ada" {
		t.Fatalf("with an ID-only cookie the cache serves %q, want its stale copy: the test would not test", got)
	}
	if got := must(t, h, "/get", decimal).report.Loaded; got != "cart=tea,user=ada" {
		t.Fatalf("with the decimal cookie of the last save the cache serves %q, want the save's values", got)
	}
	res := must(t, h, "/set?set=k=1", decimal)
	if res.cookie == nil {
		t.Fatal("the save with a decimal cookie set no cookie")
	}
	_, saved, ok := sessionid.ParseCookie(res.cookie.Value)
	if !ok || saved <= v {
		t.Fatalf("the save set %q, want the base-36 form of a later version than %d", res.cookie.Value, v)
	}
}

// unversioned hides the Versioned capability of its Store.
type unversioned struct{ tierstore.Store }

func TestStoreThatIsNotVersionedSavesUnconditionally(t *testing.T) {
	mem, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	store := gorillastore.New(unversioned{mem})
	h := rig(store)
	res := must(t, h, "/login", nil)
	if res.cookie == nil || len(res.cookie.Value) != 43 {
		t.Fatalf("cookie %v, want the ID alone", res.cookie)
	}
	cookie := next(nil, res)
	if got := must(t, h, "/get", cookie).report.Loaded; got != "user=ada" {
		t.Fatalf("loads %q", got)
	}
	// The documented limitation: the last save overwrites the whole session.
	overlap(t, h, "/set?set=a=1", h, "/set?set=b=2", cookie)
	if got, _ := storedIn(t, mem, store.KeyOf(idOf(cookie))); got != "b=2,user=ada" {
		t.Fatalf("stored %q, want the last save's values only", got)
	}
}

func TestSessionStatesAreReleased(t *testing.T) {
	f := newMemFixture(t)
	cookie := next(nil, must(t, f.h1, "/login", nil))
	// Every session of the tests before is garbage by now: the cleanups
	// run after a collection, on the runtime's goroutine.
	drained := func() {
		t.Helper()
		for range 10000 {
			if gorillastore.TrackedSessions() == 0 {
				return
			}
			runtime.GC()
			runtime.Gosched()
		}
		t.Fatalf("%d sessions still tracked, want none", gorillastore.TrackedSessions())
	}
	drained()
	live := make([]*sessions.Session, 1000)
	for i := range live {
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(cookie)
		var err error
		if live[i], err = f.store.New(req, "sid"); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	if n := gorillastore.TrackedSessions(); n != len(live) {
		t.Fatalf("%d sessions tracked with %d loaded ones in use", n, len(live))
	}
	runtime.KeepAlive(live)
	drained()
}
