package session_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tierstore/tierstore/session"
)

// Clear of an empty session changes nothing, so it stores nothing and sets
// no cookie, like Remove and Pop of an absent key.
func TestClearWithoutASessionStoresNothing(t *testing.T) {
	store := memoryStore(t)
	m, err := session.New(session.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	h := m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := m.Clear(r.Context()); err != nil {
			t.Error(err)
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if c := rec.Result().Cookies(); len(c) != 0 {
		t.Errorf("Clear without a session set a cookie: %v", c)
	}
	n := 0
	_ = store.(interface {
		Keys(context.Context, func(string) bool) error
	}).Keys(context.Background(), func(string) bool { n++; return true })
	if n != 0 {
		t.Errorf("Clear without a session stored %d session(s)", n)
	}
}
