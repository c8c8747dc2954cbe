package session

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tierstore/tierstore/codec"
)

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
