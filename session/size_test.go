package session_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/codec"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/session"
)

// blobApp serves /blob?n=N, which puts N bytes under "avatar" (and, with
// &user, then user=ada) and answers the first Put's error ("" if none);
// /len?k=key, which answers the length of the []byte under key; and
// /get?k=key, the string under key.
func blobApp(t *testing.T, m *session.Manager, putErr func(error)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/blob", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil {
			t.Fatal(err)
		}
		err = m.Put(r.Context(), "avatar", make([]byte, n))
		if putErr != nil {
			putErr(err)
		}
		if r.URL.Query().Has("user") {
			if err := m.Put(r.Context(), "user", "ada"); err != nil {
				t.Errorf("a small Put after the first: %v", err)
			}
		}
		if err != nil {
			io.WriteString(w, err.Error())
		}
	})
	mux.HandleFunc("/len", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strconv.Itoa(len(m.GetBytes(r.Context(), r.URL.Query().Get("k")))))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, m.GetString(r.Context(), r.URL.Query().Get("k")))
	})
	return mux
}

// A value that would make the session larger than the Store accepts
// fails at Put, with tierstore.ErrTooLarge and an error that names no key,
// value or session ID; the request's other changes are saved, and the
// session is what it would be without that Put.
func TestPutOfAnOversizedValueFailsWithErrTooLarge(t *testing.T) {
	var putErr error
	store := memoryStore(t)
	m, err := session.New(session.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	h := m.LoadAndSave(blobApp(t, m, func(err error) { putErr = err }))
	_, cookie := serveCookie(h, "/blob?n=10", "")
	res := serve(h, "/blob?user&n="+strconv.Itoa(2<<20), cookie)
	if !errors.Is(putErr, tierstore.ErrTooLarge) {
		t.Fatalf("Put of 2 MiB = %v, want an error wrapping tierstore.ErrTooLarge", putErr)
	}
	id, _, _ := strings.Cut(cookie, ".")
	for _, secret := range []string{"avatar", id, "\x00\x00\x00\x00"} {
		if strings.Contains(putErr.Error(), secret) {
			t.Errorf("the error %q names %q", putErr, secret)
		}
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the request answered %d, want the handler's 200", res.StatusCode)
	}
	if c := sessionCookie(res); c != nil {
		cookie = c.Value
	}
	if got, _ := serveCookie(h, "/len?k=avatar", cookie); got != "10" {
		t.Errorf("avatar holds %s bytes after the refused Put, want the 10 put before", got)
	}
	if got, _ := serveCookie(h, "/get?k=user", cookie); got != "ada" {
		t.Errorf("user = %q: the request's other change was not saved", got)
	}
}

// The limit is the Store's own, to the byte: on an l2 store of 4096-byte
// values, the largest value Put accepts makes a session of exactly 4096
// bytes in Redis, and one byte more is refused at Put, in a new session
// or one read from the Store; with any codec, the save never fails for
// size. (With JSON, whose
// base64 grows by 4 bytes at a time, the largest is within 4 bytes of the
// limit; the size Put computes is held to the encoding, byte for byte, by
// TestComputedSessionSizeIsTheEncodedSize.)
func TestPutLimitIsTheStoresMaxValueBytes(t *testing.T) {
	for name, c := range map[string]codec.Codec{
		"msgpack": codec.Msgpack, "json": codec.JSON, "another codec": &countingCodec{Codec: codec.Msgpack},
	} {
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t)
			const limit = 4096
			store, err := l2.New(l2.Config{Redis: srv.Client(nil), MaxValueBytes: limit})
			if err != nil {
				t.Fatal(err)
			}
			m, err := session.New(session.Config{Store: store, Codec: c})
			if err != nil {
				t.Fatal(err)
			}
			// Another instance, whose sessions all come from the Store.
			other, err := session.New(session.Config{Store: store, Codec: c})
			if err != nil {
				t.Fatal(err)
			}
			var putErr error
			h := m.LoadAndSave(blobApp(t, m, func(err error) { putErr = err }))
			h2 := other.LoadAndSave(blobApp(t, other, func(err error) { putErr = err }))
			// fits reports whether Put accepts n bytes in the session of
			// cookie (a new one if ""): if it does, the save succeeds; if
			// not, Put says the session is too large.
			fits := func(h http.Handler, n int, cookie string) (string, bool) {
				res := serve(h, "/blob?n="+strconv.Itoa(n), cookie)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("%d bytes: answered %d (the save failed)", n, res.StatusCode)
				}
				if putErr != nil && !errors.Is(putErr, tierstore.ErrTooLarge) {
					t.Fatalf("%d bytes: Put = %v", n, putErr)
				}
				if c := sessionCookie(res); c != nil {
					cookie = c.Value
				}
				return cookie, putErr == nil
			}
			lo, hi := 0, limit // the largest n that fits is in [lo, hi)
			for hi-lo > 1 {
				if mid := (lo + hi) / 2; func() bool { _, ok := fits(h, mid, ""); return ok }() {
					lo = mid
				} else {
					hi = mid
				}
			}
			cookie, ok := fits(h, lo, "")
			if !ok || cookie == "" {
				t.Fatalf("a session with %d bytes was refused or not saved", lo)
			}
			if _, ok := fits(h, lo+1, ""); ok {
				t.Fatalf("%d bytes fit, after %d did not", lo+1, lo)
			}
			// The same limit in a session read from the Store, whose size
			// comes with it: from the save, on the instance that made it,
			// or added up on another one that decodes it.
			for name, reader := range map[string]http.Handler{"the saving instance": h, "another instance": h2} {
				small, _ := fits(h, 10, "")
				if _, ok := fits(reader, lo+1, small); ok {
					t.Errorf("%s: %d bytes fit in a stored session", name, lo+1)
				}
				if _, ok := fits(reader, lo, small); !ok {
					t.Errorf("%s: %d bytes do not fit in a stored session", name, lo)
				}
			}
			id, _, _ := strings.Cut(cookie, ".")
			sum := sha256.Sum256([]byte(id))
			stored, err := store.Get(context.Background(), "session:"+base64.RawURLEncoding.EncodeToString(sum[:]))
			if err != nil {
				t.Fatal(err)
			}
			// JSON encodes the value twice in base64 (the []byte Put
			// encodes, then the record's bytes of it), so a byte more can
			// grow the record by 8: up to 7 bytes may be left unused.
			slack := map[string]int{"msgpack": 0, "json": 7}[name]
			if len(stored) > limit || len(stored) < limit-slack {
				t.Errorf("the largest session Put accepts is %d bytes in Redis, want the Store's limit, %d (less up to %d)", len(stored), limit, slack)
			}
		})
	}
}

