package tierstore_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tierstore/tierstore"
)

func TestCheckKey(t *testing.T) {
	valid := []string{"k", "session:AbC-_09", "ключ", strings.Repeat("x", tierstore.MaxKeyBytes)}
	invalid := []string{"", strings.Repeat("x", tierstore.MaxKeyBytes+1), "a\x00", "\t", "a\x7f", "\xc3\x28"}
	for _, k := range valid {
		if err := tierstore.CheckKey(k); err != nil {
			t.Errorf("CheckKey(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range invalid {
		if err := tierstore.CheckKey(k); !errors.Is(err, tierstore.ErrInvalidKey) {
			t.Errorf("CheckKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

func FuzzCheckKey(f *testing.F) {
	f.Add("session:abc")
	f.Add("")
	f.Add("\xff")
	f.Fuzz(func(t *testing.T, key string) {
		control := strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f })
		ok := key != "" && len(key) <= tierstore.MaxKeyBytes && utf8.ValidString(key) && !control
		if err := tierstore.CheckKey(key); (err == nil) != ok {
			t.Fatalf("CheckKey(%q) = %v, want valid=%v", key, err, ok)
		}
	})
}
