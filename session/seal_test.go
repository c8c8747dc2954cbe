package session_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/session/seal"
	"github.com/tierstore/tierstore/session/sessionid"
)

func newKeySet(t *testing.T, current *seal.Key, older ...*seal.Key) *seal.KeySet {
	t.Helper()
	ks, err := seal.NewKeySet(current, older...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func newSealKey(t *testing.T, id uint32, b byte) *seal.Key {
	t.Helper()
	k, err := seal.NewKey(id, bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// With Encryption, Redis holds no session value or user in clear; a
// sealed session copied under another session's key is no session; the
// per-user index works sealed too.
func TestEncryptedSessionsAreSealedInRedis(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		cfg := session.Config{}
		if encrypted {
			cfg.Encryption = newKeySet(t, newSealKey(t, 1, 'k'))
		}
		d := deploy(t, "l2", cfg)
		c := d.srv.Client(nil)
		ctx := context.Background()
		cookie := d.a.login(t, "ada@example.com", "phone")
		_, _, cookie2 := d.a.serve(t, "/put?secret=plaintext-value", cookie)
		raw := func(cookie string) string {
			id, _, _ := strings.Cut(cookie, ".")
			v, err := c.Get(ctx, l2.DefaultKeyPrefix+sessionid.Key(session.DefaultKeyPrefix, id)).Result()
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		stored := raw(cookie2)
		if clear := strings.Contains(stored, "plaintext-value") || strings.Contains(stored, "ada@example.com"); clear == encrypted {
			t.Fatalf("encrypted %v: the value in Redis holds the plaintext: %v", encrypted, clear)
		}
		if !encrypted {
			continue
		}
		if _, got, _ := d.b.serve(t, "/get?k=secret", cookie2); got != "plaintext-value" {
			t.Fatalf("B reads %q", got)
		}
		// Copy the sealed record under another session's key.
		other := d.b.login(t, "grace", "laptop")
		id, _, _ := strings.Cut(other, ".")
		otherKey := l2.DefaultKeyPrefix + sessionid.Key(session.DefaultKeyPrefix, id)
		if err := c.Set(ctx, otherKey, stored, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if _, got, _ := d.b.serve(t, "/get?k=secret", other); got != "" {
			t.Fatalf("a sealed record moved to another key reads %q", got)
		}
		if list, err := d.a.m.UserSessions(ctx, "ada@example.com"); err != nil || len(list) != 1 || list[0].Labels["device"] != "phone" {
			t.Fatalf("UserSessions, sealed: %+v, %v", list, err)
		}
	}
}

// Rotation, one deployment step at a time: sessions sealed with the old
// key read on instances that have the new one as current, and the
// sessions they save read on instances that no longer hold the old key.
func TestEncryptionKeyRotation(t *testing.T) {
	k1, k2 := newSealKey(t, 1, 'a'), newSealKey(t, 2, 'b')
	d := deploy(t, "l2", session.Config{Encryption: newKeySet(t, k1)})
	before := d.a.login(t, "ada", "phone")
	rotated := newUserApp(t, d.a.hooks.Store, nil, session.Config{Encryption: newKeySet(t, k2, k1)})
	onlyNew := newUserApp(t, d.a.hooks.Store, nil, session.Config{Encryption: newKeySet(t, k2)})
	if got := rotated.user(t, before); got != "ada" {
		t.Fatalf("the rotated set reads %q", got)
	}
	if got := onlyNew.user(t, before); got != "" {
		t.Fatalf("a set without the old key reads %q", got)
	}
	_, _, after := rotated.serve(t, "/put?k=v", before) // saved with k2
	if got := onlyNew.user(t, after); got != "ada" {
		t.Fatalf("a session saved with the new key reads %q without the old", got)
	}
}
