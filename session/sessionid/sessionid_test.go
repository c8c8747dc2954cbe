package sessionid

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/tierstore/tierstore"
)

// referenceParseCookie is ParseCookie written with the standard library's
// decoders: the fuzz test below holds the two to the same answers.
func referenceParseCookie(s string) (string, tierstore.Version, bool) {
	id, digits, dotted := strings.Cut(s, ".")
	if len(id) != Len {
		return "", 0, false
	}
	var buf [idBytes]byte
	if n, err := base64.RawURLEncoding.Strict().Decode(buf[:], []byte(id)); err != nil || n != idBytes {
		return "", 0, false
	}
	if !dotted {
		return id, tierstore.NoVersion, true
	}
	if len(digits) == 0 || len(digits) > MaxVersionDigits {
		return "", 0, false
	}
	n, err := strconv.ParseUint(digits, 36, 64)
	if err != nil || strings.ToLower(digits) != digits || digits[0] == '0' {
		return "", 0, false
	}
	return id, tierstore.Version(n), true
}

func FuzzParseCookie(f *testing.F) {
	id := New()
	for _, s := range []string{
		"", id, id + ".1", id + ".0", id + ".01", id + ".1Z", id + ".zzzzzzzzzzzzz", id + ".3w5e11264sgsf",
		id + ".3w5e11264sgsg", id + ".", id[:42] + "B", id[:42] + "\n", id + ".1.2", id + ".-1", id + ".+1",
		FormatCookie(id, 1<<63), FormatCookie(id, ^tierstore.Version(0)), id + "." + strings.Repeat("1", 20),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		gotID, gotV, gotOK := ParseCookie(s)
		wantID, wantV, wantOK := referenceParseCookie(s)
		if gotID != wantID || gotV != wantV || gotOK != wantOK {
			t.Fatalf("ParseCookie(%q) = %q, %d, %v; the standard decoders say %q, %d, %v", s, gotID, gotV, gotOK, wantID, wantV, wantOK)
		}
		if gotOK && FormatCookie(gotID, gotV) != s {
			t.Fatalf("ParseCookie(%q) accepted a spelling FormatCookie does not write", s)
		}
	})
}

func TestCookieRoundTrip(t *testing.T) {
	id := New()
	for _, v := range []tierstore.Version{tierstore.NoVersion, 1, 35, 36, 1 << 51, ^tierstore.Version(0)} {
		c := FormatCookie(id, v)
		gotID, gotV, ok := ParseCookie(c)
		if !ok || gotID != id || gotV != v {
			t.Errorf("ParseCookie(FormatCookie(id, %d)) = %q, %d, %v", v, gotID, gotV, ok)
		}
	}
	if c := FormatCookie(id, 36); c != id+".10" {
		t.Errorf("FormatCookie(id, 36) = %q, want base 36", c)
	}
}

func TestNewIDsAreValidAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := New()
		if len(id) != Len || !Valid(id) || seen[id] {
			t.Fatalf("New() = %q: invalid or repeated", id)
		}
		seen[id] = true
	}
	id := New()
	for _, bad := range []string{"", id[:Len-1], id + "A", id[:Len-1] + "B", strings.Repeat("+", Len), id[:Len-3] + "==="} {
		if Valid(bad) {
			t.Errorf("Valid(%q) = true", bad)
		}
	}
}

func TestKeyIsThePrefixAndTheHashOfTheID(t *testing.T) {
	for _, id := range []string{New(), strings.Repeat("x", 100)} {
		sum := sha256.Sum256([]byte(id))
		if got, want := Key("p:", id), "p:"+base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
			t.Errorf("Key = %q, want %q", got, want)
		}
	}
	id := New()
	if n := testing.AllocsPerRun(100, func() { _ = Key("session:", id) }); n != 1 {
		t.Errorf("Key makes %v allocations, want 1 (the key)", n)
	}
}