// Config.MaxBytes sets the limit; any codec is held to it (one whose
// sizes the Manager does not know is asked for the session's encoding);
// a refused Put leaves the key's earlier value; a negative MaxBytes is an
// error from New.
func TestMaxBytesHoldsWithAnyCodec(t *testing.T) {
	if _, err := session.New(session.Config{Store: memoryStore(t), MaxBytes: -1}); err == nil {
		t.Error("New accepted a negative MaxBytes")
	}
	for name, c := range map[string]codec.Codec{
		"msgpack": codec.Msgpack, "json": codec.JSON, "another codec": &countingCodec{Codec: codec.Msgpack},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := session.New(session.Config{Store: memoryStore(t), Codec: c, MaxBytes: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var errs []error
			h := m.LoadAndSave(blobApp(t, m, func(err error) { errs = append(errs, err) }))
			_, cookie := serveCookie(h, "/blob?n=500", "")
			if _, set := serveCookie(h, "/blob?user&n=1000", cookie); set != "" {
				cookie = set
			}
			if len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], tierstore.ErrTooLarge) {
				t.Fatalf("Put of 500 then 1000 bytes with MaxBytes 1000: %v", errs)
			}
			if got, _ := serveCookie(h, "/len?k=avatar", cookie); got != "500" {
				t.Errorf("avatar holds %s bytes after the refused Put, want the 500 put before", got)
			}
			if got, _ := serveCookie(h, "/get?k=user", cookie); got != "ada" {
				t.Errorf("user = %q: the request's other change was not saved", got)
			}
		})
	}
}

// serve serves a GET of path with the session cookie (none if "").
func serve(h http.Handler, path, cookie string) *http.Response {
	req := httptest.NewRequest("GET", path, nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "session", Value: cookie})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}
