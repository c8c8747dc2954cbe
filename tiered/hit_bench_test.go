package tiered

import (
	"context"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// BenchmarkHit is one L1 hit of a 200-byte value through each read: what
// the session layer pays per request for GetVersion with its cookie's
// version against one without.
func BenchmarkHit(b *testing.B) {
	ctx := context.Background()
	srv := redistest.Start(b)
	s := newStore(b, srv.Client(nil), Config{HealthCheckInterval: time.Minute})
	v, err := s.SetIf(ctx, "k", make([]byte, 200), time.Time{}, tierstore.NoVersion)
	if err != nil {
		b.Fatal(err)
	}
	// Its own echo drops the writer's copy: read until L1 serves it.
	for hits := s.Stats().L1.Hits; s.Stats().L1.Hits < hits+10; {
		if _, _, _, err := s.GetVersion(ctx, "k", tierstore.NoVersion); err != nil {
			b.Fatal(err)
		}
	}
	reads := []struct {
		name string
		read func() error
	}{
		{"GetVersion", func() error { _, _, _, err := s.GetVersion(ctx, "k", tierstore.NoVersion); return err }},
		{"GetVersion-atLeast", func() error { _, _, _, err := s.GetVersion(ctx, "k", v); return err }},
	}
	for _, r := range reads {
		b.Run(r.name, func(b *testing.B) {
			hits := s.Stats().L1.Hits
			b.ReportAllocs()
			for b.Loop() {
				if err := r.read(); err != nil {
					b.Fatal(err)
				}
			}
			if s.Stats().L1.Hits-hits < uint64(b.N) {
				b.Fatal("not every read was an L1 hit")
			}
		})
	}
}
