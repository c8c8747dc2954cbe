package session

import (
	"encoding/base64"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/codec"
)

// referenceParseCookie is parseCookie written with the standard library's
// decoders, as it was before it was made cheap: the fuzz test below holds
// the two to the same answers.
func referenceParseCookie(s string) (string, tierstore.Version, bool) {
	id, digits, dotted := strings.Cut(s, ".")
	if len(id) != idLen {
		return "", 0, false
	}
	var buf [idBytes]byte
	if n, err := base64.RawURLEncoding.Strict().Decode(buf[:], []byte(id)); err != nil || n != idBytes {
		return "", 0, false
	}
	if !dotted {
		return id, tierstore.NoVersion, true
	}
	if len(digits) == 0 || len(digits) > maxVersionDigits {
		return "", 0, false
	}
	n, err := strconv.ParseUint(digits, 36, 64)
	if err != nil || strings.ToLower(digits) != digits || digits[0] == '0' {
		return "", 0, false
	}
	return id, tierstore.Version(n), true
}

func FuzzParseCookie(f *testing.F) {
	id := NewID()
	for _, s := range []string{
		"", id, id + ".1", id + ".0", id + ".01", id + ".1Z", id + ".zzzzzzzzzzzzz", id + ".3w5e11264sgsf",
		id + ".3w5e11264sgsg", id + ".", id[:42] + "B", id[:42] + "\n", id + ".1.2", id + ".-1", id + ".+1",
		formatCookie(id, 1<<63), formatCookie(id, ^tierstore.Version(0)),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		gotID, gotV, gotOK := parseCookie(s)
		wantID, wantV, wantOK := referenceParseCookie(s)
		if gotID != wantID || gotV != wantV || gotOK != wantOK {
			t.Fatalf("parseCookie(%q) = %q, %d, %v; the standard decoders say %q, %d, %v", s, gotID, gotV, gotOK, wantID, wantV, wantOK)
		}
		if gotOK && gotV != tierstore.NoVersion && formatCookie(gotID, gotV) != s {
			t.Fatalf("parseCookie(%q) accepted a spelling formatCookie does not write", s)
		}
	})
}

func FuzzRequestCookie(f *testing.F) {
	for _, h := range []string{
		"", "session=abc", "a=1; session=abc; b=2", `session="abc"`, "session=a b", "session=a\\b",
		"session=; session=x", "session=\x7f; session=ok", " session = x", "session=x;session=y", `session="`,
		"other=1", "session", ";;session=x;;", "session=a=b",
	} {
		f.Add(h, "")
	}
	f.Add("session=x", "session=y")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		if strings.Count(line1+line2, ";") >= 3000-2 {
			t.Skip("r.Cookie gives up on more than 3000 cookies")
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Cookie"] = []string{line1, line2}
		want := ""
		if c, err := r.Cookie("session"); err == nil {
			want = c.Value
		}
		if got := requestCookie(r, "session"); got != want {
			t.Fatalf("requestCookie(%q, %q) = %q; r.Cookie says %q", line1, line2, got, want)
		}
	})
}

// msgpackString must read exactly what the msgpack codec decodes, where
// it reads anything.
func FuzzMsgpackString(f *testing.F) {
	for _, s := range []string{"", "ada", strings.Repeat("x", 31), strings.Repeat("y", 32), strings.Repeat("z", 300), strings.Repeat("w", 70000)} {
		b, err := codec.Msgpack.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xd9})
	f.Add([]byte{0xdb, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xa3, 'a', 'b'})
	f.Add([]byte{0xc4, 1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := msgpackString(b)
		if !ok {
			return
		}
		var want string
		if err := codec.Msgpack.Unmarshal(b, &want); err != nil || got != want {
			t.Fatalf("msgpackString(%x) = %q; the codec says %q, %v", b, got, want, err)
		}
	})
}
