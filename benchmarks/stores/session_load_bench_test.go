package stores_test

import (
	"context"
	"testing"
	"time"

	"github.com/tierstore/tierstore/codec"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// sessionData is an 11-field session, as a web application keeps one.
type sessionData struct {
	UserID    int64
	Name      string
	Email     string
	Roles     []string
	CSRF      string
	CreatedAt time.Time
	LastSeen  time.Time
	Locale    string
	Theme     string
	CartItems int
	MFA       bool
}

// BenchmarkSessionLoad compares loading a session on an L1 hit (read +
// msgpack decode, zero-copy through View) with the decode alone.
func BenchmarkSessionLoad(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	store := newTiered(b, srv.Addr(), "session-load:")
	data, err := codec.Msgpack.Marshal(sessionData{
		UserID: 42, Name: "Ada Lovelace", Email: "ada@example.com", Roles: []string{"admin", "editor"},
		CSRF: "0123456789abcdef0123456789abcdef", CreatedAt: time.Now(), LastSeen: time.Now(),
		Locale: "en-GB", Theme: "dark", CartItems: 3, MFA: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := store.Set(ctx, "s", data, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	redistest.Eventually(b, "the session is in L1", func() bool {
		hits := store.Stats().L1.Hits
		_, _ = store.Get(ctx, "s")
		return store.Stats().L1.Hits > hits
	})
	b.Run("decode-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var s sessionData
			if err := codec.Msgpack.Unmarshal(data, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tiered-View+decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var s sessionData
			if err := store.View(ctx, "s", func(v []byte) error { return codec.Msgpack.Unmarshal(v, &s) }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
