package session_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/codec"
	"github.com/tierstore/tierstore/session"
)

// countingCodec counts the sessions it decodes (handlers here read no
// value, so every Unmarshal is of a session).
type countingCodec struct {
	codec.Codec
	decodes atomic.Int32
}

func (c *countingCodec) Unmarshal(data []byte, v any) error {
	c.decodes.Add(1)
	return c.Codec.Unmarshal(data, v)
}

// decodedApp is an instance on store: /put?k=v, /keys (the session's keys,
// read without decoding a value), and /hold/put, /hold/keys, which wait on
// held once loaded.
func decodedApp(t *testing.T, store tierstore.Store, c codec.Codec, held chan chan struct{}) http.Handler {
	m, err := session.New(session.Config{Store: store, Codec: c})
	if err != nil {
		t.Fatal(err)
	}
	keys := func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Join(m.Keys(r.Context()), ","))
	}
	put := func(w http.ResponseWriter, r *http.Request) {
		for k, v := range r.URL.Query() {
			m.Put(r.Context(), k, v[0])
		}
	}
	hold := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			release := make(chan struct{})
			held <- release
			<-release
			h(w, r)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/keys", keys)
	mux.HandleFunc("/put", put)
	mux.HandleFunc("/hold/keys", hold(keys))
	mux.HandleFunc("/hold/put", hold(put))
	return m.LoadAndSave(mux)
}

// serveDecoded is serveCookie, returning the cookie the browser holds
// next: the one set, or the one it sent.
func serveDecoded(h http.Handler, path, cookie string) (string, string) {
	got, set := serveCookie(h, path, cookie)
	if set == "" {
		set = cookie
	}
	return got, set
}

// An unchanged session is decoded once, then served decoded; a change,
// on another instance, is decoded again.
func TestUnchangedSessionsAreNotDecodedAgain(t *testing.T) {
	store := memoryStore(t)
	ca, cb := &countingCodec{Codec: codec.Default}, &countingCodec{Codec: codec.Default}
	a, b := decodedApp(t, store, ca, nil), decodedApp(t, store, cb, nil)
	_, cookie := serveDecoded(a, "/put?x=1", "")
	for range 3 {
		if got, _ := serveDecoded(a, "/keys", cookie); got != "x" {
			t.Fatalf("keys %q", got)
		}
	}
	if n := ca.decodes.Load(); n != 0 {
		t.Fatalf("A decoded the session it saved %d times", n)
	}
	for range 3 {
		serveDecoded(b, "/keys", cookie)
	}
	if n := cb.decodes.Load(); n != 1 {
		t.Fatalf("B decoded an unchanged session %d times, want 1", n)
	}
	_, cookie = serveDecoded(b, "/put?y=2", cookie)
	if got, _ := serveDecoded(a, "/keys", cookie); got != "x,y" {
		t.Fatalf("A reads keys %q after B's change, want x,y", got)
	}
	if n := ca.decodes.Load(); n != 1 {
		t.Fatalf("A decoded B's change %d times, want 1", n)
	}
}

// Requests that share a decoded session do not see each other's changes
// before they are saved: a change copies the session first.
func TestAChangeDoesNotReachASharedDecodedSession(t *testing.T) {
	store := memoryStore(t)
	held := make(chan chan struct{})
	h := decodedApp(t, store, codec.Default, held)
	_, cookie := serveDecoded(h, "/put?x=1", "")
	start := func(path string) (release func() string) {
		done := make(chan string, 1)
		go func() { got, _ := serveDecoded(h, path, cookie); done <- got }()
		r := <-held
		return func() string { close(r); return <-done }
	}
	writer := start("/hold/put?k=v") // both load the one decoded session
	reader := start("/hold/keys")
	writer()
	if got := reader(); got != "x" {
		t.Fatalf("a concurrent request saw another's change before its load: keys %q", got)
	}
	if got, _ := serveDecoded(h, "/keys", cookie); got != "k,x" {
		t.Fatalf("keys after the change: %q", got)
	}
}
