package session_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/session"
)

// redisReads is how many reads in has sent to Redis (found or not).
func (in *instance) redisReads() uint64 {
	s := in.store.Stats()
	return s.Redis.Hits + s.Redis.Misses
}

// withVersion is cookie naming the same session at version v.
func withVersion(cookie string, v uint64) string {
	id, _, _ := strings.Cut(cookie, ".")
	return id + "." + strconv.FormatUint(v, 36)
}

// versionOf is the version a cookie names.
func versionOf(t *testing.T, cookie string) uint64 {
	t.Helper()
	_, digits, ok := strings.Cut(cookie, ".")
	v, err := strconv.ParseUint(digits, 36, 64)
	if !ok || err != nil {
		t.Fatalf("cookie %q names no version", cookie)
	}
	return v
}

// save serves a request that saves the session on w, and returns the
// cookie it sets once the reader instance has applied the save's
// invalidation: none of w's writes reaches the reader's L1 later, while
// it browses. (Saves on the reader itself would do for the test, but
// Redis 7.0 echoes a script's write back to its writer too, at a moment
// no test can pin down.)
func (w *instance) save(t *testing.T, reader *instance, path, cookie string) string {
	t.Helper()
	var set string
	save := func() {
		c := sessionCookie(w.do(t, path, cookie))
		if c == nil {
			t.Fatalf("%s set no cookie", path)
		}
		set = c.Value
	}
	if cookie == "" {
		save() // a new session: reader holds nothing of it
		return set
	}
	reader.do(t, "/get?k=user", cookie) // followed by reader, in per-key mode
	afterInvalidation(t, reader, save)
	return set
}

// browse sends n read-only requests of one session the way a browser
// does, each with the cookie the previous response set (or the one it
// had), and returns which of them read Redis and the cookie it ends with.
func browse(t *testing.T, in *instance, cookie string, n int) (readRedis []int, last string) {
	t.Helper()
	for i := range n {
		before := in.redisReads()
		res := in.do(t, "/get?k=user", cookie)
		if got := body(res); got != "ada" {
			t.Fatalf("request %d read user %q", i, got)
		}
		if in.redisReads() != before {
			readRedis = append(readRedis, i)
		}
		if c := sessionCookie(res); c != nil {
			cookie = c.Value
		}
	}
	return readRedis, cookie
}

// A cookie that names a version above the stored one (forged, or kept
// across a restore of Redis) makes the store read Redis, since its copy
// looks older than what the browser saw written. The Redis read shows the
// stored version is all there is: the response sets the cookie to it, so
// the browser's next request is an L1 hit again.
func TestCookieVersionAboveTheStoredOneIsCorrectedAfterOneRead(t *testing.T) {
	srv := redistest.Start(t)
	w, in := newInstance(t, srv), newInstance(t, srv)
	cookie := w.save(t, in, "/put?user=ada", "")
	if reads, _ := browse(t, in, cookie, 3); len(reads) != 1 || reads[0] != 0 {
		t.Fatalf("requests %v of 3 read Redis, want the first only", reads)
	}
	forged := withVersion(cookie, versionOf(t, cookie)+1000)
	before := in.redisReads()
	reads, last := browse(t, in, forged, 50)
	t.Logf("requests that read Redis, of 50 with a forged cookie: %d (%d Redis reads)", len(reads), in.redisReads()-before)
	if len(reads) != 1 || reads[0] != 0 {
		t.Errorf("requests %v read Redis, want only the first", reads)
	}
	if last != cookie {
		t.Errorf("the browser ends with cookie version %s, want the stored %s", last[strings.IndexByte(last, '.')+1:], cookie[strings.IndexByte(cookie, '.')+1:])
	}
}

// The shape of Redis restored from an older backup: the session's key
// goes back to an earlier save (RESTORE of a DUMP taken then), below the
// version the browser's cookie names. The first request reads the
// restored session and sets the cookie to its version; the next ones are
// L1 hits. (The restored session lacks the later save's change: that is
// the restore's doing, not the session layer's.)
func TestCookieOfASaveRedisLostIsCorrectedAfterOneRead(t *testing.T) {
	srv := redistest.Start(t)
	w, in := newInstance(t, srv), newInstance(t, srv)
	first := w.save(t, in, "/put?user=ada", "")
	c := srv.Client(nil)
	ctx := context.Background()
	keys, err := c.Keys(ctx, "tierstore:session:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("session keys in Redis: %q, %v", keys, err)
	}
	backup, err := c.Dump(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	second := w.save(t, in, "/put?cart=1", first)
	if versionOf(t, second) <= versionOf(t, first) {
		t.Fatalf("the second save's cookie %q does not name a later version than %q", second, first)
	}
	in.do(t, "/get?k=user", second) // followed by in, in per-key mode
	afterInvalidation(t, in, func() {
		if err := c.RestoreReplace(ctx, keys[0], 0, backup).Err(); err != nil {
			t.Fatal(err)
		}
	})
	before := in.redisReads()
	reads, last := browse(t, in, second, 50)
	t.Logf("requests that read Redis, of 50 after the restore: %d (%d Redis reads)", len(reads), in.redisReads()-before)
	if len(reads) != 1 || reads[0] != 0 {
		t.Errorf("requests %v read Redis, want only the first", reads)
	}
	if last != first {
		t.Errorf("the browser ends with cookie %q, want the restored session's %q", last, first)
	}
}

// Which read-only responses set the cookie, on a Versioned memory store:
// only one whose request named a version above the stored one, and then
// to the stored version. A cookie naming the stored version, an older
// one (another request saved since) or none is left as it is, so that a
// read-only response stays free of Set-Cookie.
func TestOnlyACookieAheadOfTheStoreIsCorrected(t *testing.T) {
	m, err := session.New(session.Config{Store: memoryStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	h := m.LoadAndSave(handler(m))
	_, first := serveCookie(h, "/put?user=ada", "")
	_, stored := serveCookie(h, "/put?cart=1", first)
	v := versionOf(t, stored)
	id, _, _ := strings.Cut(stored, ".")
	for _, c := range []struct{ name, cookie, want string }{
		{"the stored version", stored, ""},
		{"an older version", withVersion(stored, v-1), ""},
		{"no version", id, ""},
		{"a later version", withVersion(stored, v+1), stored},
		{"a far later version", withVersion(stored, 1<<62), stored},
	} {
		got, set := serveCookie(h, "/get?k=user", c.cookie)
		if got != "ada" {
			t.Errorf("%s: read user %q", c.name, got)
		}
		if set != c.want {
			t.Errorf("%s: the response set cookie %q, want %q", c.name, set, c.want)
		}
	}
}
