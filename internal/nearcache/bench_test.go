package nearcache_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/tierstore/tierstore/internal/nearcache"
)

// BenchmarkHit compares a cache hit with a raw ristretto/v2 Get of the
// same 500 bytes under the same key, configured alike: the cost of
// validity stamps, deadlines, stats and the close gate.
//
//	go test -run '^$' -bench Hit -count 6 ./internal/nearcache | tee hit.out && benchstat hit.out
func BenchmarkHit(b *testing.B) {
	const key = "session:0123456789abcdef0123456789abcdef01234"
	value := bytes.Repeat([]byte("v"), 500)

	raw, err := ristretto.NewCache(&ristretto.Config[string, []byte]{NumCounters: 1e5, MaxCost: 64 << 20, BufferItems: 1024})
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	raw.Set(key, value, int64(len(value)))
	// The same bytes stored as L1 stores them: with a TTL, which makes
	// ristretto read the clock on every Get.
	rawTTL, err := ristretto.NewCache(&ristretto.Config[string, []byte]{NumCounters: 1e5, MaxCost: 64 << 20, BufferItems: 1024})
	if err != nil {
		b.Fatal(err)
	}
	defer rawTTL.Close()
	rawTTL.SetWithTTL(key, value, int64(len(value)), time.Hour)
	raw.Wait()
	rawTTL.Wait()

	s, err := nearcache.New(nearcache.Config{TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.Fill(key, value, nearcache.Meta{Expiry: time.Now().Add(time.Hour)}, s.Stamp(key))
	s.Wait()
	// Checks instead of sinks: the cases run in parallel too.
	errShort := errors.New("short value")
	read := func(v []byte) error {
		if len(v) != 500 {
			return errShort
		}
		return nil
	}

	cases := []struct {
		name string
		hit  func() bool
	}{
		{"ristretto-Get", func() bool { v, ok := raw.Get(key); return ok && read(v) == nil }},
		{"ristretto-Get-TTL", func() bool { v, ok := rawTTL.Get(key); return ok && read(v) == nil }},
		{"ristretto-Get+copy", func() bool { v, ok := raw.Get(key); return ok && read(bytes.Clone(v)) == nil }},
		{"cache-Lookup", func() bool { hit, _, err := s.Lookup(key, read); return hit && err == nil }},
		{"cache-Lookup+copy", func() bool {
			hit, _, err := s.Lookup(key, func(v []byte) error { return read(bytes.Clone(v)) })
			return hit && err == nil
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !c.hit() {
					b.Fatal("miss")
				}
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !c.hit() {
						b.Error("miss")
						return
					}
				}
			})
		})
	}
}
