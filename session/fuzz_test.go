package session_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tierstore/tierstore/session"
)

// Any cookie value either names a session or starts a fresh one: never a
// panic, never a store call for a malformed ID, never an error answer.
func FuzzLoadAndSaveCookie(f *testing.F) {
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("not a session id")
	f.Add("\xff\x00")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.1z")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.zzzzzzzzzzzzzz")
	fx := newFixture(f, session.Config{})
	f.Fuzz(func(t *testing.T, cookie string) {
		calls := fx.store.calls()
		req := httptest.NewRequest("GET", "/get?k=user", nil)
		req.Header.Set("Cookie", "session="+cookie)
		// What the middleware sees is the value as net/http parses it
		// (quotes stripped, invalid bytes dropped).
		var parsed string
		if c, err := req.Cookie("session"); err == nil {
			parsed = c.Value
		}
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("cookie %q answered %d", cookie, rec.Code)
		}
		if !(len(parsed) >= 43 && session.ValidID(parsed[:43])) && fx.store.calls() != calls {
			t.Fatalf("cookie %q (parsed %q, length %d) reached the store", cookie, parsed, len(parsed))
		}
	})
}
