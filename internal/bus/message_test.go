package bus

import (
	"errors"
	"strings"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	id := NewID()
	for _, key := range []string{"k", "session:abc", strings.Repeat("x", 512), "ключ"} {
		m, err := Decode(string(AppendMessage(nil, id, key)))
		if err != nil || m.Sender != id || m.Key != key {
			t.Fatalf("Decode(AppendMessage(%q)) = %+v, %v", key, m, err)
		}
	}
}

func TestDecodeRefusesMalformedPayloads(t *testing.T) {
	valid := string(AppendMessage(nil, NewID(), "k"))
	cases := []struct {
		name    string
		payload string
		want    error
	}{
		{"empty", "", ErrMalformed},
		{"header only", valid[:headerLen], ErrMalformed},
		{"truncated id", valid[:5], ErrMalformed},
		{"unknown kind", valid[:1] + "\x09" + valid[2:], ErrMalformed},
		{"newer version", "\x02" + valid[1:], ErrUnknownVersion},
		{"text", "hello", ErrUnknownVersion},
	}
	for _, c := range cases {
		if _, err := Decode(c.payload); !errors.Is(err, c.want) {
			t.Errorf("%s: Decode error = %v, want %v", c.name, err, c.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(string(AppendMessage(nil, NewID(), "k")))
	f.Add("")
	f.Add("\x01\x01")
	f.Fuzz(func(t *testing.T, payload string) {
		m, err := Decode(payload)
		if err == nil && string(AppendMessage(nil, m.Sender, m.Key)) != payload {
			t.Fatalf("Decode accepted %q but it does not re-encode identically", payload)
		}
	})
}
