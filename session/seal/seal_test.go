package seal_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/session/seal"
)

func key(t testing.TB, id uint32, b byte) *seal.Key {
	t.Helper()
	k, err := seal.NewKey(id, bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keySet(t testing.TB, current *seal.Key, older ...*seal.Key) *seal.KeySet {
	t.Helper()
	ks, err := seal.NewKeySet(current, older...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestSealedValuesOpenUnderTheirStoreKeyOnly(t *testing.T) {
	ks := keySet(t, key(t, 1, 'a'))
	plain := []byte("the session")
	sealed := ks.Seal(plain, []byte("session:k1"))
	if len(sealed) != len(plain)+seal.Overhead || bytes.Contains(sealed, plain) {
		t.Fatalf("sealed frame of %d bytes: %q", len(sealed), sealed)
	}
	got, err := ks.Open(sealed, []byte("session:k1"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open: %q, %v", got, err)
	}
	if _, err := ks.Open(sealed, []byte("session:k2")); !errors.Is(err, tierstore.ErrCorrupt) {
		t.Fatalf("a value moved to another key opened: %v", err)
	}
	if bytes.Equal(ks.Seal(plain, nil), ks.Seal(plain, nil)) {
		t.Fatal("two seals of one value are equal: the nonce repeats")
	}
}

// Rotation: a set with a new current key opens what the old one sealed
// and seals with the new one; a set without the old key refuses its
// frames, naming the key.
func TestKeyRotation(t *testing.T) {
	old, next := key(t, 1, 'a'), key(t, 2, 'b')
	before := keySet(t, old)
	during := keySet(t, next, old)
	after := keySet(t, next)
	sealedOld := before.Seal([]byte("v"), []byte("k"))
	if got, err := during.Open(sealedOld, []byte("k")); err != nil || string(got) != "v" {
		t.Fatalf("the rotated set does not open the old key's frame: %q, %v", got, err)
	}
	sealedNew := during.Seal([]byte("v"), []byte("k"))
	if _, err := before.Open(sealedNew, []byte("k")); err == nil || !strings.Contains(err.Error(), "key 2") {
		t.Fatalf("a frame of the new key opened with the old set only, or the error does not name the key: %v", err)
	}
	if got, err := after.Open(sealedNew, []byte("k")); err != nil || string(got) != "v" {
		t.Fatalf("Open: %q, %v", got, err)
	}
	if _, err := after.Open(sealedOld, []byte("k")); !errors.Is(err, tierstore.ErrCorrupt) || !strings.Contains(err.Error(), "key 1") {
		t.Fatalf("a frame of a key rotated out: %v", err)
	}
}

func TestDamagedFramesAreErrCorrupt(t *testing.T) {
	ks := keySet(t, key(t, 7, 'a'))
	sealed := ks.Seal([]byte("value"), []byte("k"))
	cases := map[string][]byte{"empty": nil, "short": sealed[:seal.Overhead-1], "version": append([]byte{9}, sealed[1:]...)}
	for i := range sealed {
		flipped := bytes.Clone(sealed)
		flipped[i] ^= 1
		cases[fmt.Sprint("bit of byte ", i)] = flipped
	}
	for name, b := range cases {
		if _, err := ks.Open(b, []byte("k")); !errors.Is(err, tierstore.ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBadKeysAndSets(t *testing.T) {
	if _, err := seal.NewKey(1, make([]byte, 15)); err == nil {
		t.Error("a 15-byte secret")
	}
	if _, err := seal.NewKeySet(nil); err == nil {
		t.Error("no current key")
	}
	if _, err := seal.NewKeySet(key(t, 1, 'a'), key(t, 1, 'b')); err == nil {
		t.Error("an ID twice")
	}
}

// No way of printing or logging a key or a set shows the secret.
func TestSecretsNeverPrint(t *testing.T) {
	secret := bytes.Repeat([]byte("S3"), 16)
	k, err := seal.NewKey(3, secret)
	if err != nil {
		t.Fatal(err)
	}
	ks := keySet(t, k, key(t, 1, 'a'))
	var log bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&log, nil), slog.NewJSONHandler(&log, nil)} {
		slog.New(h).Info("keys", "key", k, "set", ks)
	}
	out := fmt.Sprintf("%v %+v %#v %s %v %+v %#v %s", k, k, k, k, ks, ks, ks, ks) + log.String()
	for _, leak := range []string{string(secret), fmt.Sprintf("%x", secret), "S3S3"} {
		if strings.Contains(out, leak) {
			t.Fatalf("the secret shows: %s", out)
		}
	}
	if !strings.Contains(out, "seal.KeySet(current 3, 1 older)") {
		t.Fatalf("the set does not say which keys it holds: %s", out)
	}
}

// Any bytes either open to what was sealed under that additional data or
// are an error wrapping tierstore.ErrCorrupt: never a panic.
func FuzzOpen(f *testing.F) {
	ks := keySet(f, key(f, 1, 'a'), key(f, 2, 'b'))
	f.Add(ks.Seal([]byte("value"), []byte("k")), []byte("k"))
	f.Add([]byte{1, 0, 0, 0, 1}, []byte("k"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, frame, ad []byte) {
		plain, err := ks.Open(frame, ad)
		if err != nil {
			if !errors.Is(err, tierstore.ErrCorrupt) || plain != nil {
				t.Fatalf("Open: %q, %v", plain, err)
			}
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	ks := keySet(b, key(b, 1, 'a'))
	plain := make([]byte, 200)
	ad := []byte("session:0123456789012345678901234567890123456789012")
	sealed := ks.Seal(plain, ad)
	b.Run("seal-200B", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ks.Seal(plain, ad)
		}
	})
	b.Run("open-200B", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ks.Open(sealed, ad); err != nil {
				b.Fatal(err)
			}
		}
	})
}
